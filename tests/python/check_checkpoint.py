"""Check that a triad-train checkpoint loads with Hugging Face's own readers.

usage: check_checkpoint.py MODEL_DIR TEXT IDS
  - every tensor in model.safetensors loads with `safetensors.numpy`, its names are the
    transformers Qwen2 names, and its shapes follow config.json;
  - tokenizer.json loads with `tokenizers` and encodes TEXT to IDS (comma-separated), as the
    Rust tokenizer did.
"""
import json
import sys
from pathlib import Path

from safetensors.numpy import load_file
from tokenizers import Tokenizer

model, text, ids = Path(sys.argv[1]), sys.argv[2], [int(i) for i in sys.argv[3].split(",")]
config = json.loads((model / "config.json").read_text())
assert config["architectures"] == ["Qwen2ForCausalLM"], config
assert config["model_type"] == "qwen2"
tensors = load_file(str(model / "model.safetensors"))
h, v, i = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
d = h // heads
expected = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
if not config["tie_word_embeddings"]:
    expected["lm_head.weight"] = (v, h)
for n in range(config["num_hidden_layers"]):
    p = f"model.layers.{n}."
    expected.update({
        p + "input_layernorm.weight": (h,),
        p + "post_attention_layernorm.weight": (h,),
        p + "self_attn.q_proj.weight": (heads * d, h),
        p + "self_attn.q_proj.bias": (heads * d,),
        p + "self_attn.k_proj.weight": (kv * d, h),
        p + "self_attn.k_proj.bias": (kv * d,),
        p + "self_attn.v_proj.weight": (kv * d, h),
        p + "self_attn.v_proj.bias": (kv * d,),
        p + "self_attn.o_proj.weight": (h, heads * d),
        p + "mlp.gate_proj.weight": (i, h),
        p + "mlp.up_proj.weight": (i, h),
        p + "mlp.down_proj.weight": (h, i),
    })
got = {k: tuple(t.shape) for k, t in tensors.items()}
assert got == expected, f"names/shapes differ: {sorted(set(got.items()) ^ set(expected.items()))[:6]}"
assert all(str(t.dtype) == "float32" for t in tensors.values())
tok = Tokenizer.from_file(str(model / "tokenizer.json"))
assert tok.get_vocab_size() == v, (tok.get_vocab_size(), v)
encoded = tok.encode(text, add_special_tokens=False).ids
assert encoded == ids, f"python ids {encoded[:20]} != rust ids {ids[:20]}"
tc = json.loads((model / "tokenizer_config.json").read_text())
assert tc["eos_token"] == "<|im_end|>" and "chat_template" in tc
print("ok", len(tensors), "tensors")
