"""Epoch checkpoints: a fit killed inside an epoch and rerun ends exactly as an uninterrupted one.

"Killed" two ways: SIGTERM (the loop checkpoints after the step in progress and exits 143) and a
death that writes nothing more (an exception from inside a step here, a real SIGKILL of a
subprocess in the runner test), after which the rerun resumes from the last periodic checkpoint.
"""

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from recbench.checkpoints import (SIGTERM_STATUS, Checkpoints, EarlyStopping,
                                  TrainState)
from recbench.data.dataset import load_split, save_split
from recbench.data.split import GlobalTemporalSplit, index_split
from recbench.data.synthetic import SyntheticConfig, generate
from recbench.errors import CheckpointError
from recbench.models import build_model
from recbench.registry import model_class
from recbench.protocol.runner import RunOptions, train_and_evaluate, validate_params
from recbench.protocol.tuning import TRIAL_CHECKPOINT, finish_study, run_study

ROOT = Path(__file__).resolve().parents[2]
TINY = SyntheticConfig(n_users=150, n_items=100, n_communities=4, mean_length=12, seed=5)
SEQ = {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10, "batch_size": 32, "lr": 0.005,
       "progress": False}
MODELS = {  # name -> (params, epochs of its loop, steps per epoch are a few)
    "SASRec": {**SEQ, "epochs": 4, "patience": 2},
    "LightGCN": {"dim": 16, "n_layers": 2, "batch_size": 256, "lr": 0.01, "epochs": 4,
                 "patience": 2, "progress": False},
    "CREATE": {"epochs": 2, "warmup_epochs": 2, "batch_size": 32, "lr": 0.005, "patience": 2,
               "progress": False, "alignment": "barlow",
               "sequential": {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10},
               "graph": {"graph_last_n": 10, "n_layers": 1, "batch_size": 128}},
}


class Death(BaseException):
    """The process dies inside a step: nothing more is written (a SIGKILL, a lost node)."""


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_split")
    save_split(index_split(GlobalTemporalSplit().split(generate(TINY))), folder)
    return folder


@pytest.fixture(scope="module")
def split(split_folder):
    return load_split(split_folder)


def kill_at(monkeypatch, name: str, call: int, how: str) -> None:
    """Kill the process (``how``: sigterm | death) in ``name``'s ``call``-th training step."""
    cls = model_class(name)
    original, calls = cls.training_loss, [0]

    def training_loss(self, batch, generator):
        out = original(self, batch, generator)
        calls[0] += 1
        if calls[0] == call:
            if how == "death":
                raise Death
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(cls, "training_loss", training_loss)


def fit(name, split, folder=None, every=1, valid=True, **params):
    model = build_model(name, {**MODELS[name], **params}, seed=3, workdir=folder)
    if folder is not None:
        model.checkpoints = Checkpoints(Path(folder) / "checkpoint", every)
    model.fit(split.train, split.valid if valid else None)
    return model


def history(folder) -> pd.DataFrame:
    return pd.read_csv(Path(folder) / "history.csv").drop(columns="seconds")


def assert_same_fit(model, folder, ref, ref_folder):
    assert model.state_dict().keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    pd.testing.assert_frame_equal(history(folder), history(ref_folder), check_exact=True)
    assert (model.best_epoch, model.epochs_trained) == (ref.best_epoch, ref.epochs_trained)
    assert json.loads((Path(folder) / "training.json").read_text()) == json.loads(
        (Path(ref_folder) / "training.json").read_text())


def step_call(name, split, epoch: int, step: int, train=None) -> int:
    """The number of ``training_loss`` calls up to step ``step`` of ``epoch``."""
    model = build_model(name, MODELS[name], seed=3)
    model.build(train if train is not None else split.train)
    counts = [len(model.train_batches(e, torch.Generator().manual_seed(0)))
              for e in range(1, epoch + 1)]
    assert counts[-1] > step  # inside the epoch, not at its end
    return sum(counts[:-1]) + step


