"""CREATE's readings of the paper's open points (create_model/readings.py): each option does what
it says on a small case, the epoch budget counts joint epochs, and the readings table matches
CREATE's parameters."""

import pandas as pd
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from baselines.sasrec import SASRec
from create_model.alignment import barlow_twins
from create_model.create import CREATE
from create_model.readings import PREDECESSOR, READINGS, options
from recbench.errors import ConfigError
from recbench.evaluation import evaluate
from recbench.models import build_model, make_params
from recbench.protocol.studies import apply_overrides
from recbench.training import train
from recbench.protocol.tuning import defaults_in_space, distributions, retrain_params

FAST = {"epochs": 1, "batch_size": 128, "warmup_epochs": 1, "progress": False,
        "sequential": {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10},
        "graph": {"graph_last_n": 20, "LightGCN": {"n_layers": 2, "batch_size": 512},
                  "UltraGCN": {"negative_num": 20, "batch_size": 512}}}
GRAPHS = ["LightGCN", "UltraGCN"]


def built(split, **params):
    model = build_model("CREATE", apply_overrides(FAST, params), seed=0)
    torch.manual_seed(0)
    model.build(split.train)
    return model


def transformer_state(model):
    return {k: v.clone() for k, v in model.seq.encoder.state_dict().items() if "item_emb" not in k}


# --- graph_schedule: sequential -----------------------------------------------------------------

@pytest.mark.parametrize("graph", GRAPHS)
def test_a_sequential_schedule_step_is_one_sequential_batch(small_split, graph):
    model = built(small_split, graph_schedule="sequential", graph_backbone=graph)
    g = torch.Generator().manual_seed(0)
    for epoch, phase in ((1, "warmup"), (2, "joint")):
        batches = model.train_batches(epoch, g)
        assert {(b[0], b[2]) for b in batches} == {(phase, None)}  # no edge pass
        assert torch.equal(torch.cat([b[1] for b in batches]).sort().values,
                           torch.arange(len(model.window_users)))  # every window once
        assert max(len(b[1]) for b in batches) == FAST["batch_size"]


def test_the_sequential_schedules_graph_pairs_are_the_windows_next_items(small_split):
    """One (user, target) pair per real position: what SASRec's cross-entropy predicts."""
    model = built(small_split, graph_schedule="sequential")
    windows = torch.tensor([3, 0, 7])
    users, items = model.graph_pairs(windows, None)
    seq = model.seq
    want = [(int(model.window_users[w]), int(seq.targets[w, t])) for w in windows.tolist()
            for t in range(seq.targets.shape[1]) if seq.inputs[w, t] != seq.encoder.pad_id]
    assert sorted(zip(users.tolist(), items.tolist())) == sorted(want)
    assert len(want) == int(seq.input_lengths[windows].sum())


@pytest.mark.parametrize("graph", GRAPHS)
def test_sequential_warmup_steps_once_per_batch_and_leaves_the_transformer_bit_identical(
        small_split, graph):
    model = built(small_split, graph_schedule="sequential", graph_backbone=graph, warmup_epochs=2)
    before = transformer_state(model)
    items = model.seq.encoder.item_emb.weight.detach().clone()
    users = model.graph.encoder.user_weight.detach().clone()
    steps = []
    hook = register_optimizer_step_pre_hook(lambda *a: steps.append(1))
    try:
        result = train(model, model.params.train_config(), seed=0, epochs=0)  # the warm-up alone
    finally:
        hook.remove()
    n_batches = len(model.seq.train_batches(1, torch.Generator().manual_seed(0)))
    assert len(steps) == 2 * n_batches
    assert [r["phase"] for r in result.history] == ["warmup", "warmup"]
    after = transformer_state(model)
    assert all(torch.equal(before[k], after[k]) for k in after)  # no gradient reached it
    assert not torch.equal(items, model.seq.encoder.item_emb.weight)  # L_global trained the table
    assert not torch.equal(users, model.graph.encoder.user_weight)


