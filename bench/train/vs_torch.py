"""PyTorch + transformers on the workload of bench/train/speed.sh, for the side-by-side table.

Loads the same Hugging Face checkpoint (a `triad-train init` model) and the same dataset, and
times, with the given number of threads:
  sft       16 (--sft-batch) random (prompt, answer) pairs per step, ChatML prompt, right
            padding, loss on the answer tokens, backward, clip 1.0, AdamW; tokens = unpadded
            prompt + answer tokens (as triad-train's metrics count them);
  rl        the REINFORCE++/GRPO update of triad-train rl on 8 prompts x 4 fixed rollouts
            (--prompts, --rollouts; the reference answers, with random advantages): policy and
            reference forward, clipped ratio, k3 KL to the reference, entropy bonus, backward,
            clip, AdamW; tokens = padded batch positions (as triad-train counts them);
  sampling  8 prompts x 4 rollouts of up to 32 new tokens with a KV cache (generate, temperature 1);
            tokens = tokens generated.
Prints one JSON line per phase with the median tokens/s over steps (the first left out).
"""

import argparse
import glob
import json
import random
import statistics
import time

import pyarrow.parquet as pq
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

IM_START, IM_END = "<|im_start|>", "<|im_end|>"


def chat_prompt(messages):
    if len(messages) == 1 and messages[0]["content"].startswith(IM_START):
        return messages[0]["content"]
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + f"{IM_START}assistant\n"


def sft_target(answer, prefilled):
    return ("" if prefilled else "<think>") + f"\n</think>\n<answer>\n{answer}\n</answer>{IM_END}"


def load(data, levels, tok):
    pairs = []
    for path in sorted(glob.glob(f"{data}/*/level-*/train-*.parquet")):
        level = int(path.split("level-")[1].split("/")[0])
        if level not in levels:
            continue
        for row in pq.read_table(path, columns=["prompt", "answer"]).to_pylist():
            prompt = chat_prompt(row["prompt"])
            target = sft_target(row["answer"], prompt.rstrip().endswith("<think>"))
            pairs.append((tok.encode(prompt, add_special_tokens=False).ids,
                          tok.encode(target, add_special_tokens=False).ids))
    return pairs


def pack(batch, pad):
    width = max(len(p) + len(c) for p, c in batch) - 1
    inputs, targets, mask = [], [], []
    for p, c in batch:
        full = p + c
        inputs.append([full[t] if t < len(full) else pad for t in range(width)])
        targets.append([full[t + 1] if t + 1 < len(full) else pad for t in range(width)])
        mask.append([1.0 if len(p) <= t + 1 < len(full) else 0.0 for t in range(width)])
    return torch.tensor(inputs), torch.tensor(targets), torch.tensor(mask)


def sft(model, pairs, steps, batch_size, pad, rng):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    rates = []
    for _ in range(steps):
        batch = [pairs[rng.randrange(len(pairs))] for _ in range(batch_size)]
        inputs, targets, mask = pack(batch, pad)
        start = time.perf_counter()
        logits = model(input_ids=inputs).logits
        logp = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        loss = -(logp * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seconds = time.perf_counter() - start
        rates.append(sum(len(p) + len(c) for p, c in batch) / seconds)
    return rates


def rl(model, reference, pairs, steps, prompts, rollouts, pad, rng):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    rates = []
    for _ in range(steps):
        batch = [pairs[rng.randrange(len(pairs))] for _ in range(prompts)]
        batch = [pair for pair in batch for _ in range(rollouts)]
        inputs, targets, mask = pack(batch, pad)
        adv = torch.tensor([rng.gauss(0, 1) for _ in batch]).unsqueeze(1)
        start = time.perf_counter()
        logp_all = torch.log_softmax(model(input_ids=inputs).logits, -1)
        logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        with torch.no_grad():
            ref = torch.log_softmax(reference(input_ids=inputs).logits, -1)
            ref = ref.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        old = logp.detach()
        ratio = (logp - old).exp()
        per_token = torch.maximum(-ratio * adv, -ratio.clamp(0.8, 1.2) * adv)
        diff = ref - logp
        kl = (diff.exp() - diff - 1).clamp(-10, 10)
        per_token = per_token + 0.001 * kl - 0.001 * entropy
        loss = (per_token * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seconds = time.perf_counter() - start
        rates.append(inputs.numel() / seconds)
    return rates


def sampling(model, pairs, steps, prompts, rollouts, eos, pad, rng):
    rates = []
    for _ in range(steps):
        generated, start = 0, time.perf_counter()
        for _ in range(prompts):
            prompt = torch.tensor([pairs[rng.randrange(len(pairs))][0]])
            with torch.no_grad():
                out = model.generate(input_ids=prompt, do_sample=True, temperature=1.0, top_p=1.0,
                                     top_k=0, max_new_tokens=32, num_return_sequences=rollouts,
                                     eos_token_id=eos, pad_token_id=pad)
            for row in out[:, prompt.shape[1]:].tolist():
                generated += next((i + 1 for i, t in enumerate(row) if t == eos), len(row))
        rates.append(generated / (time.perf_counter() - start))
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--levels", default="1,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sft-steps", type=int, default=12)
    ap.add_argument("--rl-steps", type=int, default=4)
    ap.add_argument("--sft-batch", type=int, default=16)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--phases", default="sft,rl,sampling",
                    help="comma-separated subset (one process per phase measures its peak memory)")
    args = ap.parse_args()
    phases = set(args.phases.split(","))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    config = json.load(open(f"{args.model}/config.json"))
    eos, pad = config["eos_token_id"], 0
    pairs = load(args.data, {int(x) for x in args.levels.split(",")}, tok)
    rng = random.Random(0)
    median = lambda rates: round(statistics.median(rates[1:] or rates))
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    model.train()
    if "sft" in phases:
        rates = sft(model, pairs, args.sft_steps, args.sft_batch, pad, rng)
        print(json.dumps({"phase": "sft", "tokens_per_s": median(rates)}))
    if "rl" in phases:
        reference = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32).eval()
        rates = rl(model, reference, pairs, args.rl_steps, args.prompts, args.rollouts, pad, rng)
        print(json.dumps({"phase": "rl", "tokens_per_s": median(rates)}))
    if "sampling" in phases:
        model.eval()
        rates = sampling(model, pairs, args.rl_steps, args.prompts, args.rollouts, eos, pad, rng)
        print(json.dumps({"phase": "sampling", "tokens_per_s": median(rates)}))


if __name__ == "__main__":
    main()
