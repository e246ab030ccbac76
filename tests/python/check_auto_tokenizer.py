"""Check that transformers' AutoTokenizer reads a triad-train checkpoint as triad-train does.

usage: check_auto_tokenizer.py MODEL_DIR CASES_JSON
CASES_JSON holds [{"text", "ids", "messages"?}] written by the Rust test: the texts of every family
and level (prompts and SFT targets) with the ids triad-train's own tokenizer gives them. Checked:
AutoTokenizer's ids equal triad-train's on every text, decoding gives the text back, the chat
template renders each prompt's messages to triad-train's prompt string, and the tokenizer's
length limit and special tokens agree with config.json.
"""
import json
import sys
from pathlib import Path

from transformers import AutoTokenizer

model, cases = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
config = json.loads((model / "config.json").read_text())
tok = AutoTokenizer.from_pretrained(str(model))
assert tok.model_max_length == config["max_position_embeddings"], (
    tok.model_max_length, config["max_position_embeddings"])
assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == config["eos_token_id"], tok.eos_token
assert tok.pad_token == "<|endoftext|>", tok.pad_token
assert len(tok) == config["vocab_size"], (len(tok), config["vocab_size"])
bad = []
for case in cases:
    ids = tok(case["text"], add_special_tokens=False)["input_ids"]
    if ids != case["ids"]:
        bad.append((case["what"], len(ids), len(case["ids"])))
        continue
    assert tok.decode(ids) == case["text"], case["what"]
    if case.get("messages") is not None:
        rendered = tok.apply_chat_template(
            case["messages"], tokenize=False, add_generation_prompt=True)
        assert case["text"].startswith(rendered), (case["what"], rendered[-80:])
assert not bad, f"{len(bad)} of {len(cases)} texts tokenize differently, e.g. {bad[:5]}"
print("ok", type(tok).__name__, len(cases), "texts")
