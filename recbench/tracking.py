"""Experiment tracking: each tuning trial and final fit as an MLflow run, off by default.

The config's ``tracking: {backend: none | mlflow, uri: ..., experiment: ...}`` (checked by
``config/schema.yaml``) chooses it; ``tracker(config["tracking"], tags)`` gives a job its
``Tracker``. With ``backend: none`` (the default) that is ``NULL``, whose runs do nothing and
which never imports mlflow. With ``mlflow``:

- ``uri`` is any MLflow tracking URI (a server, a database); without it runs go to the file
  store ``mlruns/`` at the checkout's root (``file:`` URIs are allowed explicitly, since MLflow 3
  keeps its file store in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``). Each run is its
  own folder there, so parallel jobs log side by side; the experiment is looked up or created
  under a file lock, so jobs starting at once all find the same one.
- ``experiment`` (default ``create-bench``) holds every run.
- A tuning study is a parent run, each trial a child run; a final fit is a run named like
  ``ml-1m/CREATE/seed0``, to which the evaluate job adds the test metrics of both protocols
  (re-evaluating a saved model, for new ``ks``, logs them there again). Each run gets the job's
  tags (dataset, model, seed, run name, rule and wildcards, git commit and dirty flag, version)
  and its parameters (nested ones flattened: ``sequential.dim``); a neural fit logs each epoch's
  history row with the epoch as the step, while it trains.
- A rerun of a job is a new run, never merged into the old one. A run ends FINISHED, FAILED on an
  exception, or KILLED when the job stopped on SIGTERM (its resumed attempt is a new run, tagged
  with the same job); a job killed by SIGKILL leaves its run RUNNING.
- Tracking never fails a job nor changes what it computes: the first error (an unreachable
  server, a full disk) is logged once as a warning and tracking is off for the rest of the job.
  Every number of the reports comes from the job's own files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

BACKENDS = ("none", "mlflow")
DEFAULT_EXPERIMENT = "create-bench"
#: the default store: the checkout's mlruns/ (ignored by git)
DEFAULT_STORE = Path(__file__).resolve().parents[1] / "mlruns"


class Run:
    """A run that logs nothing (``backend: none``, or after a tracking error)."""

    id = None

    def log_params(self, params: dict) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        pass

    def log_epoch(self, row: dict) -> None:
        """One history row of the training loop: its numbers, at step ``row["epoch"]``."""
        self.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

    def log_artifacts(self, folder: str | Path, path: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict) -> None:
        pass


class Tracker:
    """Makes runs; this one makes ``Run``s that log nothing."""

    enabled = False

    @contextlib.contextmanager
    def run(self, name: str, *, tags: dict | None = None, params: dict | None = None,
            parent: Run | None = None):
        yield Run()

    def find(self, tags: dict) -> Run | None:
        """The newest run with these tags, or None."""
        return None


NULL = Tracker()


def tracker(settings: dict | None, tags: dict | None = None) -> Tracker:
    """The tracker of a job: ``NULL`` unless ``settings["backend"]`` is mlflow; ``tags`` go on
    every run it makes."""
    settings = settings or {}
    backend = settings.get("backend", "none")
    if backend not in BACKENDS:
        from recbench.errors import ConfigError
        raise ConfigError(f"tracking.backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "none":
        return NULL
    return MlflowTracker(settings.get("uri") or DEFAULT_STORE.as_uri(),
                         settings.get("experiment") or DEFAULT_EXPERIMENT, tags or {})


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """Nested parameters as MLflow params: ``{"sequential": {"dim": 64}}`` -> ``sequential.dim``."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:6000]  # MLflow's limit of a param value
    return out


