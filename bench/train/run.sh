#!/usr/bin/env bash
# The trainer on this CPU, end to end (issue 18, section 2): a fresh tiny model, SFT on the
# solver's checked reasoning traces, then GRPO with triad's (the paper's) reward on induction
# levels 1-2 in the compact prompt style (curriculum 1 -> 2, a quarter of each step's prompts
# replayed from level 1 once it has moved on); greedy test accuracy on levels 1-3 after each
# stage (95% Wilson intervals); curves as PNG. ~21 minutes on 2 cores, the same bytes on every
# run for a given SEED (BENCHMARKS.md, "Reasoning traces", seventh session).
# usage: [SEED=N] [RL_REWARD=paper|steps] bench/train/run.sh [OUT]   (default OUT: bench/train/results,
# SEED 0, the paper's reward)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench/train/results}
SEED=${SEED:-0}
SFT_STEPS=${SFT_STEPS:-1000}
RL_STEPS=${RL_STEPS:-80}
RL_LR=${RL_LR:-1e-4}
cargo build --release --quiet -p triad -p triad-trainer
T=target/release
mkdir -p "$OUT"
# Induction levels 1 and 2 have only 286 / 450 distinct train items and 75 / 152 test items at
# this data seed (the manifest marks them exhausted); level 3 has thousands.
$T/triad generate --out "$OUT/data" --families induction --levels 1-3 --train 6000 --test 400 \
  --seed 21 --prompt-style compact --quiet --overwrite
SEL=(--data "$OUT/data" --families induction --levels 1-3)
# SFT on at most 1,000 items per level so level 3 does not drown levels 1-2.
$T/triad-train init --size tiny "${SEL[@]}" --limit 1000 --seed "$SEED" --out "$OUT/init"
eval_model() {
  # 320 new tokens: the longest level-3 trace-target responses are ~290 tokens.
  $T/triad-train eval --model "$1" "${SEL[@]}" --max-new-tokens 320 --json "$OUT/eval-$2.json" \
    --responses "$OUT/responses-$2.jsonl" | tee "$OUT/eval-$2.md"
}
time $T/triad-train sft --model "$OUT/init" "${SEL[@]}" --limit 1000 --out "$OUT/sft" \
  --steps "$SFT_STEPS" --batch-size 32 --lr 1e-3 --target trace --seed "$SEED"
eval_model "$OUT/sft" sft
# Level 1 until 80% rollout accuracy over 64 rollouts, then level 2 with 4 of 16 prompts
# replayed from level 1 (without replay, RL at one level forgets the other).
time $T/triad-train rl --model "$OUT/sft" --data "$OUT/data" --families induction --levels 1-2 \
  --out "$OUT/rl" --steps "$RL_STEPS" --prompts 16 --rollouts 8 --estimator grpo \
  --temperature 1.0 --max-new-tokens 256 --lr "$RL_LR" --reward "${RL_REWARD:-paper}" --replay 0.25 \
  --seed "$SEED" --save-every 10
eval_model "$OUT/rl" rl
$T/triad-train plot "$OUT/sft/metrics.jsonl" "$OUT/rl/metrics.jsonl" --out "$OUT/curves.png"
