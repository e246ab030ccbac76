"""Load a triad dataset through Hugging Face `datasets` and its card through `huggingface_hub`.

usage: check_dataset_card.py DATASET_DIR LICENSE
Checked: `load_dataset(DIR)` with no config name loads the default config (every family and
level), each split with the manifest's row count; every `<family>-level-<n>` config loads with its
streams' row counts; the card's metadata carries the licence given and the fields the Hub reads.
"""
import json
import pathlib
import sys
from collections import Counter

import datasets
from huggingface_hub import DatasetCard

root, license_ = pathlib.Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((root / "manifest.json").read_text())
per_split, per_config = Counter(), Counter()
for s in manifest["streams"]:
    per_split[s["split"]] += s["rows"]
    per_config[(f'{s["family"]}-level-{s["level"]}', s["split"])] += s["rows"]

default = datasets.load_dataset(str(root))
assert {k: v.num_rows for k, v in default.items()} == dict(per_split), (default, per_split)
families = {s["family"] for s in manifest["streams"]}
assert set(default["train"]["family"]) == families
names = datasets.get_dataset_config_names(str(root))
assert names[0] == "all" and set(names[1:]) == {c for c, _ in per_config}, names
for (config, split), rows in per_config.items():
    got = datasets.load_dataset(str(root), config, split=split)
    assert got.num_rows == rows, (config, split, got.num_rows, rows)

card = DatasetCard.load(root / "README.md").data.to_dict()
assert card["license"] == license_, card["license"]
assert card["language"] == ["en"] and card["task_categories"] == ["text-generation"], card
assert card["pretty_name"].startswith("triad"), card["pretty_name"]
assert families <= set(card["tags"]), card["tags"]
assert len(card["size_categories"]) == 1, card["size_categories"]
print("ok", len(names), "configs", sum(per_split.values()), "rows")