def test_a_sequential_joint_step_puts_l_global_on_the_batchs_pairs(small_split):
    """With catalogue negatives (no draw) L_global is the BPR of exactly those pairs."""
    model = built(small_split, graph_schedule="sequential", graph_negatives="catalog")
    windows = torch.arange(5)
    terms = model.loss_terms(("joint", windows, None), torch.Generator().manual_seed(0))
    users, items = model.graph_pairs(windows, None)
    want = model.graph.encoder.catalog_bpr_loss(users, items)
    assert terms["L_global"].item() == pytest.approx(want.item(), rel=1e-6)
    assert {"L_local", "L_align"} <= terms.keys()


# --- graph_negatives ----------------------------------------------------------------------------

@pytest.mark.parametrize("graph", GRAPHS)
def test_catalog_negatives_reach_the_graph_backbone_and_draw_nothing(small_split, graph):
    model = built(small_split, graph_negatives="catalog", graph_backbone=graph)
    assert model.graph.params.negatives == "catalog"
    edges = torch.arange(300)
    losses = [model.graph.training_loss(edges, torch.Generator().manual_seed(s)).item()
              for s in (0, 1)]
    assert losses[0] == losses[1]  # every non-interacted item, no sample
    sampled = built(small_split, graph_backbone=graph)
    assert sampled.graph.params.negatives == "sampled"
    draws = [sampled.graph.training_loss(edges, torch.Generator().manual_seed(s)).item()
             for s in (0, 1)]
    assert draws[0] != draws[1]
    with pytest.raises(ConfigError, match="graph_negatives"):
        build_model("CREATE", apply_overrides(FAST, {"graph.negatives": "catalog"}))


def test_the_standalone_graph_models_keep_their_official_defaults():
    for name in GRAPHS:
        p = make_params(build_model(name).Params, {})
        assert p.negatives == "sampled"
    light = make_params(build_model("LightGCN").Params, {})
    assert (light.hop_norm, light.edge_dropout, light.n_layers) == (False, 0.0, 3)


# --- LightGCN's form inside CREATE --------------------------------------------------------------

def test_hop_norm_and_edge_dropout_reach_lightgcn_and_draw_from_the_generator(small_split):
    model = built(small_split, **{"graph.LightGCN.hop_norm": True,
                                  "graph.LightGCN.edge_dropout": 0.3})
    enc = model.graph.encoder
    assert enc.hop_norm and enc.edge_dropout == 0.3
    model.train()
    a, b, c = (model.graph.propagate(torch.Generator().manual_seed(s))[1] for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)  # one seed, one draw
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.graph.final_embeddings()[1], enc()[1])  # no dropout


# --- score_table --------------------------------------------------------------------------------

def test_scoring_against_the_propagated_table_uses_no_user_embedding(small_split):
    model = build_model("CREATE", {**FAST, "score_table": "propagated"}, seed=0)
    model.fit(small_split.train)
    batch = small_split.test.batch(0, 32, max_len=model.max_history)
    with torch.no_grad():
        scores = model.score(batch)
        table = model.graph.final_embeddings()[1]
        assert model.graph.final_embeddings()[1] is table  # cached in eval mode
        state = model.seq.encoder(batch.items)[:, -1]
        torch.testing.assert_close(scores, state @ model.graph.encoder()[1].T)
        assert not torch.allclose(scores, state @ model.seq.encoder.item_weights.T)
        unknown = small_split.test.batch(0, 32, max_len=model.max_history)
        unknown.users[:] = -1  # users absent from the graph
        assert torch.equal(model.score(unknown), scores)
        other = small_split.test.batch(0, 32, max_len=model.max_history)
        other.users[:] = other.users.flip(0)  # another user's graph row: nothing changes
        assert torch.equal(model.score(other), scores)


def test_the_propagated_table_trains_the_cross_entropy(small_split):
    model = built(small_split, score_table="propagated")
    model.eval()  # no dropout: two passes give one loss
    windows = torch.arange(6)
    with torch.no_grad():
        terms = model.loss_terms(("joint", windows, torch.arange(50)), torch.Generator())
        items = model.graph.encoder()[1]
        assert terms["L_local"].item() == pytest.approx(
            model.seq.local_loss(windows, None, item_weights=items).loss.item(), rel=1e-6)
        assert terms["L_local"].item() != pytest.approx(
            model.seq.local_loss(windows, None).loss.item(), rel=1e-3)


