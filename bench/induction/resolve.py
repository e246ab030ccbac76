"""An independent re-solver for triad's induction items: how many have a second answer under the
paper's operator set?

For every row of the given Parquet shards it enumerates every cyclic rule of period 1..P (P the
level's longest cycle: 2 at levels 1-2, the level at 3-5) whose steps are drawn from the paper's
operators — add -4..4 (non-zero), multiply by 2..4, floor-divide by 2..4 clamped at 1 — keeps the
rules that reproduce every visible term, and counts the items for which the kept rules predict more
than one value for the hidden terms. It shares no code with triad.

usage: python3 resolve.py DATASET_DIR   (prints one line per level: items, ambiguous, fraction)
"""

import itertools
import json
import pathlib
import sys

import pyarrow.parquet as pq

OPS = [("add", r) for r in range(-4, 5) if r] + [("mul", r) for r in (2, 3, 4)] + [("div", d) for d in (2, 3, 4)]


def apply(op, x):
    kind, r = op
    if kind == "add":
        return x + r
    if kind == "mul":
        return x * r
    return max(1, x // d) if (d := r) else x


def predictions(sequence, masked, period):
    visible = [None if i in masked else v for i, v in enumerate(sequence)]
    # Per slot, the operators every visible transition through that slot allows.
    slots = [list(OPS) for _ in range(period)]
    for t in range(1, len(visible)):
        a, b = visible[t - 1], visible[t]
        if a is not None and b is not None:
            slots[(t - 1) % period] = [op for op in slots[(t - 1) % period] if apply(op, a) == b]
    found = set()
    for rule in itertools.product(*slots):
        values = [visible[0]]
        if values[0] is None:
            return {None, "first"}
        ok = True
        for t in range(1, len(visible)):
            nxt = apply(rule[(t - 1) % period], values[-1])
            if visible[t] is not None and visible[t] != nxt:
                ok = False
                break
            values.append(nxt)
        if ok:
            found.add(tuple(values[m] for m in masked))
    return found


def main():
    root = pathlib.Path(sys.argv[1])
    counts = {}
    for path in sorted(root.glob("induction/level-*/*.parquet")):
        for row in pq.read_table(path, columns=["label"]).to_pylist():
            label = json.loads(row["label"])
            level, inst = label["level"], label["instance"]
            if level > 5:
                continue
            longest = 2 if level <= 2 else level
            found = set()
            for period in range(1, longest + 1):
                found |= predictions(inst["sequence"], inst["masked"], period)
            items, ambiguous = counts.get(level, (0, 0))
            counts[level] = (items + 1, ambiguous + (len(found) > 1))
    for level, (items, ambiguous) in sorted(counts.items()):
        print(f"level {level}: {items} items, {ambiguous} with a second answer ({100 * ambiguous / items:.1f}%)")


main()
