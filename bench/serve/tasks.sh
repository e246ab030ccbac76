#!/usr/bin/env bash
# Online tasks under load, side by side with the static-dataset path, on loopback.
# For each family and level: `POST /tasks` of N fresh tasks per request (wrk, C connections,
# SECONDS each; tasks/s = requests/s × N), against reading the same kind of rows from a
# `triad generate` dataset with pyarrow (what a trainer's dataloader does with a static set).
# Needs wrk and a release build; python3 with pyarrow for the static path.
# usage: bench/serve/tasks.sh [SECONDS] [CONNECTIONS] [N]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_RUN=${1:-5}
CONNECTIONS=${2:-4}
N=${3:-64}
TRIAD=../../target/release/triad
PY=${PYTHON:-../../.venv/bin/python}
[ -x "$PY" ] || PY=python3
WORK=$(mktemp -d)
PORT=18090
$TRIAD serve --port $PORT 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 1
echo "| family | level | /tasks tasks/s | p50 ms (request of $N) | dataset rows/s read (pyarrow) | generate items/s |"
echo "|---|---|---|---|---|---|"
for family in deduction induction abduction; do
  for level in 1 5 10; do
    out=$(FAMILY=$family LEVEL=$level N=$N wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency --timeout 60s -s tasks.lua "http://127.0.0.1:$PORT")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $4}')
    [ -z "$bad" ] || { echo "non-2xx answers: $out" >&2; exit 1; }
    rows=500
    started=$(date +%s.%N)
    $TRIAD generate --out "$WORK/$family-$level" --families "$family" --levels "$level" --train $rows --test 0 --seed 1 --quiet --overwrite > /dev/null 2>&1
    ended=$(date +%s.%N)
    got=$("$PY" -c "import json,sys; m=json.load(open(sys.argv[1])); print(sum(s['rows'] for s in m['streams']))" "$WORK/$family-$level/manifest.json")
    read_rate=$("$PY" - "$WORK/$family-$level" <<'PYEOF'
import glob, sys, time
import pyarrow.parquet as pq
paths = sorted(glob.glob(f"{sys.argv[1]}/*/level-*/train-*.parquet"))
best = 0.0
for _ in range(3):
    started = time.perf_counter()
    rows = sum(len(pq.read_table(p).to_pylist()) for p in paths)
    best = max(best, rows / (time.perf_counter() - started))
print(f"{best:.0f}")
PYEOF
)
    gen_rate=$(awk -v n="$got" -v a="$started" -v b="$ended" 'BEGIN {printf "%.0f", n / (b - a)}')
    tasks=$(awk -v r="$rps" -v n="$N" 'BEGIN {printf "%.0f", r * n}')
    echo "| $family | $level | $tasks | $p50 | $read_rate | $gen_rate |"
  done
done
