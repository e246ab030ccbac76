#!/usr/bin/env bash
# triad-train's own throughput on a fixed workload, for before/after comparisons of the trainer:
# a tiny model (`init --size tiny`) on all three families at levels 1-2, SFT (batch 16) then RL
# (8 prompts x 4 rollouts, 32 new tokens). Prints the median tokens/s per phase (first step left
# out) and the loss curve, which must not change with a speed-only change.
# usage: bench/train/speed.sh [TRIAD_TRAIN [WORK]]   (default: this checkout's release build)
#        SIZE=small bench/train/speed.sh …            (model size; default tiny)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 1 ]; then cargo build --release --quiet -p triad -p triad-trainer; fi
TT=${1:-target/release/triad-train}
WORK=${2:-bench/train/speed-work}
TRIAD=target/release/triad
[ -x "$TRIAD" ] || cargo build --release --quiet -p triad
mkdir -p "$WORK"
[ -d "$WORK/data" ] || $TRIAD generate --out "$WORK/data" --levels 1-2 --train 300 --test 40 --seed 7 --quiet
SEL=(--data "$WORK/data" --levels 1,2)
SIZE=${SIZE:-tiny}
[ -d "$WORK/init-$SIZE" ] || $TT init --size "$SIZE" "${SEL[@]}" --out "$WORK/init-$SIZE" > /dev/null
rm -rf "$WORK/sft" "$WORK/rl"
$TT sft --model "$WORK/init-$SIZE" "${SEL[@]}" --out "$WORK/sft" --steps "${SFT_STEPS:-12}" --batch-size 16 --lr 1e-3 > /dev/null 2>&1
$TT rl --model "$WORK/sft" "${SEL[@]}" --out "$WORK/rl" --steps "${RL_STEPS:-4}" --prompts 8 --rollouts 4 \
  --max-new-tokens 32 --save-every 100 > /dev/null 2>&1
python3 - "$WORK" <<'PY'
import json, statistics, sys
work = sys.argv[1]
for phase in ["sft", "rl"]:
    rows = [json.loads(line) for line in open(f"{work}/{phase}/metrics.jsonl")]
    rows = [r for r in rows if r.get("phase") == phase][1:] or rows
    train = statistics.median(r["train_tokens_per_s"] for r in rows)
    sample = [r["sample_tokens_per_s"] for r in rows if r.get("sample_tokens_per_s")]
    line = f"{phase}: train {train:,.0f} tokens/s"
    if sample:
        line += f", sampling {statistics.median(sample):,.0f} tokens/s"
    print(line, "| losses", [round(r["loss"], 5) for r in rows])
PY
