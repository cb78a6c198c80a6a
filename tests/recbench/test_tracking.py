"""recbench.tracking against a real MLflow file store (no mock): run status, parent runs, params,
per-epoch curves, and a tracker that fails warns once and changes nothing."""

import logging
import subprocess
import sys

import mlflow  # the tracking extra's mlflow (the test extra has it too)
import pytest

from recbench import tracking


def store(tmp_path):
    return (tmp_path / "mlruns").as_uri()


def runs(uri):
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}, client


def test_none_is_the_null_tracker_and_imports_no_mlflow():
    code = ("import sys; from recbench import tracking; t = tracking.tracker({'backend': 'none'});"
            "assert t is tracking.NULL and 'mlflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    with tracking.NULL.run("x", params={"a": 1}) as run:
        run.log_epoch({"epoch": 1, "train_loss": 0.5})
    assert run.id is None and tracking.NULL.find({}) is None


def test_runs_end_finished_failed_or_killed_with_their_parent_params_and_curves(tmp_path):
    t = tracking.tracker({"backend": "mlflow", "uri": store(tmp_path)}, {"dataset": "d"})
    with t.run("d/M/tuning", params={"lr": 0.1, "sequential": {"dim": 8}}) as parent:
        with t.run("d/M/trial0", parent=parent) as child:
            for epoch, loss in enumerate([0.9, 0.7, 0.6], start=1):
                child.log_epoch({"epoch": epoch, "train_loss": loss, "val_ndcg@10": float("nan")})
            child.log_metrics({"valid": {"ndcg@10": 0.25}})
    with pytest.raises(SystemExit):
        with t.run("killed"):
            raise SystemExit(143)
    with pytest.raises(ValueError):
        with t.run("failed"):
            raise ValueError("boom")
    found, client = runs(store(tmp_path))
    assert {n: r.info.status for n, r in found.items()} == {
        "d/M/tuning": "FINISHED", "d/M/trial0": "FINISHED", "killed": "KILLED",
        "failed": "FAILED"}
    trial = found["d/M/trial0"]
    assert trial.data.tags["mlflow.parentRunId"] == found["d/M/tuning"].info.run_id
    assert trial.data.tags["dataset"] == "d"
    assert found["d/M/tuning"].data.params == {"lr": "0.1", "sequential.dim": "8"}
    curve = client.get_metric_history(trial.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in curve] == [(1, 0.9), (2, 0.7), (3, 0.6)]
    assert "val_ndcg_at_10" not in trial.data.metrics  # NaN (not validated) is not logged
    assert trial.data.metrics["valid.ndcg_at_10"] == 0.25
    assert t.find({"dataset": "d"}).id == found["failed"].info.run_id  # the newest


def test_an_unreachable_server_warns_once_and_the_job_goes_on(caplog, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    t = tracking.tracker({"backend": "mlflow", "uri": "http://127.0.0.1:9"})
    with caplog.at_level(logging.WARNING, logger="recbench.tracking"):
        with t.run("x", params={"a": 1}) as run:
            run.log_epoch({"epoch": 1, "train_loss": 0.5})
            value = 1 + 1  # the job's own work is untouched
        assert t.find({}) is None
    warnings = [r for r in caplog.records if "tracking to http://127.0.0.1:9 failed" in r.message]
    assert len(warnings) == 1 and value == 2 and t.broken


def test_jobs_starting_at_once_share_one_experiment(tmp_path):
    """The file store does not keep experiment names unique: six processes starting on an empty
    store at once must still find one experiment, with all six runs in it."""
    code = ("import sys; from recbench import tracking;"
            "t = tracking.tracker({'backend': 'mlflow', 'uri': sys.argv[1]});"
            "exec('with t.run(sys.argv[2]): pass')")
    procs = [subprocess.Popen([sys.executable, "-c", code, store(tmp_path), f"job{i}"])
             for i in range(6)]
    assert [p.wait() for p in procs] == [0] * 6
    found, client = runs(store(tmp_path))
    assert sorted(found) == [f"job{i}" for i in range(6)]
    names = [e.name for e in client.search_experiments()]
    assert names.count(tracking.DEFAULT_EXPERIMENT) == 1, names
