"""Online tasks against a running `triad serve`. usage: online_tasks.py URL DATA_DIR SESSION

DATA_DIR: `triad generate --families deduction --levels 2 --seed 5` (chat style). Checks, each
printed as `ok <check>`; the last line is the session's final report as JSON:
1. /tasks rows are the dataset's rows (every column; `extra_info.index` is the candidate index
   online) and deterministic; test tasks never equal train tasks.
2. A simulated learner whose answers are right exactly at levels <= SKILL, scored through
   triad_reward.score_batch with the session, is driven up the levels while SKILL = 4 and back
   down when SKILL drops to 1; /metrics exports the frontier.
3. `trl_task_dataset` (a datasets.IterableDataset, what TRL's GRPOTrainer takes) streams rows
   from a session.
4. Bad requests get 4xx with a message.
"""
import glob
import json
import os
import sys
import urllib.error
import urllib.request

import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "integrations", "python"))
import triad_reward  # noqa: E402
from triad_tasks import TaskClient, trl_task_dataset  # noqa: E402

URL, DATA, SESSION = sys.argv[1], sys.argv[2], sys.argv[3]
client = TaskClient(URL)


def without_index(row):
    row = json.loads(json.dumps(row))
    row["extra_info"].pop("index")
    return row


def check_rows_are_the_datasets():
    stored = []
    for path in sorted(glob.glob(f"{DATA}/deduction/level-2/train-*.parquet")):
        stored.extend(pq.read_table(path).to_pylist())
    last = max(r["extra_info"]["candidate"] for r in stored)
    online = client.tasks(last + 1, family="deduction", level=2, seed=5, start=0)
    by_candidate = {r["extra_info"]["candidate"]: r for r in online}
    for row in stored:
        got = by_candidate[row["extra_info"]["candidate"]]
        assert got["extra_info"]["index"] == row["extra_info"]["candidate"], got["extra_info"]
        assert without_index(got) == without_index(row), (got["id"], row["id"])
    again = client.tasks(last + 1, family="deduction", level=2, seed=5, start=0)
    assert again == online, "the same request gave other rows"
    test = client.tasks(len(online), family="deduction", level=2, seed=5, split="test", start=0)
    assert not {r["id"] for r in test} & {r["id"] for r in online}
    assert all(r["extra_info"]["split"] == "test" for r in test)
    print(f"ok {len(stored)} dataset rows equal the /tasks rows of their candidates; test never train")


def learn(skill, rounds, rollouts=2):
    """Fetch adaptive deduction tasks, answer right exactly at levels <= skill, score with the session."""
    frontiers = []
    for _ in range(rounds):
        rows = client.tasks(8, family="deduction", session=SESSION)
        items = []
        for row in rows:
            good = row["extra_info"]["level"] <= skill
            answer = f"<think>\n</think>\n<answer>\n{row['answer']}\n</answer>" if good else "no tags"
            items += [{"response": answer, "label": row["label"]}] * rollouts
        results = triad_reward.score_batch(items, url=URL, session=SESSION)
        assert [r["correct"] for r in results[::rollouts]] == [r["extra_info"]["level"] <= skill for r in rows]
        frontiers.append(client.session(SESSION)["families"]["deduction"]["frontier"])
    return frontiers


def check_the_learner_is_driven_up_and_down():
    made = client.create_session(SESSION)
    assert made["id"] == SESSION
    up = learn(skill=4, rounds=40)
    assert max(up) == 5 and up[-1] in (4, 5), up
    assert sorted(set(up[: up.index(5)])) == [1, 2, 3, 4], up
    report = client.session(SESSION)["families"]["deduction"]
    low, high = report["window"]
    assert high == report["frontier"] and high - low <= 3, report
    down = learn(skill=1, rounds=40)
    assert down[-1] in (1, 2) and min(down) == 1, down
    with urllib.request.urlopen(URL + "/metrics") as reply:
        metrics = reply.read().decode()
    line = f'triad_session_frontier{{session="{SESSION}",family="deduction"}} {down[-1]}'
    assert line in metrics, metrics[-2000:]
    print(f"ok learner driven up to level {max(up)} (skill 4) and back to {down[-1]} (skill 1); metrics export it")


def check_the_trl_dataset_streams_from_the_session():
    session = SESSION + "-trl"
    client.create_session(session)
    dataset = trl_task_dataset(client, session, family="induction", batch=4)
    rows = [row for _, row in zip(range(10), dataset)]
    assert len(rows) == 10 and all(set(r) == {"prompt", "label"} for r in rows), rows[:1]
    assert all(json.loads(r["label"])["family"] == "induction" for r in rows)
    assert rows[0]["prompt"][-1]["role"] == "user"
    cursor = client.session(session)["cursors"]["induction/1/train/0/chat"]
    assert cursor >= 10, cursor
    print(f"ok trl_task_dataset streams the session's tasks (datasets.IterableDataset), cursor at {cursor}")


def status_of(method, path, body):
    request = urllib.request.Request(URL + path, data=body.encode() if body is not None else None, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def check_bad_requests():
    cases = [
        ("POST", "/tasks", '{"n": 2, "family": "nope"}', 400, "unknown family"),
        ("POST", "/tasks", '{"n": 2, "level": 42}', 400, "no level 42"),
        ("POST", "/tasks", '{"n": 100000}', 400, "--max-tasks"),
        ("POST", "/tasks", '{"n": 1, "level": "adaptive"}', 400, "needs a session"),
        ("POST", "/tasks", '{"n": 1, "session": "missing"}', 404, "no session"),
        ("POST", "/tasks", '{"n": 1, "colour": 3}', 400, "unknown field"),
        ("POST", "/tasks", "[1, 2", 400, "invalid request body"),
        ("POST", "/sessions", '{"id": "../../etc"}', 400, "session id"),
        ("POST", "/sessions", '{"adaptive": {"rise": 2}}', 400, "rise"),
        ("GET", "/sessions/missing", None, 404, "no session"),
        ("POST", "/score", '{"items": [], "session": "missing"}', 404, "no session"),
    ]
    for method, path, body, status, needle in cases:
        got, text = status_of(method, path, body)
        assert got == status and needle in text, (path, body, got, text)
    print(f"ok {len(cases)} bad requests refused with a reason")


check_rows_are_the_datasets()
check_the_learner_is_driven_up_and_down()
check_the_trl_dataset_streams_from_the_session()
check_bad_requests()
print(json.dumps(client.session(SESSION)))
