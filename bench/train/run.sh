#!/usr/bin/env bash
# The trainer on this CPU, end to end (issue 18, section 2): a fresh tiny model, SFT on the
# solver's checked reasoning traces, then GRPO with triad's (the paper's) reward, on induction
# levels 1-3 in the compact prompt style; greedy test accuracy after each stage (with 95% Wilson
# intervals); curves as PNG. ~24 minutes on 2 cores, the same bytes on every run (BENCHMARKS.md,
# "Reasoning traces", sixth session: this recipe does not lift accuracy beyond its variance).
# usage: bench/train/run.sh [OUT]   (default OUT: bench/train/results)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench/train/results}
SFT_STEPS=${SFT_STEPS:-1000}
RL_STEPS=${RL_STEPS:-40}
RL_LR=${RL_LR:-1e-4}
cargo build --release --quiet -p triad -p triad-trainer
T=target/release
mkdir -p "$OUT"
# Induction levels 1 and 2 have only 286 / 450 distinct train items and 75 / 152 test items at
# this seed (the manifest marks them exhausted); level 3 has thousands.
$T/triad generate --out "$OUT/data" --families induction --levels 1-3 --train 6000 --test 400 \
  --seed 21 --prompt-style compact --quiet --overwrite
SEL=(--data "$OUT/data" --families induction --levels 1-3)
# Train on at most 1,000 items per level so level 3 does not drown levels 1-2.
TRAIN=("${SEL[@]}" --limit 1000)
$T/triad-train init --size tiny "${TRAIN[@]}" --out "$OUT/init"
eval_model() {
  $T/triad-train eval --model "$1" "${SEL[@]}" --max-new-tokens 256 --json "$OUT/eval-$2.json" | tee "$OUT/eval-$2.md"
}
time $T/triad-train sft --model "$OUT/init" "${TRAIN[@]}" --out "$OUT/sft" --steps "$SFT_STEPS" \
  --batch-size 32 --lr 1e-3 --target trace
eval_model "$OUT/sft" sft
# The default curriculum: level 1 until 80% rollout accuracy over 64 rollouts, then 2, then 3.
time $T/triad-train rl --model "$OUT/sft" "${TRAIN[@]}" --out "$OUT/rl" --steps "$RL_STEPS" \
  --prompts 16 --rollouts 8 --estimator grpo --temperature 1.0 --max-new-tokens 200 \
  --lr "$RL_LR" --reward paper --save-every 10
eval_model "$OUT/rl" rl
$T/triad-train plot "$OUT/sft/metrics.jsonl" "$OUT/rl/metrics.jsonl" --out "$OUT/curves.png"
