"""Online tasks from `triad serve`: fresh rows on demand, at the level a session's accuracy earns.

Standard library only (TRL's helper imports `datasets`, verl's imports verl). The rows are the
columns of a triad Parquet row (`prompt`, `label`, `reward_model`, `extra_info`, ...), so
whatever reads triad shards reads them.

    from triad_tasks import TaskClient, trl_task_dataset
    from triad_reward import trl_reward

    client = TaskClient("http://127.0.0.1:8000")
    session = client.create_session("run-1")["id"]
    train = trl_task_dataset(client, session)            # a datasets.IterableDataset
    GRPOTrainer(model=..., reward_funcs=[trl_reward(session=session)], train_dataset=train,
                args=GRPOConfig(max_steps=..., shuffle_dataset=False, ...))

The rewards scored with the same session move its level: a family's frontier rises when the
accuracy over its last 8 complete prompts reaches 0.9 and falls back when it drops to 0.1
(server flags `--adaptive-*`); tasks are drawn from the 4 levels ending at the frontier.
Pull tasks shortly before they are used (TRL: `shuffle_dataset=False`; a shuffle buffer would
read a thousand tasks ahead of the rewards that should steer them).

verl: `data.custom_cls.path=integrations/python/triad_tasks.py data.custom_cls.name=TriadTaskDataset`
with `+data.triad_session=run-1` (and optionally `+data.triad_url`, `+data.triad_family`,
`+data.triad_level`, `+data.triad_length`), and the reward
`reward.custom_reward_function.reward_kwargs.session=run-1` on `triad_reward.compute_score`.
"""

import json
import os
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000"
# Tasks fetched per request by the streaming helpers.
DEFAULT_BATCH = 64


class TaskClient:
    """`POST /tasks`, `POST /sessions`, `GET /sessions/{id}` of one server."""

    def __init__(self, url=None, api_key=None, timeout=60.0):
        self.url = (url or os.environ.get("TRIAD_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("TRIAD_API_KEY")
        self.timeout = timeout

    def _call(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"triad serve answered {error.code}: {error.read().decode(errors='replace')}") from error

    def create_session(self, session_id=None, adaptive=None):
        """Create a session (or get the existing one of that id); returns its report."""
        payload = {}
        if session_id is not None:
            payload["id"] = session_id
        if adaptive is not None:
            payload["adaptive"] = adaptive
        return self._call("POST", "/sessions", payload)

    def session(self, session_id):
        """The session's report: per family the frontier, window and accuracy per level."""
        return self._call("GET", f"/sessions/{session_id}")

    def tasks(self, n, family=None, level=None, split="train", session=None, seed=None,
              prompt_style=None, start=None):
        """`n` rows (a list of dicts). `level` is a number or "adaptive" (the default with a
        session); without a session, `start` is the candidate index streams begin at."""
        payload = {"n": n, "split": split}
        for key, value in (("family", family), ("level", level), ("session", session), ("seed", seed),
                           ("prompt_style", prompt_style), ("start", start)):
            if value is not None:
                payload[key] = value
        return self._call("POST", "/tasks", payload)["tasks"]

    def stream(self, session, family=None, level=None, split="train", batch=DEFAULT_BATCH, limit=None):
        """Rows one after another, fetched `batch` at a time from the session (forever, or `limit`)."""
        given = 0
        while limit is None or given < limit:
            want = batch if limit is None else min(batch, limit - given)
            for row in self.tasks(want, family=family, level=level, split=split, session=session):
                yield row
                given += 1


def trl_task_dataset(client, session, family=None, level=None, batch=DEFAULT_BATCH):
    """A `datasets.IterableDataset` of `{"prompt": messages, "label": str}` rows drawn from the
    session, for TRL's `GRPOTrainer` (which needs `max_steps` with an iterable dataset)."""
    import datasets

    def rows():
        for row in client.stream(session, family=family, level=level, batch=batch):
            yield {"prompt": [dict(m) for m in row["prompt"]], "label": row["label"]}

    return datasets.IterableDataset.from_generator(rows)


class _OnlineRows:
    """A map-style view of a session's stream for verl's RLHFDataset: item i is fetched (with
    its batch) when first asked for. The level of item i is the one the session's rewards had
    earned when it was fetched."""

    def __init__(self, client, session, length, family, level, batch):
        self.client, self.session, self.length = client, session, length
        self.family, self.level, self.batch = family, level, batch
        self.cache = {}

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if index not in self.cache:
            if len(self.cache) > 4 * self.batch:
                self.cache.clear()
            rows = self.client.tasks(self.batch, family=self.family, level=self.level, session=self.session)
            for offset, row in enumerate(rows):
                self.cache[index + offset] = row
        return dict(self.cache.pop(index))


def _verl_dataset_class():
    from verl.utils.dataset.rl_dataset import RLHFDataset

    class TriadTaskDataset(RLHFDataset):
        """verl's RLHFDataset over a triad session instead of Parquet files: every item verl
        asks for is a fresh task, with verl's own row processing (raw prompt, index, extra
        info). Settings from the data config (`+data.triad_*`) or the environment
        (`TRIAD_URL`, `TRIAD_SESSION`)."""

        def _download(self, use_origin_parquet=False):
            pass  # nothing to download: the rows come from the server

        def _read_files_and_tokenize(self):
            config = self.config
            session = config.get("triad_session") or os.environ.get("TRIAD_SESSION")
            if not session:
                raise ValueError("TriadTaskDataset needs a session: +data.triad_session=ID or $TRIAD_SESSION")
            client = TaskClient(config.get("triad_url"))
            client.create_session(session)
            length = int(config.get("triad_length") or 1_000_000)
            self.dataframe = _OnlineRows(client, session, length, config.get("triad_family"),
                                         config.get("triad_level"), int(config.get("triad_batch") or DEFAULT_BATCH))

        def maybe_filter_out_long_prompts(self, dataframe=None):
            return dataframe if dataframe is not None else self.dataframe

    return TriadTaskDataset


def __getattr__(name):
    # verl's `load_extern_object` reads the class off this module; build it only then, so this
    # module imports without verl.
    if name == "TriadTaskDataset":
        return _verl_dataset_class()
    raise AttributeError(name)