# (model, epoch killed, how): CREATE in its warm-up (graph steps) and in a joint epoch
CASES = [("SASRec", 3, "sigterm"), ("SASRec", 3, "death"), ("LightGCN", 2, "sigterm"),
         ("CREATE", 2, "death"), ("CREATE", 3, "sigterm"), ("CREATE", 4, "death")]


@pytest.mark.parametrize("name,epoch,how", CASES)
def test_a_fit_killed_inside_an_epoch_resumes_exactly(split, tmp_path, monkeypatch, name, epoch,
                                                      how):
    handler = signal.getsignal(signal.SIGTERM)
    ref = fit(name, split, tmp_path / "ref")  # uninterrupted, with checkpoints (they change nothing)
    folder = tmp_path / "run"
    with monkeypatch.context() as m:
        kill_at(m, name, step_call(name, split, epoch, 2), how)  # step 2 of epoch `epoch`
        with pytest.raises(SystemExit if how == "sigterm" else Death) as err:
            fit(name, split, folder)
    if how == "sigterm":
        assert err.value.code == SIGTERM_STATUS
    saved = torch.load(folder / "checkpoint" / "checkpoint.pt", weights_only=True)
    # SIGTERM: after step 2 of the epoch; a death: the end of the epoch before
    assert (saved["epoch"], saved["step"]) == ((epoch - 1, 2) if how == "sigterm" else
                                               (epoch - 1, 0))
    assert len(history(folder)) == epoch - 1
    assert_same_fit(fit(name, split, folder), folder, ref, tmp_path / "ref")
    assert signal.getsignal(signal.SIGTERM) is handler  # the previous handler is put back


def test_a_sigterm_at_an_epochs_last_step_resumes_into_its_validation(split, tmp_path,
                                                                      monkeypatch):
    """SIGTERM in the last step of epoch 2: the checkpoint holds all its steps and no history
    row for it; the rerun validates that epoch without a step more and ends as an uninterrupted
    run."""
    ref = fit("SASRec", split, tmp_path / "ref")
    model = build_model("SASRec", MODELS["SASRec"], seed=3)
    model.build(split.train)
    per_epoch = len(model.train_batches(1, torch.Generator().manual_seed(0)))
    folder = tmp_path / "run"
    with monkeypatch.context() as m:
        kill_at(m, "SASRec", 2 * per_epoch, "sigterm")
        with pytest.raises(SystemExit):
            fit("SASRec", split, folder)
    saved = torch.load(folder / "checkpoint" / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["step"], len(saved["losses"])) == (1, per_epoch, per_epoch)
    assert len(history(folder)) == 1
    assert_same_fit(fit("SASRec", split, folder), folder, ref, tmp_path / "ref")


def test_a_checkpoint_of_an_older_format_is_discarded_not_misread(split, tmp_path, caplog):
    ref = fit("SASRec", split, tmp_path / "ref")
    path = tmp_path / "run" / "checkpoint" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    torch.save({"format": 1, "identity": "old", "epoch": 2}, path)
    with caplog.at_level(logging.WARNING, logger="recbench.checkpoints"):
        run = fit("SASRec", split, tmp_path / "run")
    assert "discarding the checkpoint" in caplog.text and "format 1, not" in caplog.text
    assert_same_fit(run, tmp_path / "run", ref, tmp_path / "ref")


