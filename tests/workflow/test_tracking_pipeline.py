"""`tracking: {backend: mlflow}` on a tiny pipeline, read back with MlflowClient (no mock): one
parent run per study and a child per trial, one run per final fit with its params, its per-epoch
curve equal to history.csv, the test metrics of metrics.json, and the job's tags; then `mlflow ui`
on that store serves the same runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from test_pipeline import TINY, make_copy, snakemake  # tests/workflow is on sys.path

CONFIG = {
    "seeds": [0],
    "device": "cpu",
    "datasets": TINY["datasets"],  # the end-to-end test's tiny synthetic log
    "tuning": {"trials": 2, "seed": 0, "startup_trials": 2},
    "significance": {"reference": "SASRec"},
    "models": {
        "PopRnd": {},
        "SASRec": {"params": {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10,
                              "epochs": 4, "patience": None, "batch_size": 32, "lr": 0.005,
                              "progress": False},
                   "search": {"lr": {"low": 0.001, "high": 0.01, "log": True}}},
    },
}


@pytest.mark.slow
def test_a_tracked_run_logs_every_study_trial_and_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads its file store so
    repo = make_copy(tmp_path / "repo")
    store = (tmp_path / "mlruns").as_uri()
    config = {**CONFIG, "tracking": {"backend": "mlflow", "uri": store, "experiment": "tiny"}}
    (repo / "config" / "tracked.yaml").write_text(yaml.safe_dump(config))
    snakemake(repo, "--cores", "2", "results/runs/tracked/table2.md", "--configfile",
              "config/tracked.yaml")

    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name("tiny")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    # 2 studies (parents), 2 + 1 trials (PopRnd has no search space: one), 2 fits
    assert sorted(runs) == sorted([
        "tiny/PopRnd/tuning", "tiny/PopRnd/trial0", "tiny/SASRec/tuning",
        "tiny/SASRec/trial0", "tiny/SASRec/trial1", "tiny/PopRnd/seed0",
        "tiny/SASRec/seed0"]), sorted(runs)
    assert all(r.info.status == "FINISHED" for r in runs.values())
    parent = runs["tiny/SASRec/tuning"].info.run_id
    assert {runs[f"tiny/SASRec/trial{i}"].data.tags["mlflow.parentRunId"]
            for i in (0, 1)} == {parent}

    fit = runs["tiny/SASRec/seed0"]
    out = repo / "results/tiny/SASRec/seed0"
    history = pd.read_csv(out / "training/history.csv")
    curve = client.get_metric_history(fit.info.run_id, "train_loss")
    assert [m.step for m in curve] == history.epoch.tolist()
    assert [m.value for m in curve] == pytest.approx(history.train_loss.tolist(), rel=1e-12)
    saved = json.loads((out / "model/model.json").read_text())["params"]
    logged = fit.data.params
    assert logged["dim"] == "16" and logged["epochs"] == str(saved["epochs"])
    assert logged == {k: str(v) for k, v in saved.items() if not isinstance(v, dict)}
    metrics = json.loads((out / "metrics.json").read_text())
    assert fit.data.metrics["test.ndcg_at_10"] == pytest.approx(metrics["ndcg@10"], rel=1e-12)
    assert fit.data.metrics["test.history_filtered.recall_at_100"] == pytest.approx(
        metrics["history_filtered"]["recall@100"], rel=1e-12)  # the other protocol
    tags = fit.data.tags
    assert {tags[k] for k in ("dataset", "model", "seed", "job", "run")} == {
        "tiny", "SASRec", "0", "train", "tracked"}
    assert tags["create_bench"] and "git_commit" in tags and tags["device"] == "cpu"
    assert json.loads(tags["wildcards"]) == {"dataset": "tiny", "model": "SASRec", "seed": "0"}
    assert tags["model_dir"].endswith("results/tiny/SASRec/seed0/model")

    # `mlflow ui`, as docs/tracking.md runs it from the tracking extra, serves the same runs
    with mlflow_ui(tmp_path / "mlruns") as url:
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "<!doctype html>" in page.lower() and "static-files" in page  # the web app
        served = mlflow.MlflowClient(url)
        ui_experiment = served.get_experiment_by_name("tiny")
        listed = served.search_runs([ui_experiment.experiment_id])
        assert {r.info.run_name for r in listed} == set(runs)
        assert [m.value for m in served.get_metric_history(fit.info.run_id, "train_loss")] == [
            m.value for m in curve]


@contextlib.contextmanager
def mlflow_ui(store: Path):
    """`mlflow ui --backend-store-uri <store>` on a free loopback port until the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", str(store), "--host",
         "127.0.0.1", "--port", str(port)], cwd=store.parent, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, f"mlflow ui exited:\n{proc.stdout.read()}"
            try:
                urllib.request.urlopen(url + "/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline, "mlflow ui did not answer within 120 s"
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
