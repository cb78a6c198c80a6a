"""CREATE: warm-up freezes the transformer, inference needs no user table, causality holds, it learns."""

from types import SimpleNamespace

import pytest
import torch

from recbench.errors import ConfigError
from recbench.evaluation import evaluate
from recbench.models import build_model

FAST = {"epochs": 1, "batch_size": 256, "warmup_epochs": 1, "progress": False,
        "sequential": {"dim": 32, "n_layers": 1, "n_heads": 1, "max_len": 20},
        "graph": {"graph_last_n": 20, "n_layers": 2}}


def fit(split, **params):
    model = build_model("CREATE", {**FAST, **params}, seed=0)
    model.fit(split.train)
    return model


def transformer_state(model):
    return {k: v.clone() for k, v in model.seq.encoder.state_dict().items() if "item_emb" not in k}


def warm_up(model, train):
    """Build ``model`` and train its warm-up epochs only (the training loop, stopped there)."""
    from recbench.training import train as train_loop

    torch.manual_seed(model.seed)
    model.build(train)
    train_loop(model, model.params.train_config(), seed=model.seed, epochs=0)
    return model


def test_warmup_trains_only_the_graph(small_split):
    model = build_model("CREATE", {**FAST, "warmup_epochs": 2}, seed=0)
    torch.manual_seed(0)
    model.build(small_split.train)
    before = transformer_state(model), model.seq.encoder.item_emb.weight.detach().clone()
    warm_up(model, small_split.train)
    after = transformer_state(model)
    assert all(torch.equal(before[0][k], after[k]) for k in after)
    assert not torch.equal(before[1], model.seq.encoder.item_emb.weight)  # the graph trained it


def test_after_warmup_the_transformer_trains(small_split):
    model = build_model("CREATE", {**FAST, "epochs": 1, "warmup_epochs": 1}, seed=0)
    model.fit(small_split.train)
    fresh = warm_up(build_model("CREATE", {**FAST, "warmup_epochs": 1}, seed=0),
                    small_split.train)  # the transformer as initialised
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
    # a sequential model that is no backbone: MRGSRec has no local_loss of its own
    with pytest.raises(ConfigError, match="'MRGSRec' is no sequential backbone.*lacks local_loss"):
        build_model("CREATE", {"sequential_backbone": "MRGSRec"})
    with pytest.raises(ConfigError, match="CREATE.sequential"):
        build_model("CREATE", {"sequential": {"dmi": 3}})


def test_its_batch_size_is_the_sequential_backbones():
    """CREATE's batch_size is the backbone's windows per step; setting it inside
    ``sequential:`` too is refused, naming the key to set instead."""
    model = build_model("CREATE", {**FAST, "batch_size": 32})
    assert model.seq.params.batch_size == 32
    with pytest.raises(ConfigError, match="sequential.batch_size.*models.CREATE.batch_size"):
        build_model("CREATE", {**FAST, "sequential": {**FAST["sequential"], "batch_size": 16}})


@pytest.mark.parametrize("alignment", ["none", "contrastive", "barlow"])
def test_create_learns(small_split, alignment):
    pop = build_model("PopRnd", {}, seed=0)
    pop.fit(small_split.train)
    base = evaluate(pop, small_split.test)[0]["ndcg@10"]
    model = build_model("CREATE", {**FAST, "epochs": 28, "warmup_epochs": 2,
                                   "sequential": {"max_len": 20}, "alignment": alignment}, seed=0)
    model.fit(small_split.train, small_split.valid)
    assert evaluate(model, small_split.test)[0]["ndcg@10"] > 5 * base


# --- the schedule: warm-up is graph training, joint epochs pass over every edge too -------------

GRAPH_SETTINGS = {"LightGCN": {"n_layers": 2, "batch_size": 512},
                  "UltraGCN": {"negative_num": 20, "batch_size": 512}}


def create_params(graph, **extra):
    return {**FAST, "graph_backbone": graph,
            "graph": {"graph_last_n": 20, **GRAPH_SETTINGS[graph]}, **extra}


@pytest.mark.parametrize("graph", ["LightGCN", "UltraGCN"])
def test_an_epoch_passes_over_every_edge(small_split, graph):
    model = build_model("CREATE", create_params(graph, warmup_epochs=1), seed=0)
    model.build(small_split.train)
    g = torch.Generator().manual_seed(0)
    n_edges = len(model.graph.edge_users)
    warm = model.train_batches(1, g)  # the graph's own batches: its batch_size edges per step
    assert {(b[0], b[1]) for b in warm} == {("warmup", None)}
    assert max(len(b[2]) for b in warm) == GRAPH_SETTINGS[graph]["batch_size"]
    assert torch.equal(torch.cat([b[2] for b in warm]).sort().values, torch.arange(n_edges))
    joint = model.train_batches(2, g)  # every window once, every edge once, finishing together
    assert {b[0] for b in joint} == {"joint"}
    assert torch.equal(torch.cat([b[1] for b in joint]).sort().values,
                       torch.arange(len(model.window_users)))
    assert torch.equal(torch.cat([b[2] for b in joint]).sort().values, torch.arange(n_edges))


