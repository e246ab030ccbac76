"""Plant one fault in a triad dataset, keeping the manifest consistent where the fault allows.

usage: plant_fault.py DIR FAULT [ARG]
FAULT: flip-label | duplicate-row | truncate | edit-prompt | edit-instance | extra-file |
       drop-stream | edit-total | edit-seed | flip-bit OFFSET_PERMILLE | flip-bit-rehash OFFSET_PERMILLE
Prints the path it changed (last line), after any row number.
"""
import hashlib
import json
import pathlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq

root, kind = pathlib.Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((root / "manifest.json").read_text())
stream = next(s for s in manifest["streams"] if s["family"] == "deduction" and s["split"] == "train")
entry = stream["shards"][0]
path = root / entry["path"]

def save_manifest():
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))


def rehash(entry, path):
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    entry["bytes"] = path.stat().st_size


if kind == "truncate":
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
elif kind in ("flip-bit", "flip-bit-rehash"):
    data = bytearray(path.read_bytes())
    offset = len(data) * int(sys.argv[3]) // 1000
    data[offset] ^= 1 << (int(sys.argv[3]) % 8)
    path.write_bytes(bytes(data))
    if kind == "flip-bit-rehash":
        # As if the manifest had been rewritten over the corrupted shard.
        rehash(entry, path)
        save_manifest()
elif kind == "extra-file":
    extra = path.parent / "train-extra.parquet"
    extra.write_bytes(path.read_bytes())
    print(extra.relative_to(root))
    sys.exit(0)
elif kind == "drop-stream":
    manifest["streams"].remove(stream)
    manifest["total_rows"] -= stream["rows"]
    save_manifest()
elif kind == "edit-total":
    manifest["total_rows"] += 1
    save_manifest()
    print("manifest.json")
    sys.exit(0)
elif kind == "edit-seed":
    manifest["seed"] += 1
    save_manifest()
    print("manifest.json")
    sys.exit(0)
else:
    table = pq.read_table(path)
    rows = table.to_pylist()
    if kind == "flip-label":
        target = next(i for i, r in enumerate(rows) if json.loads(r["label"])["instance"]["solution"])
        label = json.loads(rows[target]["label"])
        label["instance"]["solution"][0] = not label["instance"]["solution"][0]
        text = json.dumps(label, ensure_ascii=False, separators=(",", ":"))
        rows[target]["label"] = text
        rows[target]["reward_model"]["ground_truth"] = text
        print(f"row {target}")
    elif kind == "duplicate-row":
        rows.append(rows[0])
    elif kind == "edit-prompt":
        # The model is shown another problem; the label (what it is scored on) is kept.
        target = 1
        message = rows[target]["prompt"][-1]
        edited = message["content"].replace("∧", "∨", 1)
        message["content"] = edited if edited != message["content"] else edited + "\n  - (A ∨ ¬A)"
        print(f"row {target}")
    elif kind == "edit-split":
        target = 1
        rows[target]["extra_info"]["split"] = "bogus"
        print(f"row {target}")
    elif kind == "edit-level":
        target = 1
        rows[target]["level"] = 300
        print(f"row {target}")
    elif kind == "edit-instance":
        target = 2
        formulas = rows[target]["deduction"]["formulas"]
        formulas[0] = formulas[0].replace("∧", "∨", 1).replace("→", "↔", 1) + " "
        print(f"row {target}")
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path, compression="zstd")
    entry["rows"] = len(rows)
    if kind == "duplicate-row":
        stream["rows"] += 1
        manifest["total_rows"] += 1
    rehash(entry, path)
    save_manifest()
print(entry["path"])