def test_for_ultragcn_the_propagated_table_is_the_raw_table(small_split):
    """The same training and scores, up to float rounding (autograd sums the table's gradient
    contributions in another order)."""
    scores = []
    for table in ("raw", "propagated"):
        model = build_model("CREATE", {**FAST, "graph_backbone": "UltraGCN",
                                       "score_table": table}, seed=0)
        model.fit(small_split.train)
        with torch.no_grad():
            scores.append(model.score(small_split.test.batch(0, 16, max_len=model.max_history)))
        assert model.graph.final_embeddings()[1].data_ptr() == \
            model.seq.encoder.item_weights.data_ptr()
    torch.testing.assert_close(*scores, rtol=1e-5, atol=1e-5)


# --- align_positions ----------------------------------------------------------------------------

def test_all_positions_pairs_every_real_position_with_its_users_graph_embedding(small_split):
    model = built(small_split, align_positions="all")
    model.eval()
    windows = torch.tensor([0, 4, 9, 2])
    with torch.no_grad():
        local = model.seq.local_loss(windows, None)
        final = model.graph.encoder()
        got = model.alignment_loss(windows, local, final)
        x = model.seq.inputs[windows]
        h = model.seq.encoder(x)[x != model.seq.encoder.pad_id]  # [N, d] every real position
        e = final[0][model.window_users[windows]][(x != model.seq.encoder.pad_id).nonzero()[:, 0]]
        assert len(h) == int(model.seq.input_lengths[windows].sum())
        want = barlow_twins(h, e, model.params.barlow_lambda, model.params.barlow_scale)
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
        last = built(small_split).eval()
        assert got.item() != pytest.approx(last.alignment_loss(windows, local, final).item())


def test_all_positions_of_bert4rec_are_its_masked_positions(small_split):
    model = built(small_split, align_positions="all", sequential_backbone="BERT4Rec",
                  alignment="contrastive")
    model.eval()
    windows = torch.arange(8)
    with torch.no_grad():
        local = model.seq.local_loss(windows, torch.Generator().manual_seed(0))
        inputs, targets = model.seq.mask_items(model.seq.windows[windows],
                                               torch.Generator().manual_seed(0))
        assert len(local.states) == int((inputs == model.seq.encoder.mask_id).sum())
        assert torch.isfinite(model.alignment_loss(windows, local, model.graph.encoder()))


# --- init -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("init", ["scaled", "trunc_normal"])
def test_the_graph_users_start_at_the_item_tables_scale(small_split, graph, init):
    model = built(small_split, graph_backbone=graph, **{"sequential.init": init})
    users = model.graph.encoder.user_weight.std().item()
    assert users == pytest.approx(model.seq.encoder.item_weights.std().item(), rel=0.1)


# --- the epoch budget: `epochs` counts joint epochs ---------------------------------------------

def test_epochs_count_joint_epochs_and_the_history_names_each_phase(small_split, tmp_path):
    model = build_model("CREATE", {**FAST, "epochs": 2, "warmup_epochs": 2}, seed=0,
                        workdir=tmp_path)
    model.fit(small_split.train)
    history = pd.read_csv(tmp_path / "history.csv")
    assert history.epoch.tolist() == [1, 2, 3, 4]
    assert history.phase.tolist() == ["warmup", "warmup", "joint", "joint"]
    assert (model.best_epoch, model.epochs_trained) == (2, 2)  # in joint epochs
    assert model.train_result.best_epoch == 2  # the loop's count is the same one


def test_a_tuned_then_retrained_create_trains_the_warmup_and_exactly_the_best_joint_epochs(
        small_split):
    params = {**FAST, "epochs": 3, "warmup_epochs": 2, "patience": None}
    tuned = build_model("CREATE", params, seed=0)
    tuned.fit(small_split.valid_train, small_split.valid)
    best = tuned.best_epoch
    assert 1 <= best <= 3 and tuned.train_result.best_epoch == best
    history = tuned.train_result.history
    assert history[best + 1]["val_ndcg@10"] == max(r["val_ndcg@10"] for r in history[2:])
    retrain = retrain_params({"params": params, "best_epoch": best})
    assert retrain["epochs"] == best
    final = build_model("CREATE", retrain, seed=0)
    final.fit(small_split.train)
    phases = [r["phase"] for r in final.train_result.history]
    assert phases == ["warmup"] * 2 + ["joint"] * best
    assert final.best_epoch == best


