"""Side by side, on this machine, in one run: triad (from `triad bench --json`) against
(1) a straightforward Python implementation of the paper's generators and reward rules, and
(2) reasoning-gym's closest tasks. Prints Markdown tables of items/s per core and the ratio
triad ÷ alternative, and writes the figures as JSON.

usage: compare.py TRIAD_BENCH_JSON OUT_JSON [--window SECONDS]
"""
import itertools
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serve"))
import paper_generators  # noqa: E402
from paper_reward_server import reward  # noqa: E402  (the paper's reward rules)

WINDOW = float(sys.argv[sys.argv.index("--window") + 1]) if "--window" in sys.argv else 1.0
THINK = ("Assume the first statement holds; then the second forces the third, which contradicts the fourth. "
         * 32)[:3072]


def rate(work, window=WINDOW):
    """Calls of `work()` per second over about `window` seconds (at least one call)."""
    start = time.perf_counter()
    count = 0
    while True:
        work()
        count += 1
        if time.perf_counter() - start >= window:
            break
    return count / (time.perf_counter() - start)


def paper_python():
    rows = []
    for family, generate in paper_generators.GENERATORS.items():
        for level in range(1, 6):
            rng = random.Random(level)
            gen = rate(lambda: generate(level, rng))
            prompt, truth = generate(level, rng)
            response = f"{prompt}{THINK}</think>\n<answer>\n{truth}\n</answer>"
            assert reward(response, truth) == 3, (family, level)
            score = rate(lambda: reward(response, truth), WINDOW / 2)
            rows.append({"family": family, "level": level, "generate": gen, "score": score})
    return rows


# reasoning-gym task → the triad family and level it is compared with.
GYM_TASKS = {
    "knights_knaves": ("deduction", 2),
    "propositional_logic": ("deduction", 3),
    "number_sequence": ("induction", 3),
    "list_functions": ("induction", 3),
    "acre": ("abduction", 3),
}


def reasoning_gym():
    import reasoning_gym
    rows = []
    for name, (family, level) in GYM_TASKS.items():
        try:
            dataset = reasoning_gym.create_dataset(name, size=100_000, seed=42)
        except Exception as e:  # a task missing from the installed version
            rows.append({"task": name, "error": str(e)})
            continue
        index = itertools.count()
        gen = rate(lambda: dataset[next(index) % 100_000])
        entry = dataset[0]
        score = rate(lambda: dataset.score_answer(answer=entry["answer"], entry=entry), WINDOW / 2)
        rows.append({"task": name, "family": family, "level": level, "generate": gen, "score": score,
                     "version": getattr(reasoning_gym, "__version__", "?")})
    return rows


def triad_figure(triad, family, level, key):
    for row in triad["levels"]:
        if row["family"] == family and row["level"] == level:
            if key == "score":
                return dict(row["score_1t"])["correct"]
            return row["generate_1t"]
    raise KeyError((family, level))


def human(x):
    return f"{x:,.0f}" if x >= 10 else f"{x:.2f}"


def main():
    triad = json.loads(Path(sys.argv[1]).read_text())
    paper = paper_python()
    gym = reasoning_gym()
    print(f"Machine: {triad['machine']['cpu']} ({triad['machine']['cores']} cores); one core for every figure.\n")
    print("Paper-style Python (brute-force uniqueness / model checking; regex reward) vs triad, items/s per core\n")
    print("| family | level | generate: Python | triad | ratio | score: Python | triad | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in paper:
        tg = triad_figure(triad, r["family"], r["level"], "generate")
        ts = triad_figure(triad, r["family"], r["level"], "score")
        r.update(triad_generate=tg, triad_score=ts, generate_ratio=tg / r["generate"], score_ratio=ts / r["score"])
        print(f"| {r['family']} | {r['level']} | {human(r['generate'])} | {human(tg)} | {r['generate_ratio']:,.0f}× "
              f"| {human(r['score'])} | {human(ts)} | {r['score_ratio']:,.0f}× |")
    print("\nreasoning-gym (closest tasks) vs triad at a comparable level, items/s per core\n")
    print("| reasoning-gym task | generate | score_answer | triad family, level | generate | score (3 KB response) "
          "| generate ratio | score ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in gym:
        if "error" in r:
            print(f"| {r['task']} | error: {r['error']} | | | | | | |")
            continue
        tg = triad_figure(triad, r["family"], r["level"], "generate")
        ts = triad_figure(triad, r["family"], r["level"], "score")
        r.update(triad_generate=tg, triad_score=ts, generate_ratio=tg / r["generate"], score_ratio=ts / r["score"])
        print(f"| {r['task']} | {human(r['generate'])} | {human(r['score'])} | {r['family']} {r['level']} "
              f"| {human(tg)} | {human(ts)} | {r['generate_ratio']:,.0f}× | {r['score_ratio']:,.1f}× |")
    Path(sys.argv[2]).write_text(json.dumps({"machine": triad["machine"], "paper_python": paper,
                                             "reasoning_gym": gym}, indent=2))


if __name__ == "__main__":
    main()