def test_a_train_state_saved_and_restored_is_the_same_state(tmp_path):
    """``TrainState.save`` then ``restore`` into a fresh state gives every part back: weights,
    optimizer, early stopping, history, the position inside an epoch and the random states."""
    def state(seed):
        torch.manual_seed(seed)
        module = torch.nn.Linear(3, 2)
        optimizer = torch.optim.AdamW(module.parameters(), lr=0.1)
        return TrainState(module, optimizer, torch.amp.GradScaler("cuda", enabled=False),
                          torch.Generator().manual_seed(seed), torch.device("cpu"),
                          EarlyStopping(patience=3))

    a = state(0)
    a.module(torch.ones(4, 3)).sum().backward()
    a.optimizer.step()
    a.stopping.update(0.5, 1, a.module)
    a.stopping.update(0.4, 2, a.module)
    a.end_epoch({"epoch": 1, "train_loss": 1.0})
    batches = a.draw_batches(lambda g: torch.randperm(10, generator=g).split(3))
    for _ in range(2):
        a.record(torch.tensor(0.5), {"L_x": torch.tensor(0.25)})
    a.checked = 2
    ckpt = Checkpoints(tmp_path, every=1)
    a.save(ckpt, "run")
    b = state(1)
    assert b.restore(ckpt, "run")
    assert all(torch.equal(a.module.state_dict()[k], v) for k, v in b.module.state_dict().items())
    assert b.optimizer.state_dict()["state"][0]["step"] == a.optimizer.state_dict()["state"][0][
        "step"]
    assert (b.epoch, b.step, b.checked, b.history) == (1, 2, 2, [{"epoch": 1, "train_loss": 1.0}])
    assert (b.stopping.best_epoch, b.stopping.bad_evals, b.stopping.best_metric) == (1, 1, 0.5)
    assert [float(x) for x in b.losses] == [0.5, 0.5] and list(b.terms) == ["L_x"]
    # inside the epoch: the same batches are redrawn, less the two done, and the generator
    # continues from where the saved run's was
    rest = b.draw_batches(lambda g: torch.randperm(10, generator=g).split(3))
    assert all(torch.equal(x, y) for x, y in zip(rest, batches[2:])) and len(rest) == 2
    assert torch.equal(b.generator.get_state(), a.generator.get_state())
    assert not b.restore(Checkpoints(tmp_path / "none"), "run")


