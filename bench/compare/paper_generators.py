"""A straightforward Python implementation of the paper's three generators, as its released
code works: random formulas with a brute-force unique-model filter (deduction), rule-generated
sequences with the last term masked (induction), and backward rule chains validated by brute-force
model checking (abduction). The baseline triad's generators are compared against; written here
from the paper's description (../../../shared/notes/paper.md), not copied.

Each generator takes (level, random.Random) and returns (prompt, ground_truth).
"""
import itertools
import random

SYSTEM = ("You are a helpful assistant. The assistant first thinks about the reasoning process in the mind and "
          "then provides the user with the final answer. The reasoning process and answer are enclosed within "
          "<think> </think> and <answer> </answer> tags, respectively, i.e. <think> reasoning process </think>"
          "<answer> final answer </answer>.")

# ---------------------------------------------------------------- deduction
DEDUCTION_LEVELS = {1: (4, 1), 2: (6, 2), 3: (8, 3), 4: (10, 4), 5: (12, 5)}
OPS = ["→", "∧", "∨", "↔", "⊕"]


def random_formula(variables, depth, max_depth, rng):
    if depth >= max_depth:
        v = rng.choice(variables)
        return ("not", ("var", v)) if rng.random() < 0.4 else ("var", v)
    if rng.random() < 0.2:
        return ("not", random_formula(variables, depth + 1, max_depth, rng))
    op = rng.choice(OPS)
    return (op, random_formula(variables, depth + 1, max_depth, rng),
            random_formula(variables, depth + 1, max_depth, rng))


def evaluate(f, model):
    kind = f[0]
    if kind == "var":
        return model[f[1]]
    if kind == "not":
        return not evaluate(f[1], model)
    a, b = evaluate(f[1], model), evaluate(f[2], model)
    if kind == "→":
        return (not a) or b
    if kind == "∧":
        return a and b
    if kind == "∨":
        return a or b
    if kind == "↔":
        return a == b
    return a != b


def render(f):
    kind = f[0]
    if kind == "var":
        return f[1]
    if kind == "not":
        return "¬" + (f[1][1] if f[1][0] == "var" else "(" + render(f[1]) + ")")
    return "(" + render(f[1]) + " " + kind + " " + render(f[2]) + ")"


def deduction(level, rng):
    n, depth = DEDUCTION_LEVELS[level]
    variables = [chr(ord("A") + i) for i in range(n)]
    while True:
        formulas = [random_formula(variables, 0, depth, rng) for _ in range(rng.randint(3, 6))]
        models = []
        for values in itertools.product([False, True], repeat=n):
            model = dict(zip(variables, values))
            if all(evaluate(f, model) for f in formulas):
                models.append(model)
                if len(models) > 1:
                    break
        if len(models) == 1:
            break
    lines = "\n".join("  - " + render(f) for f in formulas)
    prompt = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nBelow are some nested formulas:\n{lines}\n"
              "Please list the truth value of each variable\n<|im_end|>\n<|im_start|>assistant\n<think>")
    truth = "".join(f"({i + 1}) {v} is {models[0][v]}\n" for i, v in enumerate(variables))
    return prompt, truth


# ---------------------------------------------------------------- induction
def induction(level, rng):
    masked = None
    if level == 1:
        kind = rng.choice(["arithmetic", "geometric", "alternating"])
        if kind == "arithmetic":
            n, start, step = rng.randint(5, 8), rng.randint(1, 5), rng.randint(1, 4)
            seq = [start + i * step for i in range(n)]
        elif kind == "geometric":
            n, start, ratio = rng.randint(5, 8), rng.randint(1, 3), rng.randint(2, 4)
            seq = [start * ratio ** i for i in range(n)]
        else:
            n, cur, sub, add = rng.randint(5, 7), rng.randint(1, 10), rng.randint(1, 3), rng.randint(1, 3)
            seq = [cur]
            for i in range(1, n):
                cur = cur - sub if i % 2 == 1 else cur + add
                seq.append(cur)
    elif level == 2:
        kind = rng.choice(["two-step", "muldiv", "missing"])
        if kind == "two-step":
            n, cur, a, b = rng.randint(6, 9), rng.randint(1, 5), rng.randint(1, 4), rng.randint(1, 4)
            seq = [cur]
            for i in range(1, n):
                cur += a if i % 2 == 1 else b
                seq.append(cur)
        elif kind == "muldiv":
            n, cur, mul, div = rng.randint(6, 9), rng.randint(2, 5), rng.randint(2, 4), rng.randint(2, 4)
            seq = [cur]
            for i in range(1, n):
                cur = cur * mul if i % 2 == 1 else max(1, cur // div)
                seq.append(cur)
        else:
            n, start, step = rng.randint(6, 8), rng.randint(1, 5), rng.randint(1, 4)
            seq = [start + i * step for i in range(n)]
            masked = rng.randint(1, n - 2)
    else:
        k = level
        n, cur = rng.randint(7, 11), rng.randint(1, 5)
        ops = []
        for _ in range(k):
            op = rng.choice(["+", "-", "*"])
            ops.append((op, rng.randint(2, 4) if op == "*" else rng.randint(1, 4)))
        seq = [cur]
        for i in range(1, n):
            op, r = ops[(i - 1) % k]
            cur = cur + r if op == "+" else cur - r if op == "-" else cur * r
            seq.append(cur)
    if masked is None:
        masked = len(seq) - 1
    shown = [str(x) for x in seq]
    shown[masked] = "?"
    prompt = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nGiven the following sequence,\n{shown}\n"
              "What is the value at the question mark?<|im_end|>\n<|im_start|>assistant\n<think>")
    return prompt, str(seq[masked])


