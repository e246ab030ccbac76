#!/usr/bin/env bash
# Deduction level 1 on this CPU (issue 18, section 2): a fresh tiny model, SFT on the solver's
# checked derivations of 100,000 fresh items, then, from the same SFT model, 150 GRPO steps with
# the paper's reward against 2,000 more SFT steps; greedy accuracy on all 400 test items after
# each stage (95% Wilson intervals). The numbers and what mattered: BENCHMARKS.md, "Reasoning
# traces", ninth session. ~50 minutes on 2 cores; deterministic like every triad-train stage
# (its stages were measured one by one with these flags; the script was not run end to end).
# The tenth session's variants: RL_REWARD=steps (the per-line reward), RL_PROMPTS=8
# RL_ROLLOUTS=16 (larger groups).
# usage: bench/train/deduction.sh [OUT]   (default OUT: bench/train/results-deduction)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench/train/results-deduction}
RL_STEPS=${RL_STEPS:-150}
RL_LR=${RL_LR:-3e-4}
RL_TEMPERATURE=${RL_TEMPERATURE:-1.0}
RL_REWARD=${RL_REWARD:-paper}
RL_PROMPTS=${RL_PROMPTS:-16}
RL_ROLLOUTS=${RL_ROLLOUTS:-8}
cargo build --release --quiet -p triad -p triad-trainer
T=target/release
mkdir -p "$OUT"
$T/triad generate --out "$OUT/data" --families deduction --levels 1 --train 100000 --test 400 \
  --seed 11 --prompt-style compact --quiet --overwrite
SEL=(--data "$OUT/data" --families deduction --levels 1)
$T/triad-train init --size tiny "${SEL[@]}" --limit 5000 --seed 0 --out "$OUT/init"
eval_model() {
  $T/triad-train eval --model "$1" "${SEL[@]}" --max-new-tokens 160 --json "$OUT/eval-$2.json" \
    --responses "$OUT/responses-$2.jsonl" | tee "$OUT/eval-$2.md"
}
# Trace SFT in legs of 1,500, 2,000 and 2,000 steps (batch order seeds 0, 2, 3), as measured:
# the loss sits at ~0.11 a target token for the first ~2,000 steps (12% accuracy after the first
# leg) and then falls to ~0.055 as the model starts to carry values through two-variable formulas.
prev="$OUT/init"
for leg in "1 1500 0" "2 2000 2" "3 2000 3"; do
  read -r n steps seed <<<"$leg"
  time $T/triad-train sft --model "$prev" "${SEL[@]}" --out "$OUT/sft$n" --steps "$steps" \
    --batch-size 32 --lr 1e-3 --target trace --seed "$seed"
  eval_model "$OUT/sft$n" "sft$n"
  prev="$OUT/sft$n"
done
# From the same start: GRPO with the paper's reward (~9 minutes) ...
time $T/triad-train rl --model "$OUT/sft3" "${SEL[@]}" --out "$OUT/rl" --steps "$RL_STEPS" \
  --prompts "$RL_PROMPTS" --rollouts "$RL_ROLLOUTS" --estimator grpo --temperature "$RL_TEMPERATURE" \
  --max-new-tokens 160 --lr "$RL_LR" --reward "$RL_REWARD" --seed 0 --save-every 10
eval_model "$OUT/rl" rl
# ... against a fourth SFT leg of 2,000 steps (~10 minutes).
time $T/triad-train sft --model "$OUT/sft3" "${SEL[@]}" --out "$OUT/sft4" --steps 2000 \
  --batch-size 32 --lr 1e-3 --target trace --seed 4
eval_model "$OUT/sft4" sft4
$T/triad-train plot "$OUT/sft3/metrics.jsonl" "$OUT/rl/metrics.jsonl" --out "$OUT/curves.png"
