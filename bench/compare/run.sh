#!/usr/bin/env bash
# Side-by-side throughput on this machine, in one run: triad vs a Python implementation of the
# paper's generators and reward rules, vs reasoning-gym (from PyPI, into a local venv), and —
# with --serve and wrk installed — `triad serve` vs the Python reward server under the same load.
# usage: bench/compare/run.sh [--quick] [--serve]
set -euo pipefail
cd "$(dirname "$0")"
WINDOW=1.0; TRIAD_WINDOW=1000
for arg in "$@"; do
  case $arg in
    --quick) WINDOW=0.3; TRIAD_WINDOW=300 ;;
    --serve) SERVE=1 ;;
  esac
done
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
(cd ../.. && cargo build --release --quiet)
TRIAD=../../target/release/triad
mkdir -p results
# One thread for the per-core figures; levels 1-5 (the paper's).
$TRIAD bench --levels 1-5 --threads 1 --window-ms "$TRIAD_WINDOW" --json results/triad.json > results/triad.md
.venv/bin/python compare.py results/triad.json results/compare.json --window "$WINDOW" | tee results/compare.md
if [ "${SERVE:-0}" = 1 ]; then
  ../serve/run.sh 10 64 | tee results/serve.txt
fi
