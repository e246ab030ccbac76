"""Plant one fault in a triad dataset, keeping the manifest consistent where the fault allows.

usage: plant_fault.py DIR flip-label|duplicate-row|truncate
Prints the shard path it changed.
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

if kind == "truncate":
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
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
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path, compression="zstd")
    entry["rows"] = len(rows)
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    entry["bytes"] = path.stat().st_size
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
print(entry["path"])
