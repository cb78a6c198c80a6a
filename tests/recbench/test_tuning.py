"""Tuning: TPE beats the defaults on a planted objective, studies resume exactly, best selection."""

import json
import os

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from recbench.errors import ConfigError, TrainingError
from recbench.protocol.tuning import (defaults_in_space, distributions, finish_study, retrain_params,
                             run_study, select_best)

PARAMS = {"x": 0.0, "depth": 2, "other": "kept"}
SEARCH = {"x": {"low": -5.0, "high": 5.0}, "depth": [1, 2, 3]}


def planted(calls=None, stop_at=None):
    """Validation score peaks at x = 3 (the default x = 0 scores -9), depth 3 adds a little.
    Each trial writes a history.csv; ``stop_at``: the call that is killed (KeyboardInterrupt)."""

    def objective(params, workdir):
        if calls is not None:
            calls.append(params)
            if stop_at is not None and len(calls) == stop_at:
                (workdir / "history.csv").write_text("epoch\n1\n")  # half a trial's files
                raise KeyboardInterrupt
        assert params["other"] == "kept"
        (workdir / "history.csv").write_text("epoch,train_loss\n1,0.5\n")
        return -(params["x"] - 3.0) ** 2 + 0.1 * params["depth"], {"best_epoch": 7}

    return objective


def study(path, n, objective, **kw):
    records = run_study(n, objective, PARAMS, SEARCH, out=path, seed=0, startup_trials=3, **kw)
    finish_study(path)
    return records


def test_a_handful_of_trials_beats_the_planted_defaults(tmp_path):
    records = study(tmp_path / "tuning", 8, planted())
    assert records[0]["params"] == {"x": 0.0, "depth": 2}  # trial 0 is the defaults
    best = select_best(records, "Toy")
    assert best["valid_ndcg@10"] > best["default_valid_ndcg@10"] + 1.0
    assert abs(best["params"]["x"] - 3.0) < abs(0.0 - 3.0)
    assert best["params"]["other"] == "kept" and best["best_epoch"] == 7
    assert retrain_params(best)["epochs"] == 7
    # every trial's record and history in the study folder; nothing left beside it
    out = tmp_path / "tuning"
    assert (out / best["history"]).read_text().startswith("epoch,train_loss")
    assert [json.loads((out / f"trial{k}.json").read_text()) for k in range(8)] == records
    assert (out / "optuna.db").exists() and sorted(os.listdir(tmp_path)) == ["tuning"]


def test_an_interrupted_study_resumes_with_the_same_suggestions(tmp_path):
    straight = study(tmp_path / "a", 5, planted())
    # the same study killed in the middle of trial 2 (left RUNNING in the storage, half its files
    # written), then once more after trial 3 was told to the study but before its record was
    # written
    out, calls = tmp_path / "b" / "tuning", []
    with pytest.raises(KeyboardInterrupt):
        study(out, 5, planted(calls, stop_at=3))
    assert not out.exists() and len(calls) == 3
    storage = f"sqlite:///{out.parent / 'tuning.partial' / 'optuna.db'}"
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        study(out, 5, planted(calls, stop_at=3))  # trials 2, 3 run; killed in trial 4
    assert len(calls) == 3 and [c["x"] for c in calls[:2]] == [
        r["full_params"]["x"] for r in straight[2:4]]
    (out.parent / "tuning.partial" / "trial3.json").unlink()
    calls.clear()
    resumed = study(out, 5, planted(calls))
    assert len(calls) == 1  # trial 4 only: 0-3 are read back, not retrained
    assert [r["params"] for r in resumed] == [r["params"] for r in straight]
    assert [r["value"] for r in resumed] == [r["value"] for r in straight]
    assert optuna.load_study(study_name="study", storage=storage.replace(
        "tuning.partial", "tuning")).trials[2].state == optuna.trial.TrialState.FAIL
    assert (out / "trial4" / "history.csv").read_text().startswith("epoch,train_loss")


