#!/usr/bin/env bash
# triad-train against PyTorch + transformers on the same checkpoint, data and work, side by side:
# SFT step, RL update, sampling, at model sizes tiny and small, each with 2 threads.
# Installs torch 2.15 and transformers 5.24 from PyPI into bench/train/.torch-venv on first use
# (the default Linux torch wheel pulls ~2.8 GB of CUDA libraries; this runs on the CPU).
# usage: bench/train/vs_torch.sh   (SIZES="tiny small" by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=bench/train/.torch-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "torch==2.15.0" "transformers==5.24.0" pyarrow tokenizers
fi
cargo build --release --quiet -p triad -p triad-trainer
WORK=bench/train/speed-work
for SIZE in ${SIZES:-tiny small}; do
  triad=$(SIZE=$SIZE bench/train/speed.sh target/release/triad-train "$WORK" | sed 's/ | losses.*//')
  torch=$("$VENV/bin/python" bench/train/vs_torch.py --model "$WORK/init-$SIZE" --data "$WORK/data" --threads 2 2>/dev/null)
  python3 - "$SIZE" "$triad" "$torch" <<'PY'
import json, re, sys
size, triad, torch = sys.argv[1], sys.argv[2], sys.argv[3]
num = lambda s: float(s.replace(",", ""))
ours = {"sft": num(re.search(r"sft: train ([\d,]+)", triad)[1]),
        "rl": num(re.search(r"rl: train ([\d,]+)", triad)[1]),
        "sampling": num(re.search(r"sampling ([\d,]+)", triad)[1])}
theirs = {json.loads(l)["phase"]: json.loads(l)["tokens_per_s"] for l in torch.splitlines() if l.startswith("{")}
for phase in ["sft", "rl", "sampling"]:
    print(f"| {size} | {phase} | {ours[phase]:,.0f} | {theirs[phase]:,.0f} | {ours[phase] / theirs[phase]:.2f}× |")
PY
done