def test_checkpoint_every_n_epochs_resumes_from_the_last_one(split, tmp_path, monkeypatch):
    ref = fit("SASRec", split, tmp_path / "ref", valid=False)  # a final fit: no validation
    with monkeypatch.context() as m:
        kill_at(m, "SASRec", step_call("SASRec", split, 4, 1), "death")
        with pytest.raises(Death):
            fit("SASRec", split, tmp_path / "run", every=2, valid=False)
    saved = torch.load(tmp_path / "run" / "checkpoint" / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == (2, 0)
    assert_same_fit(fit("SASRec", split, tmp_path / "run", every=2, valid=False),
                    tmp_path / "run", ref, tmp_path / "ref")


def test_a_checkpoint_of_other_settings_is_discarded(split, tmp_path, monkeypatch, caplog):
    with monkeypatch.context() as m:
        kill_at(m, "SASRec", step_call("SASRec", split, 3, 1), "death")
        with pytest.raises(Death):
            fit("SASRec", split, tmp_path / "run")
    ref = fit("SASRec", split, tmp_path / "ref", lr=0.004)
    with caplog.at_level(logging.WARNING, logger="recbench.checkpoints"):
        other = fit("SASRec", split, tmp_path / "run", lr=0.004)
    assert "discarding the checkpoint" in caplog.text and "params" in caplog.text
    assert_same_fit(other, tmp_path / "run", ref, tmp_path / "ref")


def test_a_truncated_checkpoint_is_refused_with_its_name(split, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        kill_at(m, "SASRec", step_call("SASRec", split, 2, 1), "death")
        with pytest.raises(Death):
            fit("SASRec", split, tmp_path)
    path = tmp_path / "checkpoint" / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt is not a readable checkpoint.*"
                                              r"delete it"):
        fit("SASRec", split, tmp_path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        fit("SASRec", split, tmp_path)


KILLED_FIT = """
import os, signal, sys, torch
from recbench.data.dataset import load_split
from recbench.registry import model_class
from recbench.protocol.runner import RunOptions, train_and_evaluate
torch.set_num_threads({threads})
cls, original, calls = model_class("SASRec"), None, [0]
original = cls.training_loss
def training_loss(self, batch, generator):
    calls[0] += 1
    if calls[0] == {call}:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, batch, generator)
cls.training_loss = training_loss
train_and_evaluate(load_split({split!r}), "SASRec", {params!r},
                   RunOptions(workdir={out!r} + "/training",
                              checkpoint_dir={out!r} + "/training.partial", checkpoint_every=1),
                   outdir={out!r})
"""


def test_a_final_fit_killed_by_sigkill_continues_on_rerun(split, split_folder, tmp_path):
    """The runner's final fit in a subprocess, SIGKILLed in epoch 3; the rerun continues it."""
    params = {**MODELS["SASRec"], "epochs": 4}
    ref, out = tmp_path / "ref", tmp_path / "run"
    train_and_evaluate(split, "SASRec", params, RunOptions(workdir=ref / "training"), outdir=ref)
    code = KILLED_FIT.format(threads=torch.get_num_threads(), call=step_call("SASRec", split, 3, 2),
                             split=str(split_folder), params=params, out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (out / "metrics.json").exists()
    assert torch.load(out / "training.partial" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    train_and_evaluate(split, "SASRec", params,
                       RunOptions(workdir=out / "training", checkpoint_dir=out / "training.partial",
                                  checkpoint_every=1), outdir=out)
    assert not (out / "training.partial").exists()  # removed with the job's outputs written
    drop = ("fit_seconds", "eval_seconds")
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (ref, out))
    assert {k: v for k, v in first.items() if k not in drop} == {
        k: v for k, v in second.items() if k not in drop}
    pd.testing.assert_frame_equal(pd.read_parquet(out / "per_user.parquet"),
                                  pd.read_parquet(ref / "per_user.parquet"), check_exact=True)
    pd.testing.assert_frame_equal(history(out / "training"), history(ref / "training"),
                                  check_exact=True)


def test_a_study_resumes_its_killed_trial_mid_training(split, tmp_path, monkeypatch, caplog):
    """Trial 1 of a study SIGTERMed in its third epoch: the rerun reads trial 0 back, continues
    trial 1 from its checkpoint (not from its start), and the study ends as an uninterrupted one."""
    params, search = MODELS["SASRec"], {"lr": {"low": 0.001, "high": 0.01, "log": True}}
    call = step_call("SASRec", split, 3, 2, train=split.for_tuning().train)

    def objective(trial_params, workdir):
        options = RunOptions(workdir=workdir, checkpoint_dir=workdir / TRIAL_CHECKPOINT)
        return validate_params(split, "SASRec", trial_params, options)

    def study(out, objective):
        records = run_study(2, objective, params, search, out=out, startup_trials=1)
        finish_study(out)
        return records

    straight = study(tmp_path / "a" / "tuning", objective)
    killed = []

    def killing_objective(trial_params, workdir):
        if workdir.name == "trial1" and not killed:
            killed.append(True)
            kill_at(monkeypatch, "SASRec", call, "sigterm")
        return objective(trial_params, workdir)

    out = tmp_path / "b" / "tuning"
    with pytest.raises(SystemExit):
        study(out, killing_objective)
    monkeypatch.undo()
    partial = out.with_name("tuning.partial")
    assert (partial / "trial1" / TRIAL_CHECKPOINT / "checkpoint.pt").exists()
    with caplog.at_level(logging.INFO):
        resumed = study(out, objective)
    assert "resuming from" in caplog.text and "after epoch 2, step 2 of epoch 3" in caplog.text
    assert "trial 0 finished before the job was interrupted" in caplog.text
    keep = ("trial", "params", "value", "best_epoch", "epochs_trained", "valid_metrics")
    assert [{k: r[k] for k in keep} for r in resumed] == [{k: r[k] for k in keep}
                                                          for r in straight]
    pd.testing.assert_frame_equal(history(out / "trial1"),
                                  history(tmp_path / "a" / "tuning" / "trial1"), check_exact=True)
    assert not list(out.rglob("checkpoint*"))  # a finished study holds no checkpoint
