"""A minimal Python reward server running the paper's reward rules (regex format and answer
checks, as in its formula.py / squence.py / backward_reasoning.py), speaking OpenRLHF's
/get_reward protocol. The baseline `triad serve` is compared against in BENCHMARKS.md.

usage: python3 paper_reward_server.py PORT
"""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAIR = re.compile(r"\b([A-Za-z]+)\b\s+is\s+(True|False|reachable|unreachable)\b", re.IGNORECASE)


def response_text(query):
    for marker in ("<|im_start|>assistant", "Assistant:"):
        if marker in query:
            return query.split(marker, 1)[1]
    return query


def format_ok(text):
    tags = ["<think>", "</think>", "<answer>", "</answer>"]
    positions = []
    for tag in tags:
        if text.count(tag) != 1:
            return False
        positions.append(text.find(tag))
    return positions == sorted(positions)


def answer_score(text, label):
    found = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    if not found:
        return -2
    answer = found[-1].strip()
    expected = dict((n, v.lower()) for n, v in PAIR.findall(label))
    if not expected:
        try:
            return 2 if int(answer) == int(label.strip()) else -1.5
        except ValueError:
            return -2
    got = PAIR.findall(answer)
    if len(got) != len(expected):
        return -2
    return 2 if dict((n, v.lower()) for n, v in got) == expected else -1.5


def reward(query, label):
    text = response_text(query)
    ok = format_ok(text)
    return (1 if ok else -1) + (answer_score(text, label) if ok else -2)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rewards = [reward(q, l) for q, l in zip(body["query"], body["labels"])]
        data = json.dumps({"rewards": rewards, "scores": rewards, "extra_logs": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
