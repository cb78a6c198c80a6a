"""Saved models: every registered model scores the test users after ``load`` exactly as it did
when fitted; loading refuses what is not this model; ``recommend`` speaks external ids."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import polars as pl
import pytest

from recbench import artefacts
from recbench.errors import ArtefactError
from recbench.evaluation import evaluate
from recbench.artefacts import load
from recbench.models import build_model
from recbench.registry import discover
from recbench.protocol.runner import RunOptions, evaluate_saved, train_and_evaluate

NEURAL = {"epochs": 2, "batch_size": 256, "progress": False}
#: quick settings of every registered model (a model missing here fails the test below)
QUICK = {
    "Random": {}, "PopRnd": {}, "SVD": {"rank": 16}, "EASE": {},
    "iALS": {"factors": 16, "iterations": 3},
    "SASRec": NEURAL, "BERT4Rec": NEURAL, "LightGCN": NEURAL, "UltraGCN": NEURAL,
    "MRGSRec": NEURAL, "CREATE": {**NEURAL, "warmup_epochs": 1},
}


def test_every_registered_model_has_quick_settings():
    assert set(discover()) <= set(QUICK), "add the new model's quick settings to QUICK"


@pytest.mark.parametrize("name", sorted(QUICK))
def test_a_loaded_model_scores_the_test_users_as_the_fitted_one(name, small_split, tmp_path):
    out = tmp_path / "seed0"
    train_and_evaluate(small_split, name, QUICK[name], RunOptions(workdir=out / "training"),
                       outdir=out, model_dir=out / "model")
    written = json.loads((out / "metrics.json").read_text())
    again = tmp_path / "again"
    metrics = evaluate_saved(small_split, out / "model", again, RunOptions())
    keys = [k for k in written if "@" in k]
    assert {k: metrics[k] for k in keys} == {k: written[k] for k in keys}
    assert metrics["history_filtered"] == written["history_filtered"]
    pd.testing.assert_frame_equal(pd.read_parquet(again / "per_user.parquet"),
                                  pd.read_parquet(out / "per_user.parquet"))
    meta = json.loads((out / "model" / "model.json").read_text())
    assert meta["model"] == name and meta["format"] == artefacts.FORMAT
    assert meta["n_items"] == small_split.n_items and meta["seed"] == 0
    assert meta["recbench_version"] and "commit" in meta
    if name in ("SASRec", "CREATE"):
        model = load(out / "model")
        history = pd.read_csv(out / "training" / "history.csv")  # CREATE: its warm-up first
        assert [r["epoch"] for r in model.train_result.history] == list(history.epoch)


@pytest.fixture(scope="module")
def saved(small_split, tmp_path_factory):
    """A fitted SVD and its saved folder."""
    folder = tmp_path_factory.mktemp("saved") / "model"
    model = build_model("SVD", {"rank": 16}, seed=0)
    model.fit(small_split.train)
    artefacts.save(model, folder, small_split)
    return model, folder


def test_recommend_for_test_users_gives_the_lists_the_evaluation_ranked(saved, small_split):
    model, folder = saved
    loaded = load(folder)
    users = small_split.user_ids["user"].to_numpy()[small_split.test.users]
    recs = loaded.recommend(users, k=100, filter_seen=False)
    assert list(recs.columns) == ["user", "item", "rank", "score"]
    assert len(recs) == 100 * len(users) and recs.groupby("user")["rank"].min().eq(1).all()
    _, per_user = evaluate(model, small_split.test, filter_seen=False)
    # the rank of each user's target in its recommended list is the evaluation's rank
    items = small_split.item_ids["item"].to_numpy()
    targets = pd.DataFrame({"user": users, "item": np.where(
        small_split.test.targets >= 0, items[small_split.test.targets.clip(0)], None)})
    hit = targets.merge(recs, on=["user", "item"], how="left")
    want = per_user["rank"].to_numpy()  # 0-based, n_items for a miss / beyond the list
    got = hit["rank"].fillna(0).astype(int).to_numpy() - 1
    in_list = want < 100
    assert (got[in_list] == want[in_list]).all() and (got[~in_list] == -1).all()


def test_recommend_filters_seen_items_and_takes_histories(saved, small_split):
    _, folder = saved
    model = load(folder)
    user = small_split.user_ids["user"][int(small_split.test.users[0])]
    recs = model.recommend(user, k=20, filter_seen=True)
    history = model.ids.user_histories([user])
    seen = set(model.ids.items[history.items])
    assert len(recs) == 20 and not seen & set(recs["item"])
    assert recs["score"].is_monotonic_decreasing
    # a history of external item ids (an unknown one dropped) is ranked like a known user's
    external = list(model.ids.items[history.items])
    by_history = model.recommend(histories={"me": external + ["no-such-item"]}, k=20)
    assert list(by_history["item"]) == list(recs["item"]) and set(by_history["user"]) == {"me"}
    with pytest.raises(ArtefactError, match="unknown user"):
        model.recommend(["no-such-user"])


def test_loading_refuses_another_class_format_catalogue_or_a_damaged_file(saved, small_split,
                                                                         tmp_path):
    _, folder = saved
    with pytest.raises(ArtefactError, match="holds a SVD model, not EASE"):
        load(folder, model="EASE")
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    other = small_split.item_ids.with_columns(pl.col("item").reverse())
    data = type(small_split)(**{**small_split.__dict__, "item_ids": other})
    with pytest.raises(ArtefactError, match="another catalogue"):
        load(copy, data=data)
    assert load(copy, data=small_split).registry_name == "SVD"

    meta = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps({**meta, "format": artefacts.FORMAT + 1}))
    with pytest.raises(ArtefactError, match="Update create-bench"):
        load(copy)
    (copy / "model.json").write_text(json.dumps({**meta, "class": "baselines.ease.EASE"}))
    with pytest.raises(ArtefactError, match="saved from class baselines.ease.EASE"):
        load(copy)
    (copy / "model.json").write_text(json.dumps(meta))
    weights = (copy / "weights.pt").read_bytes()
    (copy / "weights.pt").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ArtefactError, match="truncated"):
        load(copy)
    (copy / "model.json").unlink()
    with pytest.raises(ArtefactError, match="not a saved model"):
        load(copy)


def test_a_seed_folder_names_its_model_and_a_half_written_one_has_no_final_name(
        small_split, tmp_path, monkeypatch):
    model = build_model("PopRnd", {}, seed=3)
    model.fit(small_split.train)
    artefacts.save(model, tmp_path / "seed3" / "model", small_split)
    assert load(tmp_path / "seed3").seed == 3

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artefacts.np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        artefacts.save(model, tmp_path / "other" / "model", small_split)
    assert list((tmp_path / "other").iterdir()) == []


def test_an_unsavable_attribute_names_the_fix(small_split, tmp_path):
    model = build_model("SVD", {"rank": 4}, seed=0)
    model.fit(small_split.train)
    model.helper = object()
    with pytest.raises(TypeError, match="override SVD.fitted_state|PureSVD.fitted_state"):
        artefacts.save(model, tmp_path / "model", small_split)


def test_the_command_line_recommends_for_a_user(saved, small_split, tmp_path, capsys):
    from recbench.recommend import main

    _, folder = saved
    user = str(small_split.user_ids["user"][int(small_split.test.users[0])])
    assert main([str(folder), "--user", user, "--k", "5"]) == 0
    out = capsys.readouterr().out
    header = [c.strip() for c in out.splitlines()[0].split("|")[1:5]]
    assert header == ["user", "item", "rank", "score"]
    assert len(out.strip().splitlines()) == 2 + 5
    assert main([str(folder), "--test-users", "--out", str(tmp_path / "recs.csv")]) == 0
    recs = pd.read_csv(tmp_path / "recs.csv")
    assert len(recs) == 10 * len(small_split.test)
    assert recs["user"].nunique() == len(small_split.test)
    assert main([str(folder), "--user", "nobody"]) == 2
    assert "unknown user id(s) ['nobody']" in capsys.readouterr().err
