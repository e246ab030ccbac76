#!/usr/bin/env bash
# Opt-in: triad against the real libraries from PyPI — transformers (greedy output and SFT loss
# of a triad-train checkpoint), OpenRLHF's remote-reward executor against `triad serve`, TRL's
# GRPOTrainer with trl_reward(), verl's dataset and reward manager with the documented keys. Installs torch (CPU use of the PyPI wheel, ~2.8 GB with its CUDA
# dependencies) into integrations/python/.eco-venv; not part of CI. Results: docs/ecosystem.md.
# usage: [CHECKS=transformers,loss,openrlhf,trl,verl] integrations/ecosystem/check.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-$(mktemp -d)}
VENV=integrations/python/.eco-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.15.0 transformers==5.24.0 datasets==5.2.0 trl==1.16.0 jinja2 pyarrow aiohttp
fi
# OpenRLHF without its GPU stack (deepspeed, vLLM, Ray): the executor needs aiohttp, and the
# package's utils import sympy (with torch) and pylatexenc.
"$VENV/bin/pip" install -q --no-deps openrlhf==0.11.2
# verl without its GPU stack (vLLM, SGLang, wandb...): its dataset and reward-manager path
# imports hydra, ray (DataProto), tensordict, codetiming, dill, torchdata and PIL.
"$VENV/bin/pip" install -q --no-deps verl==0.9.1
"$VENV/bin/pip" install -q pylatexenc hydra-core ray codetiming dill "tensordict>=0.8,<=0.10,!=0.9.0" torchdata pillow
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p triad -p triad-trainer
T=target/release
$T/triad generate --out "$WORK/data" --families deduction,induction --levels 1 --train 400 --test 40 --seed 5 --quiet --overwrite
$T/triad-train init --size tiny --data "$WORK/data" --out "$WORK/init"
$T/triad-train sft --model "$WORK/init" --data "$WORK/data" --out "$WORK/sft" --steps 60 --batch-size 16
$T/triad-train eval --model "$WORK/sft" --data "$WORK/data" --split test --max-new-tokens 64 --responses "$WORK/responses.jsonl" \
  --losses "$WORK/losses.jsonl" --target trace
$T/triad serve --port 0 2> "$WORK/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for _ in $(seq 50); do grep -q "listening" "$WORK/serve.log" && break; sleep 0.1; done
URL=$(grep -o "http://[0-9.:]*" "$WORK/serve.log" | head -1)
"$VENV/bin/python" -c "import torch, transformers, datasets, trl; print('versions: torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'trl', trl.__version__)"
"$VENV/bin/pip" show openrlhf 2>/dev/null | sed -n 's/^Version: /openrlhf /p'
"$VENV/bin/pip" show verl 2>/dev/null | sed -n 's/^Version: /verl /p'
"$VENV/bin/python" integrations/ecosystem/check.py "$WORK/data" "$WORK/sft" "$WORK/responses.jsonl" "$URL" "$WORK/losses.jsonl"