@pytest.mark.parametrize("graph", ["LightGCN", "UltraGCN"])
def test_warmup_trains_the_graph_like_the_standalone_model(small_split, graph):
    """After N warm-up epochs the graph branch alone scores >= 80 % of the validation NDCG@10 of
    the standalone graph model trained N epochs with the same settings, and its loss falls."""
    n = 8
    model = build_model("CREATE", create_params(graph, epochs=1, warmup_epochs=n, lr=0.01), seed=0)
    model.fit(small_split.valid_train, small_split.valid)
    history = model.train_result.history[:n]  # the warm-up epochs
    assert history[-1]["L_global"] < history[0]["L_global"]
    branch = history[-1]["graph_val_ndcg@10"]
    standalone = build_model(graph, {**model._graph_params.__dict__, "epochs": n, "lr": 0.01},
                             seed=0)
    standalone.fit(small_split.valid_train)
    alone = evaluate(standalone, small_split.valid)[0]["ndcg@10"]
    pop = build_model("PopRnd", {}, seed=0)
    pop.fit(small_split.valid_train)
    assert alone > 2 * evaluate(pop, small_split.valid)[0]["ndcg@10"]  # the graph has learned
    assert branch >= 0.8 * alone, (branch, alone)


def test_history_has_every_loss_term(small_split):
    model = build_model("CREATE", {**FAST, "epochs": 1, "warmup_epochs": 1}, seed=0)
    model.fit(small_split.train)
    warm, joint = model.train_result.history
    assert {"L_global"} <= warm.keys() and "L_local" not in warm
    assert {"L_local", "L_global", "L_align"} <= joint.keys()
    p = model.params
    total = joint["L_local"] + p.w_global * joint["L_global"] + p.w_align * joint["L_align"]
    assert joint["train_loss"] == pytest.approx(total, rel=1e-5)


def test_graph_users_start_at_the_item_table_scale(small_split):
    model = build_model("CREATE", create_params("UltraGCN"), seed=0)
    model.build(small_split.train)
    users = model.graph.encoder.user_weight.std().item()
    items = model.seq.encoder.item_weights.std().item()
    assert users == pytest.approx(items, rel=0.1)
    assert model.graph.encoder.reduction == "mean"  # a per-example loss beside the CE


def test_bert4rec_aligns_the_state_of_an_appended_mask(small_split):
    """h_u of BERT4Rec is the [MASK] output that scores the next item, not the last position."""
    model = build_model("CREATE", {**FAST, "sequential_backbone": "BERT4Rec"}, seed=0)
    model.build(small_split.train)
    model.eval()
    idx = torch.arange(8)
    with torch.no_grad():
        h_u = model.seq.user_states(idx, None)  # [8, d]
        history = SimpleNamespace(items=model.seq.windows[idx, 1:])  # what score reads
        scores = model.seq.score(history)
    assert torch.allclose(h_u @ model.seq.encoder.item_weights.T, scores, atol=1e-5)


def test_gradient_norms_measure_each_term(small_split):
    from create_model.diagnostics import gradient_norms

    model = build_model("CREATE", {**FAST, "alignment": "barlow"}, seed=0)
    model.build(small_split.train)
    g = torch.Generator().manual_seed(0)
    norms = gradient_norms(model, model.train_batches(2, g)[0], g)
    assert set(norms) == {"L_local", "w_global L_global", "w_align L_align"}
    assert all(n["item_table"] > 0 for n in norms.values())
    assert norms["w_global L_global"]["transformer"] == 0  # the graph never reaches the transformer
    assert norms["L_local"]["transformer"] > 0 and norms["w_align L_align"]["transformer"] > 0

    def align_norm(scale):  # the same weights and batch, dropout off: only the reading differs
        torch.manual_seed(0)
        m = build_model("CREATE", {**FAST, "alignment": "barlow", "barlow_scale": scale}, seed=0)
        m.build(small_split.train)
        m.eval()
        gen = torch.Generator().manual_seed(0)
        return gradient_norms(m, m.train_batches(2, gen)[0], gen)["w_align L_align"]["transformer"]

    assert align_norm("sum") / align_norm("mean") == pytest.approx(model.seq.params.dim, rel=1e-4)