def _numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of ``metrics`` (nested dicts flattened with dots), as MLflow keys."""
    out = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}".replace("@", "_at_")  # '@' is not allowed in a metric name
        if isinstance(value, dict):
            out.update(_numbers(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            out[name] = float(value)
    return out


@contextlib.contextmanager
def _store_lock(uri: str):
    """For a file store, an exclusive lock while a job looks the experiment up or creates it:
    the file store does not keep names unique, so two jobs starting at once would each create
    one. A server or database keeps them unique itself."""
    if not uri.startswith("file:"):
        yield
        return
    import fcntl
    from urllib.parse import urlparse
    from urllib.request import url2pathname
    folder = Path(url2pathname(urlparse(uri).path))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".create-bench.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class MlflowTracker(Tracker):
    """Runs in an MLflow tracking store, through ``mlflow.MlflowClient`` (no global state)."""

    enabled = True

    def __init__(self, uri: str, experiment: str, tags: dict):
        self.uri, self.experiment, self.tags = uri, experiment, {k: str(v) for k, v in
                                                                 tags.items()}
        self.broken = False
        self._client = self._experiment_id = None

    def _call(self, what: str, fn, *args, **kwargs):
        """``fn(*args)``, or None after a warning (once per job) when tracking fails."""
        if self.broken:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - tracking never fails the job
            self.broken = True
            log.warning("tracking to %s failed (%s: %s: %s); this job goes on without it",
                        self.uri, what, type(err).__name__, err)
            return None

    def _connect(self):
        if self._client is None:
            if self.uri.startswith("file:"):
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            # a server that does not answer costs one short wait, not minutes of retries
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
            import mlflow
            with _store_lock(self.uri):  # a new file store makes its Default experiment too
                client = mlflow.MlflowClient(self.uri)
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    try:
                        self._experiment_id = client.create_experiment(self.experiment)
                    except Exception:  # noqa: BLE001 - a server's job created it first
                        self._experiment_id = client.get_experiment_by_name(
                            self.experiment).experiment_id
                else:
                    self._experiment_id = found.experiment_id
            self._client = client
        return self._client

    @contextlib.contextmanager
    def run(self, name, *, tags=None, params=None, parent=None):
        tags = {**self.tags, **{k: str(v) for k, v in (tags or {}).items()}}
        if parent is not None and parent.id is not None:
            tags["mlflow.parentRunId"] = parent.id
        created = self._call("start run", lambda: self._connect().create_run(
            self._experiment_id, run_name=name, tags=tags))
        run = Run() if created is None else _MlflowRun(self, created.info.run_id)
        if params:
            run.log_params(params)
        status = "FINISHED"
        try:
            yield run
        except SystemExit as stop:  # the training loop's SIGTERM exit, a job's own exit
            status = "KILLED" if stop.code not in (0, None) else "FINISHED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            if run.id is not None:
                self._call("end run", self._client.set_terminated, run.id, status)

    def find(self, tags):
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in {**self.tags, **tags}.items()
                             if k in ("run", "dataset", "model", "seed", "job"))
        found = self._call("search runs", lambda: self._connect().search_runs(
            [self._experiment_id], query, order_by=["attributes.start_time DESC"],
            max_results=1))
        return _MlflowRun(self, found[0].info.run_id) if found else None


class _MlflowRun(Run):
    def __init__(self, tracker: MlflowTracker, run_id: str):
        self.tracker, self.id = tracker, run_id

    def log_params(self, params):
        from mlflow.entities import Param
        items = [Param(k, v) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit of params
            self.tracker._call("log params", self.tracker._client.log_batch, self.id,
                               params=items[i:i + 100])

    def log_metrics(self, metrics, step=None):
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step or 0) for k, v in _numbers(metrics).items()]
        if items:
            self.tracker._call("log metrics", self.tracker._client.log_batch, self.id,
                               metrics=items)

    def log_artifacts(self, folder, path=None):
        self.tracker._call("log artifacts", self.tracker._client.log_artifacts, self.id,
                           str(folder), path)

    def set_tags(self, tags):
        for key, value in tags.items():
            self.tracker._call("set tag", self.tracker._client.set_tag, self.id, key, str(value))