def test_a_changed_setting_or_newer_input_never_resumes_a_stale_study(tmp_path):
    """An interrupted study is resumed only with the settings and inputs it was started with."""
    out, split = tmp_path / "tuning", tmp_path / "train.parquet"
    split.write_bytes(b"one")
    os.utime(split, (1, 1))
    with pytest.raises(KeyboardInterrupt):
        study(out, 3, planted([], stop_at=2), inputs=[split])
    calls = []
    study(out, 3, planted(calls), settings={"epochs": 5}, inputs=[split])
    assert len(calls) == 3  # other settings: every trial again
    os.rename(out, tmp_path / "first")
    with pytest.raises(KeyboardInterrupt):
        study(out, 3, planted([], stop_at=2), inputs=[split])
    split.write_bytes(b"two")  # a new split, written after the study started
    calls.clear()
    study(out, 3, planted(calls), inputs=[split])
    assert len(calls) == 3


def test_a_study_killed_after_its_last_trial_is_read_back_whole(tmp_path):
    out = tmp_path / "tuning"
    first = run_study(3, planted(), PARAMS, SEARCH, out=out, seed=0, startup_trials=3)
    assert not out.exists()  # killed before finish_study
    calls = []
    assert study(out, 3, planted(calls)) == first and calls == []


def test_a_finished_study_is_never_overwritten(tmp_path):
    study(tmp_path / "tuning", 2, planted())
    with pytest.raises(TrainingError, match="already holds a study"):
        study(tmp_path / "tuning", 2, planted())


def test_a_diverging_trial_is_recorded_and_the_study_goes_on(tmp_path):
    def objective(params, workdir):
        if params["x"] != 0.0:
            raise TrainingError("loss is NaN at epoch 1, step 3")
        return 0.5, {}

    records = study(tmp_path / "tuning", 3, objective)
    assert records[0]["value"] == 0.5 and records[1]["value"] is None
    assert "NaN" in records[1]["error"] and records[1]["history"] is None
    assert select_best(records, "Toy")["best_trial"] == 0


def test_every_trial_failing_stops_with_the_errors():
    with pytest.raises(TrainingError, match="every tuning trial failed.*NaN"):
        select_best([{"trial": 0, "params": {}, "value": None, "error": "loss is NaN"}], "Toy")


def test_ties_go_to_the_earlier_trial():
    records = [{"trial": k, "params": {"x": k}, "full_params": {"x": k}, "value": value}
               for k, value in enumerate([0.2, 0.3, 0.3])]
    best = select_best(records, "Toy")
    assert best["best_trial"] == 1 and best["params"] == {"x": 1} and best["best_epoch"] is None
    assert retrain_params(best) == {"x": 1}  # no epoch count for a non-neural model


def test_distribution_kinds_and_errors():
    space = distributions({"a": [1, 2], "b": {"low": 1, "high": 4}, "c": {"low": 1e-4, "high": 1e-2,
                                                                          "log": True}})
    assert isinstance(space["a"], CategoricalDistribution)
    assert isinstance(space["b"], IntDistribution)
    assert isinstance(space["c"], FloatDistribution) and space["c"].log
    for bad, message in [({"a": []}, "empty"), ({"a": {"low": 2, "high": 1}}, "below"),
                         ({"a": {"low": 0.0, "high": 1.0, "log": True}}, "low > 0"),
                         ({"a": "wide"}, "list of choices")]:
        with pytest.raises(ConfigError, match=message):
            distributions(bad, "models.X.search")


def test_defaults_must_lie_in_the_space():
    space = distributions({"x": {"low": 1.0, "high": 2.0}, "sequential.dim": [32, 64]})
    assert defaults_in_space({"x": 1.5, "sequential": {"dim": 64}}, space, "s") == {
        "x": 1.5, "sequential.dim": 64}
    with pytest.raises(ConfigError, match="outside the search space"):
        defaults_in_space({"x": 3.0, "sequential": {"dim": 64}}, space, "s")
    with pytest.raises(ConfigError, match="needs a default value"):
        defaults_in_space({"sequential": {"dim": 64}}, space, "s")
