"""triad against the real libraries (opt-in; run by check.sh in its own venv).

usage: check.py DATA_DIR MODEL_DIR RESPONSES_JSONL SERVER_URL [LOSSES_JSONL]
  DATA_DIR         a `triad generate` dataset (chat style)
  MODEL_DIR        a `triad-train` checkpoint
  RESPONSES_JSONL  `triad-train eval --split test --responses` of MODEL_DIR on DATA_DIR
  SERVER_URL       a running `triad serve`
  LOSSES_JSONL     `triad-train eval --split test --losses` of MODEL_DIR on DATA_DIR
Checks (all, or those named in $CHECKS, e.g. CHECKS=verl,trl), each printed as `ok <name>` (any
failure raises):
  transformers     AutoModelForCausalLM + AutoTokenizer load the checkpoint and greedy-decode
                   every evaluated test prompt to exactly triad-train's response;
  loss             transformers' teacher-forced loss of every SFT target equals triad-train's
                   (per task, within 1e-4 nats per token; same token count);
  openrlhf         OpenRLHF's own remote-reward executor (SingleTurnAgentExecutor) gets 3.0 for
                   reference answers and -3.0 for junk from triad serve;
  trl              TRL's GRPOTrainer runs 2 steps on the checkpoint with trl_reward() as its reward;
  verl             verl's own config (hydra, ppo_trainer) with the documented keys: create_rl_dataset
                   reads every train shard with prompt_key=prompt (rows, prompts, data sources and
                   ground truths as written), load_reward_manager with reward.custom_reward_function.*
                   scores reference answers 3.0 and junk -3.0 through its naive manager, and the
                   pre-0.8 top-level key is (as documented) ignored;
  trl-online       GRPOTrainer 2 steps on triad_tasks.trl_task_dataset (fresh tasks from a session)
                   with trl_reward(session=...): the session records the rewards;
  verl-online      create_rl_dataset with data.custom_cls = triad_tasks.TriadTaskDataset: items are
                   fresh session tasks through verl's own row processing, and compute_score with
                   reward_kwargs.session counts toward the session.
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
losses_path = sys.argv[5] if len(sys.argv) > 5 else None
os.environ["TRIAD_URL"] = url


def rows(split):
    out = []
    for path in sorted(glob.glob(f"{data}/*/level-*/{split}-*.parquet")):
        out.extend(pq.read_table(path).to_pylist())
    return out


def load_with_transformers(expected_path):
    """The checkpoint through transformers' Auto classes, the test rows by id, and triad-train's
    JSON lines to compare with."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    by_id = {r["id"]: r for r in rows("test")}
    expected = [json.loads(line) for line in Path(expected_path).read_text().splitlines()]
    return tok, model, by_id, expected


def check_transformers():
    tok, model, by_id, expected = load_with_transformers(responses_path)
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


def check_loss():
    assert losses_path, "the loss check needs LOSSES_JSONL"
    tok, model, by_id, expected = load_with_transformers(losses_path)
    worst = 0.0
    for sample in expected:
        messages = [dict(m) for m in by_id[sample["id"]]["prompt"]]
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        target = tok(sample["target"], add_special_tokens=False)["input_ids"]
        assert len(target) == sample["tokens"], (sample["id"], len(target), sample["tokens"])
        ids = torch.tensor([list(prompt) + target])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].double()
        log_probs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
        nll = -log_probs.gather(1, torch.tensor(target)[:, None]).mean().item()
        worst = max(worst, abs(nll - sample["nll"]))
        assert abs(nll - sample["nll"]) <= 1e-4, (sample["id"], nll, sample["nll"])
    print(f"ok loss transformers == triad-train on {len(expected)} SFT targets (largest gap {worst:.2e} nats/token)")


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


