"""Tuning: TPE beats the defaults on a planted objective, trials resume exactly, best selection."""

import json

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from recbench.errors import ConfigError, TrainingError
from recbench.tuning import (defaults_in_space, distributions, retrain_params, run_trial,
                             select_best, study_key)

PARAMS = {"x": 0.0, "depth": 2, "other": "kept"}
SEARCH = {"x": {"low": -5.0, "high": 5.0}, "depth": [1, 2, 3]}


def planted(calls=None):
    """Validation score peaks at x = 3 (the default x = 0 scores -9), depth 3 adds a little."""

    def objective(params):
        if calls is not None:
            calls.append(params)
        assert params["other"] == "kept"
        return -(params["x"] - 3.0) ** 2 + 0.1 * params["depth"], {"best_epoch": 7}

    return objective


def run(tmp_path, ks, objective, name="s"):
    return [run_trial(k, objective, PARAMS, SEARCH, storage=tmp_path / "optuna.db",
                      study_name=name, out=tmp_path / f"trial{k}.json", seed=0, startup_trials=3)
            for k in ks]


def test_a_handful_of_trials_beats_the_planted_defaults(tmp_path):
    records = run(tmp_path, range(8), planted())
    assert records[0]["params"] == {"x": 0.0, "depth": 2}  # trial 0 is the defaults
    best = select_best([tmp_path / f"trial{k}.json" for k in range(8)], "Toy")
    assert best["valid_ndcg@10"] > best["default_valid_ndcg@10"] + 1.0
    assert abs(best["params"]["x"] - 3.0) < abs(0.0 - 3.0)
    assert best["params"]["other"] == "kept" and best["best_epoch"] == 7
    assert retrain_params(best)["epochs"] == 7


def test_an_interrupted_study_resumes_with_the_same_suggestions(tmp_path):
    straight = run(tmp_path / "a", range(4), planted())
    # the same study killed twice: once in the middle of trial 2 (left RUNNING in the storage),
    # once after trial 3 was told to the study but before its file was written
    b = tmp_path / "b"
    run(b, range(2), planted())
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{b / 'optuna.db'}")
    study.ask()  # the killed trial
    run(b, [2, 3], planted())
    (b / "trial3.json").unlink()
    calls = []
    again = run(b, [3], planted(calls))
    assert calls == []  # read back from the study, not retrained
    resumed = [json.loads((b / f"trial{k}.json").read_text()) for k in range(4)]
    assert [r["params"] for r in resumed] == [r["params"] for r in straight]
    assert again[0]["value"] == straight[3]["value"]


def test_a_changed_setting_never_reads_back_a_stale_trial(tmp_path):
    """The default config's epochs went 30 -> 25: the rerun trial 0 must train again, not read
    back the old trial of the same job number from optuna.db."""
    old, new = dict(PARAMS), dict(PARAMS)
    key_old = study_key("Toy", old, SEARCH, {"seed": 0})
    run_trial(0, planted(), old, SEARCH, storage=tmp_path / "optuna.db", study_name="s",
              out=tmp_path / "trial0.json", key=key_old)
    new["x"] = 1.0  # a new default
    key_new = study_key("Toy", new, SEARCH, {"seed": 0})
    assert key_new != key_old
    assert key_old == study_key("Toy", old, SEARCH, {"seed": 0})  # deterministic
    calls = []
    record = run_trial(0, planted(calls), new, SEARCH, storage=tmp_path / "optuna.db",
                       study_name="s", out=tmp_path / "trial0.json", key=key_new)
    assert len(calls) == 1 and record["params"]["x"] == 1.0
    # the same setting again reads back its own trial (the resume case)
    calls.clear()
    (tmp_path / "trial0.json").unlink()
    again = run_trial(0, planted(calls), new, SEARCH, storage=tmp_path / "optuna.db",
                      study_name="s", out=tmp_path / "trial0.json", key=key_new)
    assert calls == [] and again["value"] == record["value"]


def test_the_study_key_sees_the_split_files(tmp_path):
    split = tmp_path / "train.parquet"
    split.write_bytes(b"one")
    a = study_key("Toy", PARAMS, files=[split])
    split.write_bytes(b"two")
    assert study_key("Toy", PARAMS, files=[split]) != a


def test_a_diverging_trial_is_recorded_and_the_study_goes_on(tmp_path):
    def objective(params):
        if params["x"] != 0.0:
            raise TrainingError("loss is NaN at epoch 1, step 3")
        return 0.5, {}

    records = run(tmp_path, range(3), objective)
    assert records[0]["value"] == 0.5 and records[1]["value"] is None
    assert "NaN" in records[1]["error"]
    assert select_best([tmp_path / f"trial{k}.json" for k in range(3)], "Toy")["best_trial"] == 0


def test_every_trial_failing_stops_with_the_errors(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"trial": 0, "params": {}, "value": None,
                                                 "error": "loss is NaN"}))
    with pytest.raises(TrainingError, match="every tuning trial failed.*NaN"):
        select_best([tmp_path / "t.json"], "Toy")


def test_ties_go_to_the_earlier_trial(tmp_path):
    for k, value in enumerate([0.2, 0.3, 0.3]):
        (tmp_path / f"{k}.json").write_text(json.dumps(
            {"trial": k, "params": {"x": k}, "full_params": {"x": k}, "value": value}))
    best = select_best([tmp_path / f"{k}.json" for k in range(3)], "Toy")
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
