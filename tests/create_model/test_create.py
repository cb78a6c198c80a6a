"""CREATE: warm-up freezes the transformer, inference needs no user table, causality holds, it learns."""

import copy

import pytest
import torch

from recbench.errors import ConfigError
from recbench.evaluation import evaluate
from recbench.models import build_model

FAST = {"epochs": 2, "batch_size": 256, "warmup_epochs": 1, "progress": False,
        "sequential": {"dim": 32, "n_layers": 1, "n_heads": 1, "max_len": 20},
        "graph": {"graph_last_n": 20, "n_layers": 2}}


def fit(split, **params):
    model = build_model("CREATE", {**FAST, **params}, seed=0)
    model.fit(split.train)
    return model


def transformer_state(model):
    return {k: v.clone() for k, v in model.seq.encoder.state_dict().items() if "item_emb" not in k}


def test_warmup_trains_only_the_graph(small_split, monkeypatch):
    model = build_model("CREATE", {**FAST, "epochs": 2, "warmup_epochs": 2}, seed=0)
    snapshot = {}
    original_build = model.build

    def build_and_remember(train):
        original_build(train)
        snapshot["transformer"] = transformer_state(model)
        snapshot["items"] = model.seq.encoder.item_emb.weight.detach().clone()

    monkeypatch.setattr(model, "build", build_and_remember)
    model.fit(small_split.train)
    after = transformer_state(model)
    assert all(torch.equal(snapshot["transformer"][k], after[k]) for k in after)
    assert not torch.equal(snapshot["items"], model.seq.encoder.item_emb.weight)  # graph trained it


def test_after_warmup_the_transformer_trains(small_split):
    model = build_model("CREATE", {**FAST, "epochs": 2, "warmup_epochs": 1}, seed=0)
    torch.manual_seed(0)
    model.fit(small_split.train)
    fresh = build_model("CREATE", {**FAST, "epochs": 1, "warmup_epochs": 1}, seed=0)
    fresh.fit(small_split.train)  # warm-up only: the transformer as initialised
    a, b = transformer_state(model), transformer_state(fresh)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_shared_item_table(small_split):
    model = fit(small_split, epochs=1)
    assert model.graph.encoder.item_weight.data_ptr() == model.seq.encoder.item_emb.weight.data_ptr()


@pytest.mark.parametrize("graph", ["LightGCN", "UltraGCN"])
def test_inference_ignores_the_user_table(small_split, graph):
    extra = {"graph": {"graph_last_n": 20, **({"n_layers": 2} if graph == "LightGCN" else {})}}
    model = fit(small_split, graph_backbone=graph, **extra)
    batch = small_split.test.batch(0, 64, max_len=model.max_history)
    before = model.score(batch)
    del model.graph.encoder.user_emb
    batch.users[:] = -1
    assert torch.equal(before, model.score(batch))


def test_causal_inside_create(small_split):
    model = fit(small_split, epochs=1)
    enc = model.seq.encoder.eval()
    x = small_split.test.batch(0, 16, max_len=20).items
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % small_split.n_items  # change the last item only
    assert torch.allclose(enc(x)[:, :-1], enc(y)[:, :-1], atol=1e-6)


def test_same_seed_repeats_exactly(small_split):
    a = evaluate(fit(small_split), small_split.test)[1]
    b = evaluate(fit(small_split), small_split.test)[1]
    assert a.equals(b)


def test_bad_backbone_is_named():
    with pytest.raises(ConfigError, match="graph_backbone"):
        build_model("CREATE", {"graph_backbone": "GAT"})
    with pytest.raises(ConfigError, match="CREATE.sequential"):
        build_model("CREATE", {"sequential": {"dmi": 3}})


@pytest.mark.parametrize("alignment", ["none", "contrastive", "barlow"])
def test_create_learns(small_split, alignment):
    pop = build_model("PopRnd", {}, seed=0)
    pop.fit(small_split.train)
    base = evaluate(pop, small_split.test)[0]["ndcg@10"]
    model = build_model("CREATE", {**FAST, "epochs": 30, "warmup_epochs": 2,
                                   "sequential": {"max_len": 20}, "alignment": alignment}, seed=0)
    model.fit(small_split.train, small_split.valid)
    assert evaluate(model, small_split.test)[0]["ndcg@10"] > 5 * base