# ---------------------------------------------------------------- abduction
ABDUCTION_LEVELS = {1: ((2, 3), (3, 5)), 2: ((3, 4), (5, 7)), 3: ((4, 5), (7, 9)),
                    4: ((5, 6), (8, 10)), 5: ((6, 7), (10, 12))}
LETTERS = [chr(ord("A") + i) for i in range(15)]
ATOMS = LETTERS + [a + b for a in LETTERS for b in LETTERS]


def random_body(required, pool, rng, depth=0):
    """An AND/OR/NOT tree over `pool` that contains `required` positively (so the chain holds)."""
    if depth >= 2 or rng.random() < 0.3:
        return ("var", required)
    other = ("var", rng.choice(pool))
    if rng.random() < 0.3:
        other = ("not", other)
    op = rng.choice(["∧", "∨"])
    inner = random_body(required, pool, rng, depth + 1)
    return (op, inner, other) if rng.random() < 0.5 else (op, other, inner)


def render_body(f):
    kind = f[0]
    if kind == "var":
        return f[1]
    if kind == "not":
        return "(NOT " + render_body(f[1]) + ")"
    word = "AND" if kind == "∧" else "OR"
    return "(" + render_body(f[1]) + " " + word + " " + render_body(f[2]) + ")"


def holds_everywhere(goal, known, premises, atoms):
    """True when `goal` is true in every model of the known atoms and the premises (brute force)."""
    free = [a for a in atoms if a not in known]
    for values in itertools.product([False, True], repeat=len(free)):
        model = dict(zip(free, values))
        model.update({k: True for k in known})
        if all((not evaluate(body, model)) or model[head] for body, head in premises) and not model[goal]:
            return False
    return True


def abduction(level, rng):
    (d_lo, d_hi), (x_lo, x_hi) = ABDUCTION_LEVELS[level]
    while True:
        names = rng.sample(ATOMS, 24)
        known, fresh = names[:3], names[3:]
        premises = []
        goals = [fresh.pop(), fresh.pop(), fresh.pop()]
        cur = goals[0]
        for step in range(rng.randint(d_lo, d_hi)):
            nxt = rng.choice(known) if not fresh or step == d_hi - 1 else fresh.pop()
            premises.append((random_body(nxt, known + [cur], rng), cur))
            cur = nxt
        if cur not in known:
            premises.append((("var", rng.choice(known)), cur))
        pool = list(set([h for _, h in premises]) | set(known) | set(goals))
        for _ in range(rng.randint(x_lo, x_hi)):
            premises.append((random_body(rng.choice(pool), pool, rng), rng.choice(pool)))
        atoms = sorted(set(pool) | {v for b, _ in premises for v in variables_of(b)})
        if len(atoms) > 20:
            continue
        labels = [holds_everywhere(g, set(known), premises, atoms) for g in goals]
        if labels == [True, False, False]:
            break
    order = list(range(3))
    rng.shuffle(order)
    goals = [goals[i] for i in order]
    labels = [labels[i] for i in order]
    rendered = [f"({render_body(b)}) => {h}" for b, h in premises]
    prompt = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\npremises: {rendered}\nknown_atoms: {known}\n"
              f"goals: {goals}\nFor each goal, determine whether it is reachable.<|im_end|>\n"
              "<|im_start|>assistant\n<think>")
    truth = "\n".join(f"({i + 1}) {g} is {'reachable' if ok else 'unreachable'}"
                      for i, (g, ok) in enumerate(zip(goals, labels)))
    return prompt, truth


def variables_of(f):
    if f[0] == "var":
        return {f[1]}
    if f[0] == "not":
        return variables_of(f[1])
    return variables_of(f[1]) | variables_of(f[2])


GENERATORS = {"deduction": deduction, "induction": induction, "abduction": abduction}
