"""Clients of `triad serve` for verl and TRL. Standard library only.

verl (custom reward function). The key moved in verl 0.8: `main_ppo` of verl >= 0.8 reads only
`reward.custom_reward_function.*` and silently ignores the top-level key (falling back to its
default scorer, which raises NotImplementedError for `triad/*` data sources):

    # verl >= 0.8 (checked on 0.8.0 and 0.9.1)
    reward.custom_reward_function.path=integrations/python/triad_reward.py
    reward.custom_reward_function.name=compute_score
    # verl <= 0.7 (checked on 0.4.1 to 0.7.0)
    custom_reward_function.path=integrations/python/triad_reward.py
    custom_reward_function.name=compute_score

TRL (GRPOTrainer):

    from triad_reward import trl_reward
    trainer = GRPOTrainer(..., reward_funcs=[trl_reward()])   # dataset column `label`

The server address comes from the `url` argument or `$TRIAD_URL` (default http://127.0.0.1:8000);
an API key from `api_key` or `$TRIAD_API_KEY`.
"""
import json
import os
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000"


def _post(path, payload, url=None, api_key=None, timeout=60.0):
    base = (url or os.environ.get("TRIAD_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("TRIAD_API_KEY")
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(base + path, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"triad serve answered {error.code}: {error.read().decode(errors='replace')}") from error


def score_batch(items, reward=None, url=None, api_key=None, timeout=60.0, session=None):
    """Score [{"response", "label", "prompt"?}, ...]; returns the server's result dicts, in order.
    With `session`, the scores count toward that session's adaptive level (see triad_tasks)."""
    payload = {"items": items}
    if reward:
        payload["reward"] = reward
    if session:
        payload["session"] = session
    return _post("/score", payload, url=url, api_key=api_key, timeout=timeout)["results"]


def compute_score(data_source, solution_str, ground_truth, extra_info=None, url=None, reward=None, session=None,
                  **kwargs):
    """verl's custom reward signature. Returns a dict: `score` plus `format_ok`, `correct`.

    `ground_truth` is the row's `reward_model.ground_truth` (a triad label, or a paper label).
    verl decodes the response without the prompt; a `<think>` pre-filled by a `paper`-style prompt
    is taken from the label. `session` (verl: `reward.custom_reward_function.reward_kwargs.session`)
    counts the score toward an online-task session.
    """
    label = ground_truth if isinstance(ground_truth, str) else json.dumps(ground_truth)
    result = score_batch([{"response": solution_str, "label": label}], reward=reward, url=url, session=session)[0]
    return {"score": result["score"], "format_ok": float(result["format_ok"]), "correct": float(result["correct"])}


def trl_reward(url=None, reward=None, label_column="label", session=None):
    """A TRL reward function `(prompts, completions, **kwargs) -> list[float]` backed by the server.

    Completions may be strings or conversational message lists; labels come from the dataset
    column `label_column` (triad writes `label`). With `session`, the rewards steer that
    session's adaptive level (pair it with `triad_tasks.trl_task_dataset`).
    """

    def triad_reward(prompts, completions, **kwargs):
        labels = kwargs[label_column]
        items = []
        for prompt, completion, label in zip(prompts, completions, labels):
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            item = {"response": text, "label": label}
            if isinstance(prompt, str):
                item["prompt"] = prompt
            items.append(item)
        return [r["score"] for r in score_batch(items, reward=reward, url=url, session=session)]

    triad_reward.__name__ = "triad_reward"
    return triad_reward
