"""Drive a running `triad serve` the way its users do. usage: server_clients.py URL PID

Fails (non-zero exit) on any wrong reward or status; prints one `ok <check>` line per check.
The last check sends SIGTERM to PID while a large request is in flight and expects that request
to complete.
"""
import concurrent.futures
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "integrations", "python"))
import triad_reward  # noqa: E402

URL, PID = sys.argv[1], int(sys.argv[2])
PAPER = "(1) A is False\n(2) B is True\n"
TRIAD = json.dumps({"v": 1, "family": "deduction", "level": 1, "prefill": False, "instance": {
    "variables": ["A", "B"], "formulas": ["(A ∨ B)", "¬A"], "solution": [False, True]}})
PROMPT = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>"
GOOD = "I reason.</think><answer>(1) A is false\n(2) B is true</answer>"
WRONG = "I reason.</think><answer>(1) A is true\n(2) B is true</answer>"


def post(path, body, raw=False, headers=None):
    data = body if raw else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method="POST", headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def check(name, condition, detail=""):
    if not condition:
        raise SystemExit(f"FAILED {name}: {detail}")
    print(f"ok {name}", flush=True)


# verl's compute_score and TRL's reward function.
check("verl correct", triad_reward.compute_score("triad/deduction", "<think>x</think><answer>A is false, B is true</answer>", TRIAD, url=URL)["score"] == 3.0)
check("verl wrong", triad_reward.compute_score("triad/deduction", "<think>x</think><answer>A is true, B is true</answer>", TRIAD, url=URL)["score"] == -0.5)
check("verl binary", triad_reward.compute_score("x", GOOD, PAPER, url=URL, reward="binary")["score"] == 1.0)
trl = triad_reward.trl_reward(url=URL)
scores = trl(prompts=[PROMPT, [{"role": "user", "content": "q"}]], completions=[GOOD, [{"role": "assistant", "content": "<think>x</think><answer>A is true, B is true</answer>"}]], label=[PAPER, TRIAD])
check("trl", scores == [3.0, -0.5], scores)

# OpenRLHF today: many concurrent one-item requests, query = prompt + response.
def one(i):
    response = GOOD if i % 3 else WRONG
    status, body = post("/get_reward", {"query": [PROMPT + response], "prompts": [PROMPT], "labels": [PAPER]})
    return status, body["rewards"][0], 3.0 if i % 3 else -0.5

with concurrent.futures.ThreadPoolExecutor(64) as pool:
    results = list(pool.map(one, range(600)))
check("openrlhf concurrent", all(s == 200 and got == want for s, got, want in results), results[:3])

# OpenRLHF without prompts (query only) and older batched requests.
status, body = post("/get_reward", {"query": [PROMPT + GOOD, PROMPT + WRONG, "no tags at all"], "labels": [PAPER, PAPER, PAPER]})
check("openrlhf batch", status == 200 and body["rewards"] == [3.0, -0.5, -3.0] and body["scores"] == body["rewards"], body)
check("openrlhf extra_logs", body["extra_logs"]["correct"] == [1.0, 0.0, 0.0], body)

# Native batch, with a per-request preset.
status, body = post("/score", {"items": [{"response": GOOD, "label": PAPER}, {"response": WRONG, "label": PAPER, "prompt": PROMPT}], "reward": "binary"})
check("score batch", status == 200 and [r["score"] for r in body["results"]] == [1.0, 0.0], body)

# Bad input: 400s with messages; bad labels score the minimum; other items unharmed.
status, body = post("/score", b"{not json", raw=True)
check("malformed json 400", status == 400 and "error" in body, body)
status, body = post("/score", b'{"items": [{"response": "\\x", "label": "1"}]}', raw=True)
check("invalid escape 400", status == 400, body)
status, body = post("/get_reward", {"query": ["a", "b"], "labels": [PAPER]})
check("unequal lengths 400", status == 400 and "equal lengths" in body["error"], body)
status, body = post("/score", {"items": [{"response": GOOD, "label": "{\"v\": 2}"}, {"response": GOOD, "label": PAPER}]})
check("bad label", status == 200 and body["results"][0]["score"] == -3.0 and body["results"][0]["reason"].startswith("bad_label") and body["results"][1]["score"] == 3.0, body)
hostile = json.dumps({"v": 1, "family": "induction", "level": 1, "instance": {"sequence": [1, 2], "masked": [99], "rule": "", "checked_level": 1}})
status, body = post("/score", {"items": [{"response": "x</think><answer>3</answer>", "label": hostile}, {"response": GOOD, "label": PAPER}]})
check("hostile label", status == 200 and not body["results"][0]["correct"] and body["results"][1]["score"] == 3.0, body)
giant = "x" * (5 << 20) + "</think><answer>A is false, B is true</answer>"
tags = "<think></think><answer></answer>" * 5000
status, body = post("/score", {"items": [{"response": giant, "label": PAPER}, {"response": tags, "label": PAPER}]})
check("giant and tag-flood responses", status == 200 and body["results"][0]["score"] == 3.0 and body["results"][1]["score"] == -3.0, str(body)[:300])

# Health and metrics.
with urllib.request.urlopen(URL + "/health") as r:
    health = json.loads(r.read())
check("health", health["status"] == "ok" and "deduction" in health["families"], health)
with urllib.request.urlopen(URL + "/metrics") as r:
    metrics = r.read().decode()
check("metrics", "triad_items_scored_total" in metrics and 'triad_family_accuracy{family="deduction"}' in metrics and "triad_request_seconds_bucket" in metrics, metrics[:300])

# Graceful shutdown: SIGTERM arrives while a request is in flight (its headers and half its body
# sent); the request still completes, then the server exits.
import http.client
from urllib.parse import urlparse

big = json.dumps({"items": [{"response": "x" * 2000 + GOOD, "label": PAPER}] * 2000}).encode()
target = urlparse(URL)
conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
conn.putrequest("POST", "/score")
conn.putheader("Content-Type", "application/json")
conn.putheader("Content-Length", str(len(big)))
conn.endheaders()
conn.send(big[: len(big) // 2])
time.sleep(0.2)
os.kill(PID, signal.SIGTERM)
time.sleep(0.3)
conn.send(big[len(big) // 2 :])
response = conn.getresponse()
results = json.loads(response.read())["results"]
check("graceful shutdown", response.status == 200 and len(results) == 2000 and all(r["score"] == 3.0 for r in results), response.status)
