#!/usr/bin/env bash
# The trainer on this CPU, end to end: a tiny model (`--init tiny`), SFT, then RL on induction
# level-1 tasks; greedy test accuracy before and after each stage; curves as PNG.
# usage: bench/train/run.sh [OUT]   (default OUT: bench/train/results)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench/train/results}
SFT_STEPS=${SFT_STEPS:-300}
RL_STEPS=${RL_STEPS:-60}
cargo build --release --quiet -p triad -p triad-trainer
T=target/release
mkdir -p "$OUT"
$T/triad generate --out "$OUT/data" --families induction --levels 1 --train 2000 --test 200 --seed 42 --quiet --overwrite
SEL=(--data "$OUT/data" --families induction --levels 1)
$T/triad-train init --size tiny "${SEL[@]}" --out "$OUT/init"
eval_model() { $T/triad-train eval --model "$1" "${SEL[@]}" --max-new-tokens 24 --json "$OUT/eval-$2.json" | tee "$OUT/eval-$2.md"; }
eval_model "$OUT/init" init
time $T/triad-train sft --model "$OUT/init" "${SEL[@]}" --out "$OUT/sft" --steps "$SFT_STEPS" --batch-size 16 --lr 1e-3
eval_model "$OUT/sft" sft
time $T/triad-train rl --model "$OUT/sft" "${SEL[@]}" --out "$OUT/rl" --steps "$RL_STEPS" --prompts 8 --rollouts 4 \
  --max-new-tokens 24 --temperature 1.0 --lr 5e-5 --save-every 20
eval_model "$OUT/rl" rl
$T/triad-train plot "$OUT/sft/metrics.jsonl" "$OUT/rl/metrics.jsonl" --out "$OUT/curves.png"
