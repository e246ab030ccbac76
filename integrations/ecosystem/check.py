"""triad against the real libraries (opt-in; run by check.sh in its own venv).

usage: check.py DATA_DIR MODEL_DIR RESPONSES_JSONL SERVER_URL
  DATA_DIR         a `triad generate` dataset (chat style)
  MODEL_DIR        a `triad-train` checkpoint
  RESPONSES_JSONL  `triad-train eval --split test --responses` of MODEL_DIR on DATA_DIR
  SERVER_URL       a running `triad serve`
Checks, each printed as `ok <name>` (any failure raises):
  transformers     AutoModelForCausalLM + AutoTokenizer load the checkpoint and greedy-decode
                   every evaluated test prompt to exactly triad-train's response;
  openrlhf         OpenRLHF's own remote-reward executor (SingleTurnAgentExecutor) gets 3.0 for
                   reference answers and -3.0 for junk from triad serve;
  trl              TRL's GRPOTrainer runs 2 steps on the checkpoint with trl_reward() as its reward.
"""
import asyncio
import glob
import json
import os
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integrations/python"))

data, model_dir, responses_path, url = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
os.environ["TRIAD_URL"] = url


def rows(split):
    out = []
    for path in sorted(glob.glob(f"{data}/*/level-*/{split}-*.parquet")):
        out.extend(pq.read_table(path).to_pylist())
    return out


def check_transformers():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    by_id = {r["id"]: r for r in rows("test")}
    expected = [json.loads(line) for line in Path(responses_path).read_text().splitlines()]
    same = 0
    for sample in expected:
        row = by_id[sample["id"]]
        messages = [dict(m) for m in row["prompt"]]
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        n = ids["input_ids"].shape[1]
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=64, do_sample=False, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id)
        text = tok.decode(out[0, n:], skip_special_tokens=True)
        same += text == sample["response"]
        assert text == sample["response"], (sample["id"], text[:120], sample["response"][:120])
    print(f"ok transformers greedy == triad-train on {same}/{len(expected)} test prompts ({type(tok).__name__})")


def check_openrlhf():
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(url.rstrip("/") + "/get_reward")
    train = rows("train")[:6]
    good = [f"<think>\n</think>\n<answer>\n{r['answer']}\n</answer>" for r in train]
    queries = good + ["no tags at all"] * len(train)
    labels = [r["label"] for r in train] * 2
    replies = asyncio.run(executor._fetch_rewards_via_http(queries, [""] * len(queries), labels))
    rewards = [x for reply in replies for x in reply["rewards"]]
    assert rewards == [3.0] * len(train) + [-3.0] * len(train), rewards
    print(f"ok openrlhf SingleTurnAgentExecutor: {len(rewards)} rewards as expected")


def check_trl():
    import datasets
    from trl import GRPOConfig, GRPOTrainer
    from triad_reward import trl_reward

    train = rows("train")[:16]
    ds = datasets.Dataset.from_list([{"prompt": [dict(m) for m in r["prompt"]], "label": r["label"]} for r in train])
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, max_steps=2, per_device_train_batch_size=4, num_generations=4,
                          max_completion_length=24, learning_rate=1e-4, logging_steps=1, report_to=[],
                          use_cpu=True, save_strategy="no", bf16=False)
        trainer = GRPOTrainer(model=model_dir, reward_funcs=[trl_reward()], args=args, train_dataset=ds)
        trainer.train()
        logged = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logged) == 2 and all(-3.0 <= h["reward"] <= 3.0 for h in logged), logged
    print(f"ok trl GRPOTrainer 2 steps, rewards {[round(h['reward'], 3) for h in logged]}")


check_transformers()
check_openrlhf()
check_trl()