# --- the readings table -------------------------------------------------------------------------

def _configured_create(path: str) -> dict:
    import yaml
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / path).read_text())
    return config["models"]["CREATE"]["params"]


CONFIGS = {path: _configured_create(path) for path in ("config/config.yaml", "config/paper.yaml")}


def resolved(params: dict, option: str):
    """The value CREATE's Params resolve ``option`` to (its backbones' own for nested keys)."""
    p = make_params(CREATE.Params, params)
    head, _, rest = option.partition(".")
    if head == "sequential":
        return getattr(p.backbone_params()[0], rest)
    if head == "graph":
        return getattr(p.backbone_params()[1], rest.split(".")[-1])
    return getattr(p, option)


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: r.option or r.point)
def test_every_alternative_of_the_table_is_accepted_by_creates_params(reading):
    if reading.option is None:  # a fixed reading, not a switch
        assert reading.default in [a.value for a in reading.alternatives]
        return
    for graph in GRAPHS if "LightGCN" not in reading.option else ["LightGCN"]:
        base = {"graph_backbone": graph}
        for config in CONFIGS:  # the table's default is the one both configs set
            configured = apply_overrides(CONFIGS[config], {"graph_backbone": graph})
            assert resolved(configured, reading.option) == reading.default, config
        for alt in reading.alternatives:
            params = apply_overrides(base, {reading.option: alt.value})
            assert resolved(params, reading.option) == alt.value
    assert reading.default in [a.value for a in reading.alternatives]
    assert reading.evidence


def test_the_predecessor_bundle_builds_and_learns(small_split):
    assert set(PREDECESSOR) <= set(options())
    assert PREDECESSOR["graph_schedule"] == "sequential" and PREDECESSOR["score_table"] == \
        "propagated"
    params = apply_overrides({**FAST, "epochs": 4, "lr": 0.005},
                             {"sequential.max_len": 20, **PREDECESSOR})
    model = build_model("CREATE", params, seed=0)
    model.fit(small_split.train)
    pop = build_model("PopRnd", {}, seed=0)
    pop.fit(small_split.train)
    ndcg = evaluate(model, small_split.test)[0]["ndcg@10"]
    assert ndcg > 5 * evaluate(pop, small_split.test)[0]["ndcg@10"], ndcg


def test_barlow_lambda_is_searchable():
    space = distributions({"barlow_lambda": {"low": 1e-3, "high": 0.1, "log": True}})
    assert defaults_in_space({"barlow_lambda": 5e-3}, space, "search") == {"barlow_lambda": 5e-3}
    assert make_params(CREATE.Params, {"barlow_lambda": 0.05}).barlow_lambda == 0.05


def test_sasrec_keeps_its_default_encoder():
    p = make_params(SASRec.Params, {})
    assert (p.input_norm, p.norm_first, p.init) == (False, True, "scaled")


# --- the readings study in the configs agrees with the table ------------------------------------

@pytest.mark.parametrize("config", ["config/config.yaml", "config/paper.yaml"])
def test_the_configs_readings_study_uses_the_tables_alternatives(config):
    """Each variant sets an alternative the table lists, every option of the table is flipped by
    some variant, and `predecessor` is the table's PREDECESSOR bundle (paper.yaml adds the
    LightGCN backbone its ML-1M CREATE lacks)."""
    import yaml
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    variants = yaml.safe_load((root / config).read_text())["studies"]["readings"]["variants"]
    table = {r.option: {a.value for a in r.alternatives} | {r.default}
             for r in READINGS if r.option is not None}
    bundle = dict(variants["predecessor"])
    bundle.pop("graph_backbone", None)
    assert bundle == PREDECESSOR
    for name, overrides in variants.items():
        for key, value in overrides.items():
            if key in table and name != "predecessor":
                assert value in table[key], (name, key, value)
    tabled = {k for o in variants.values() for k in o if k in table}
    assert tabled == set(table), set(table) - tabled  # every open point is in the study
