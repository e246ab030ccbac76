#!/usr/bin/env bash
# triad-train against PyTorch + transformers at a Qwen2.5-0.5B-shaped body (hidden 896, 24 layers,
# 14 query / 2 key-value heads, SwiGLU 4864, tied embeddings: 359 M parameters with triad's
# 1,024-entry task vocabulary), speed and peak memory, side by side, 2 threads each.
# The checkpoint is written by transformers (random weights, seed 0) beside a `triad-train init`
# tokenizer, and triad-train loads it as it is. Each phase runs in its own process under
# /usr/bin/time, so its peak RSS is its own:
#   sft       batch 2 (SFT_STEPS, default 6 steps; first left out of the median)
#   rl        2 prompts x 2 rollouts of up to 32 new tokens (RL_STEPS, default 3): the update
#             (policy + reference forward, backward, AdamW) and, separately, the sampling
# Uses bench/train/.torch-venv (vs_torch.sh installs it). Takes ~15 minutes on 2 cores, ~12 GB.
# usage: bench/train/vs_torch_05b.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=bench/train/.torch-venv
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "torch==2.15.0" "transformers==5.24.0" pyarrow tokenizers
fi
cargo build --release --quiet -p triad -p triad-trainer
TT=target/release/triad-train
WORK=bench/train/speed-work
SFT_STEPS=${SFT_STEPS:-6}
RL_STEPS=${RL_STEPS:-3}
mkdir -p "$WORK"
[ -d "$WORK/data" ] || target/release/triad generate --out "$WORK/data" --levels 1-2 --train 300 --test 40 --seed 7 --quiet
SEL=(--data "$WORK/data" --levels 1,2)
[ -d "$WORK/init-tiny" ] || $TT init --size tiny "${SEL[@]}" --out "$WORK/init-tiny" > /dev/null
MODEL="$WORK/init-05b"
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$PY" - "$WORK/init-tiny" "$MODEL" <<'PY'
import json, shutil, sys, torch
from transformers import Qwen2Config, Qwen2ForCausalLM
tiny, out = sys.argv[1], sys.argv[2]
base = json.load(open(f"{tiny}/config.json"))
torch.manual_seed(0)
config = Qwen2Config(vocab_size=base["vocab_size"], hidden_size=896, intermediate_size=4864,
                     num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                     max_position_embeddings=base["max_position_embeddings"], rope_theta=1e6,
                     rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=base.get("bos_token_id"),
                     eos_token_id=base["eos_token_id"])
model = Qwen2ForCausalLM(config)
model.save_pretrained(out)
for name in ["tokenizer.json", "tokenizer_config.json"]:
    shutil.copy(f"{tiny}/{name}", f"{out}/{name}")
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters", file=sys.stderr)
PY
fi
peak() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | awk '{printf "%.2f", $1 / 1048576}'; }
median() {
  python3 - "$1" "$2" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r[sys.argv[2]] for r in rows if r.get(sys.argv[2])]
print(round(statistics.median(rows[1:] or rows)))
PY
}
rm -rf "$WORK/sft-05b" "$WORK/rl-05b"
/usr/bin/time -v $TT sft --model "$MODEL" "${SEL[@]}" --out "$WORK/sft-05b" --steps "$SFT_STEPS" \
  --batch-size 2 --lr 1e-5 --save-every 1000 > /dev/null 2> "$WORK/time-triad-sft"
/usr/bin/time -v $TT rl --model "$MODEL" "${SEL[@]}" --out "$WORK/rl-05b" --steps "$RL_STEPS" --prompts 2 \
  --rollouts 2 --max-new-tokens 32 --lr 1e-6 --save-every 1000 > /dev/null 2> "$WORK/time-triad-rl"
torch_args=(--model "$MODEL" --data "$WORK/data" --threads 2 --sft-steps "$SFT_STEPS" --rl-steps "$RL_STEPS"
  --sft-batch 2 --prompts 2 --rollouts 2)
torch_sft=$(/usr/bin/time -v "$PY" bench/train/vs_torch.py "${torch_args[@]}" --phases sft 2> "$WORK/time-torch-sft")
torch_rl=$(/usr/bin/time -v "$PY" bench/train/vs_torch.py "${torch_args[@]}" --phases rl,sampling 2> "$WORK/time-torch-rl")
rate() { echo "$1" | python3 -c "import json,sys; print(next(json.loads(l)['tokens_per_s'] for l in sys.stdin if '\"$2\"' in l))"; }
ours_sft=$(median "$WORK/sft-05b/metrics.jsonl" train_tokens_per_s)
ours_rl=$(median "$WORK/rl-05b/metrics.jsonl" train_tokens_per_s)
ours_sampling=$(median "$WORK/rl-05b/metrics.jsonl" sample_tokens_per_s)
python3 - "$ours_sft" "$(rate "$torch_sft" sft)" "$(peak "$WORK/time-triad-sft")" "$(peak "$WORK/time-torch-sft")" \
  "$ours_rl" "$(rate "$torch_rl" rl)" "$ours_sampling" "$(rate "$torch_rl" sampling)" \
  "$(peak "$WORK/time-triad-rl")" "$(peak "$WORK/time-torch-rl")" <<'PY'
import sys
a = [float(x) for x in sys.argv[1:]]
print("| phase | triad-train tokens/s | PyTorch tokens/s | ratio | triad-train peak RSS | PyTorch peak RSS |")
print("|---|---|---|---|---|---|")
print(f"| sft (batch 2) | {a[0]:,.0f} | {a[1]:,.0f} | {a[0] / a[1]:.2f}× | {a[2]:.2f} GiB | {a[3]:.2f} GiB |")
print(f"| rl update (2 × 2) | {a[4]:,.0f} | {a[5]:,.0f} | {a[4] / a[5]:.2f}× | {a[8]:.2f} GiB | {a[9]:.2f} GiB |")
print(f"| sampling (2 × 2, 32 new) | {a[6]:,.0f} | {a[7]:,.0f} | {a[6] / a[7]:.2f}× | (with rl) | (with rl) |")
PY
