"""Classical baselines learn the planted structure: all beat Random; SVD, iALS, EASE beat PopRnd."""

import pytest
import torch

from recbench.errors import ConfigError
from recbench.evaluation import evaluate
from recbench.models import build_model

PARAMS = {"Random": {}, "PopRnd": {}, "SVD": {"rank": 32}, "iALS": {"factors": 32},
          "EASE": {"l2": 100.0}}


@pytest.fixture(scope="module")
def results(small_split):
    out = {}
    for name, params in PARAMS.items():
        model = build_model(name, params, seed=0)
        model.fit(small_split.train)
        out[name] = evaluate(model, small_split.test)[0]
    return out


@pytest.mark.parametrize("name", ["PopRnd", "SVD", "iALS", "EASE"])
def test_beats_random(results, name):
    assert results[name]["ndcg@10"] > 2 * results["Random"]["ndcg@10"]
    assert results[name]["recall@100"] > results["Random"]["recall@100"]


@pytest.mark.parametrize("name", ["SVD", "iALS", "EASE"])
def test_collaborative_models_beat_poprnd(results, name):
    assert results[name]["ndcg@10"] > 3 * results["PopRnd"]["ndcg@10"]
    assert results[name]["recall@10"] > 3 * results["PopRnd"]["recall@10"]


def test_random_covers_the_catalog(results):
    assert results["Random"]["coverage@100"] > 0.95


@pytest.mark.parametrize("name", list(PARAMS))
def test_same_seed_repeats_exactly(small_split, name):
    runs = []
    for _ in range(2):
        model = build_model(name, PARAMS[name], seed=3)
        model.fit(small_split.train)
        runs.append(evaluate(model, small_split.test)[1])
    assert runs[0].equals(runs[1])


def test_poprnd_excludes_history(small_split):
    model = build_model("PopRnd", {}, seed=0)
    model.fit(small_split.train)
    batch = small_split.test.batch(0, 32)
    scores = model.score(batch)
    assert torch.isinf(scores[batch.multi_hot().bool()]).all()


def test_svd_folds_in_unseen_users(small_split):
    """Scores depend on the history only, not on a training user id."""
    model = build_model("SVD", {"rank": 16}, seed=0)
    model.fit(small_split.train)
    batch = small_split.test.batch(0, 8)
    batch.users[:] = -1
    assert torch.equal(model.score(batch), model.score(small_split.test.batch(0, 8)))


def test_ease_refuses_a_catalog_too_large(small_split):
    model = build_model("EASE", {"max_items": 100}, seed=0)
    with pytest.raises(ConfigError, match="max_items"):
        model.fit(small_split.train)


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="unknown parameter.*'rnk'"):
        build_model("SVD", {"rnk": 3})
    with pytest.raises(ConfigError, match=r"^models\.SVD\.rank must be an integer >= 1, got 'big' \(str\)"):
        build_model("SVD", {"rank": "big"})
    with pytest.raises(ConfigError, match=r"^models\.SVD\.rank must be >= 1, got 0 \(int\)"):
        build_model("SVD", {"rank": 0})
