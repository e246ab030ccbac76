"""Read a triad dataset with pyarrow, check it against the published schemas, write rollouts.

usage: check_shards.py DATASET_DIR SCHEMAS_DIR ROLLOUTS_OUT

Fails (non-zero exit) on any mismatch; prints `rows=N` on success. Each rollout is the row's
reference answer wrapped the way a model would write it, with the row's prompt and label.
"""
import json
import pathlib
import sys

import jsonschema
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def type_name(t):
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_int64(t):
        return "int64"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_list(t):
        return f"list<{type_name(t.value_type)}>"
    if pa.types.is_struct(t):
        inner = ", ".join(f"{t.field(i).name}: {type_name(t.field(i).type)}" for i in range(t.num_fields))
        return f"struct<{inner}>"
    raise AssertionError(f"unexpected type {t}")


def main():
    root, schemas, out = map(pathlib.Path, sys.argv[1:4])
    row_schema = json.loads((schemas / "row.schema.json").read_text())
    label_schema = json.loads((schemas / "label.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(label_schema)
    manifest = json.loads((root / "manifest.json").read_text())

    # The whole directory opens as one dataset: every shard has the same schema.
    paths = [str(root / s["path"]) for stream in manifest["streams"] for s in stream["shards"]]
    table = ds.dataset(paths, format="parquet").to_table()
    expected = [(c["name"], c["type"]) for c in row_schema["columns"]]
    actual = [(f.name, type_name(f.type)) for f in table.schema]
    assert actual == expected, f"schema differs:\n{actual}\n{expected}"
    assert table.num_rows == manifest["total_rows"], (table.num_rows, manifest["total_rows"])

    rows = 0
    with open(out, "w") as sink:
        for stream in manifest["streams"]:
            for shard in stream["shards"]:
                t = pq.read_table(root / shard["path"])
                assert t.num_rows == shard["rows"]
                for row in t.to_pylist():
                    rows += 1
                    assert row["data_source"] == f"triad/{row['family']}"
                    assert row["ability"] == row["family"]
                    assert row["reward_model"]["style"] == "rule"
                    assert row["reward_model"]["ground_truth"] == row["label"]
                    assert row["extra_info"]["split"] == stream["split"]
                    assert row["extra_info"]["id"] == row["id"]
                    assert all(set(m) == {"role", "content"} for m in row["prompt"])
                    label = json.loads(row["label"])
                    validator.validate(label)
                    assert label["family"] == row["family"] and label["level"] == row["level"]
                    assert row[row["family"]] is not None
                    prompt = row["prompt"][-1]["content"]
                    think = "" if prompt.endswith("<think>") else "<think>"
                    response = f"{think}I checked every formula.</think>\n<answer>\n{row['answer']}\n</answer>"
                    sink.write(json.dumps({"response": response, "label": row["label"], "prompt": row["prompt"]}) + "\n")
    print(f"rows={rows}")


if __name__ == "__main__":
    main()
