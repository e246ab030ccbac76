#!/usr/bin/env bash
# Load test on loopback, bounded in time: `triad serve` vs the Python paper-rules server, same load.
# Needs wrk (apt-get install -y wrk) and a release build (cargo build --release).
# usage: bench/serve/run.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_RUN=${1:-10}
CONNECTIONS=${2:-64}
TRIAD=../../target/release/triad
$TRIAD serve --port 18080 2>/dev/null &
TRIAD_PID=$!
python3 paper_reward_server.py 18081 2>/dev/null &
PY_PID=$!
trap 'kill $TRIAD_PID $PY_PID 2>/dev/null || true' EXIT
sleep 1
for server in "triad 18080" "python 18081"; do
  set -- $server
  for script in one_item batch; do
    conns=$CONNECTIONS
    [ "$script" = batch ] && conns=8
    echo "== $1 $script (wrk -t2 -c$conns -d${SECONDS_PER_RUN}s --latency)"
    wrk -t2 -c"$conns" -d"${SECONDS_PER_RUN}s" --latency -s "$script.lua" "http://127.0.0.1:$2/get_reward" \
      | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors" || true
  done
done