def verl_config(overrides):
    import verl
    from hydra import compose, initialize_config_dir

    config_dir = str(Path(verl.__file__).parent / "trainer/config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def verl_reward(manager, response_text, row, tok):
    import numpy as np
    from verl import DataProto

    response = torch.tensor(tok.encode(response_text, add_special_tokens=False))
    batch = DataProto.from_dict(
        tensors={"prompts": torch.zeros(1, 1, dtype=torch.long), "responses": response[None],
                 "attention_mask": torch.ones(1, 1 + len(response), dtype=torch.long)},
        non_tensors={"data_source": np.array([row["data_source"]], dtype=object),
                     "reward_model": np.array([dict(row["reward_model"])], dtype=object),
                     "extra_info": np.array([dict(row["extra_info"])], dtype=object)})
    return manager.loop.run_until_complete(manager.run_single(batch))["reward_score"]


def check_verl():
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager
    from verl.trainer.ppo.utils import create_rl_dataset

    files = sorted(glob.glob(f"{data}/*/level-*/train-*.parquet"))
    reward_py = str(ROOT / "integrations/python/triad_reward.py")
    cfg = verl_config([f"data.train_files=[{','.join(files)}]", "data.prompt_key=prompt",
                       f"reward.custom_reward_function.path={reward_py}",
                       "reward.custom_reward_function.name=compute_score"])
    legacy = verl_config([f"custom_reward_function.path={reward_py}", "custom_reward_function.name=compute_score"])
    assert get_custom_reward_fn(legacy) is None, "verl read the top-level key; update the README's table"

    tok = AutoTokenizer.from_pretrained(model_dir)
    dataset = create_rl_dataset(cfg.data.train_files, cfg.data, tok, None)
    expected = rows("train")
    assert len(dataset) == len(expected), (len(dataset), len(expected))
    for i, row in enumerate(expected):
        item = dataset[i]
        assert [dict(m) for m in item["raw_prompt"]] == [dict(m) for m in row["prompt"]], i
        assert item["data_source"] == row["data_source"], i
        assert item["reward_model"]["ground_truth"] == row["label"], i

    manager = load_reward_manager(cfg, tok)
    sample = expected[:3] + expected[-3:]
    good = [verl_reward(manager, f"<think>\n</think>\n<answer>\n{r['answer']}\n</answer>", r, tok) for r in sample]
    junk = [verl_reward(manager, "no tags at all", r, tok) for r in sample]
    assert good == [3.0] * len(sample) and junk == [-3.0] * len(sample), (good, junk)
    print(f"ok verl create_rl_dataset {len(dataset)} rows as written; {type(manager).__name__} "
          f"with reward.custom_reward_function: {len(good)} reference answers 3.0, {len(junk)} junk -3.0")


def check_trl_online():
    from trl import GRPOConfig, GRPOTrainer
    from triad_reward import trl_reward
    from triad_tasks import TaskClient, trl_task_dataset

    client = TaskClient(url)
    session = client.create_session("eco-trl")["id"]
    train = trl_task_dataset(client, session, family="deduction", batch=8)
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, max_steps=2, per_device_train_batch_size=4, num_generations=4,
                          max_completion_length=24, learning_rate=1e-4, logging_steps=1, report_to=[],
                          use_cpu=True, save_strategy="no", bf16=False, shuffle_dataset=False)
        trainer = GRPOTrainer(model=model_dir, reward_funcs=[trl_reward(session=session)], args=args,
                              train_dataset=train)
        trainer.train()
    levels = client.session(session)["families"]["deduction"]["levels"]
    scored = sum(level["scored"] for level in levels.values())
    assert scored >= 8, levels
    print(f"ok trl-online GRPOTrainer 2 steps on session tasks; the session recorded {scored} rewards")


def check_verl_online():
    from transformers import AutoTokenizer
    from verl.trainer.ppo.utils import create_rl_dataset
    from triad_reward import compute_score
    from triad_tasks import TaskClient

    tasks_py = str(ROOT / "integrations/python/triad_tasks.py")
    cfg = verl_config([f"data.custom_cls.path={tasks_py}", "data.custom_cls.name=TriadTaskDataset",
                       "+data.triad_session=eco-verl", f"+data.triad_url={url}", "+data.triad_family=induction",
                       "+data.triad_length=64", "data.train_files=[]"])
    tok = AutoTokenizer.from_pretrained(model_dir)
    dataset = create_rl_dataset(cfg.data.train_files, cfg.data, tok, None)
    assert type(dataset).__name__ == "TriadTaskDataset" and len(dataset) == 64, (type(dataset), len(dataset))
    items = [dataset[i] for i in range(10)]
    assert all(item["data_source"] == "triad/induction" and item["raw_prompt"] for item in items)
    assert len({item["extra_info"]["id"] for item in items}) >= 2
    for item in items:
        result = compute_score(item["data_source"], "no tags", item["reward_model"]["ground_truth"],
                               item["extra_info"], url=url, session="eco-verl")
        assert result["score"] == -3.0, result
    scored = TaskClient(url).session("eco-verl")["families"]["induction"]["levels"]["1"]["scored"]
    assert scored == 10, scored
    print(f"ok verl-online TriadTaskDataset via create_rl_dataset: fresh session tasks; compute_score(session=...) recorded {scored}")


CHECKS = {"transformers": check_transformers, "loss": check_loss, "openrlhf": check_openrlhf, "trl": check_trl, "verl": check_verl,
          "trl-online": check_trl_online, "verl-online": check_verl_online}
for name in os.environ.get("CHECKS", ",".join(CHECKS)).split(","):
    CHECKS[name.strip()]()
