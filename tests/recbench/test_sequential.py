"""Length-grouped batches (``batching: length``): grouping, trimming that keeps every item's
position, CREATE's alignment and graph pairs on trimmed batches, evaluation identical to
untrimmed scoring, and that models still learn and repeat exactly."""

import numpy as np
import pytest
import torch

from recbench.data.dataset import HistoryBatch, Interactions
from recbench.errors import ConfigError
from recbench.evaluation import evaluate
from recbench.models import build_model
from recbench.sequential import length_batches

MAX_LEN = 12
N_ITEMS = 40
SEQ = {"dim": 16, "n_layers": 2, "n_heads": 2, "dropout": 0.0, "max_len": MAX_LEN,
       "batch_size": 8, "progress": False}
CREATE = {"batch_size": 8, "warmup_epochs": 0, "epochs": 1, "progress": False,
          "align_positions": "all", "graph_schedule": "sequential",
          "sequential": {k: v for k, v in SEQ.items() if k not in ("progress", "batch_size")},
          "graph": {"graph_last_n": MAX_LEN, "n_layers": 1}}


def varied_log(n_users=120, seed=0):
    """Users with 2 to 40 interactions (geometric, as real logs' long tail), random items."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(2 + rng.geometric(0.15, n_users), 40)
    users = np.repeat(np.arange(n_users), lengths)
    items = rng.integers(0, N_ITEMS, len(users))
    return Interactions(users, items, np.arange(len(users)), n_users, N_ITEMS)


def built(name, params=None, batching="length"):
    if name == "CREATE":
        p = {**CREATE, **(params or {})}
        p["sequential"] = {**p["sequential"], "batching": batching}
    else:
        p = {**SEQ, **(params or {}), "batching": batching}
        if name == "MRGSRec":
            p.update(ffn_dim=32, fusion_dim=24)
    model = build_model(name, p, seed=0)
    torch.manual_seed(0)
    model.build(varied_log())
    return model.eval()  # no dropout: trimmed and untrimmed passes compare exactly


def sequential_side(model):
    return model.seq if hasattr(model, "seq") else model


def computed_over_real(model, batches):
    """Positions the encoder computes (each batch trimmed to its longest window) / real ones."""
    lengths = sequential_side(model).lengths
    return (sum(len(b) * int(lengths[b].max()) for b in batches)
            / sum(int(lengths[b].sum()) for b in batches))


# --- the grouping ------------------------------------------------------------------------------


def test_length_batches_group_within_megabatches_and_shuffle_the_batches():
    lengths = torch.from_numpy(np.random.default_rng(1).geometric(0.05, 1000))
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    batches = length_batches(order, lengths, 16, torch.Generator().manual_seed(0), megabatch=5)
    # every window once; 12 full megabatches of 80 give 5 full batches each, 40 windows 3 more
    assert sorted(torch.cat(batches).tolist()) == list(range(1000))
    assert sorted(len(b) for b in batches) == [8] + [16] * 62
    mega = {int(w): m for m, chunk in enumerate(order.split(80)) for w in chunk}
    by_mega = {}
    for b in batches:  # each batch lies in one megabatch, whose batches do not overlap in length
        assert len({mega[int(w)] for w in b}) == 1
        by_mega.setdefault(mega[int(b[0])], []).append(lengths[b])
    for parts in by_mega.values():
        parts.sort(key=lambda x: int(x.min()))
        assert all(int(a.max()) <= int(b.min()) for a, b in zip(parts, parts[1:]))
    # the batches' order is shuffled (not megabatch by megabatch), and seeded
    assert [mega[int(b[0])] for b in batches] != sorted(mega[int(b[0])] for b in batches)
    again = length_batches(order, lengths, 16, torch.Generator().manual_seed(0), megabatch=5)
    other = length_batches(order, lengths, 16, torch.Generator().manual_seed(1), megabatch=5)
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    assert any(not torch.equal(a, b) for a, b in zip(batches, other))


def test_random_batching_is_the_plain_shuffle():
    model = built("SASRec", batching="random")
    assert build_model("SASRec", {}).params.batching == "random"
    batches = model.train_batches(1, torch.Generator().manual_seed(3))
    expected = torch.randperm(len(model.windows), generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(batches, expected.split(8)))


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec", "MRGSRec", "CREATE"])
def test_every_sequential_model_groups_its_windows_by_length(name):
    model = built(name)
    gen = torch.Generator().manual_seed(0)
    batches = model.train_batches(1, gen)
    windows = [b[1] for b in batches] if name == "CREATE" else batches
    assert sorted(torch.cat(windows).tolist()) == list(range(len(sequential_side(model).windows)))
    shuffled = built(name, batching="random").train_batches(1, torch.Generator().manual_seed(0))
    shuffled = [b[1] for b in shuffled] if name == "CREATE" else shuffled
    assert computed_over_real(model, windows) < 1.1 < computed_over_real(model, shuffled)
    step = model.train().training_loss(batches[0], gen)
    assert torch.isfinite(step["loss"] if isinstance(step, dict) else step)


def test_a_bad_batching_is_named():
    with pytest.raises(ConfigError, match=r"^models\.SASRec\.batching must be 'random' or "
                                          r"'length' \(.*\), got 'sorted' \(str\)"):
        build_model("SASRec", {"batching": "sorted"})
    with pytest.raises(ConfigError, match=r"^models\.CREATE\.sequential\.batching must be "
                                          r"'random' or 'length' \(.*\), got 'by_length'"):
        build_model("CREATE", {"sequential": {"batching": "by_length"}})


# --- trimming keeps every item's position -------------------------------------------------------


def short_batch(model):
    """A length batch whose longest window is well below the window length."""
    seq = sequential_side(model)
    batches = seq.train_batches(1, torch.Generator().manual_seed(0))
    idx = min(batches, key=lambda b: int(seq.lengths[b].max()))
    assert int(seq.lengths[idx].max()) < seq.windows.shape[1] - 3
    return idx


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec", "CREATE"])
def test_trimming_gives_every_item_the_state_it_has_untrimmed(name):
    """The encoder's positions count from the right end: a batch cut to its longest window gives
    each real item the same position embedding, so the same state, as the full-width window. With
    positions counted from the left end, the states would differ."""
    model = built(name)
    enc = sequential_side(model).encoder
    windows = sequential_side(model).windows[short_batch(model), -MAX_LEN:]  # [B, max_len]
    L = int((windows != enc.pad_id).sum(1).max())
    with torch.no_grad():
        full, trimmed = enc(windows), enc(windows[:, -L:])  # [B, max_len, d], [B, L, d]
        real = windows[:, -L:] != enc.pad_id
        assert torch.allclose(trimmed[real], full[:, -L:][real], atol=1e-5)
        assert torch.equal(full[:, :-L], torch.zeros_like(full[:, :-L]))  # all padding there
        # the position embedding each real item gets: max_len - L + j at column j of the cut
        positions = torch.arange(MAX_LEN - L, MAX_LEN)
        assert torch.equal(enc.pos_emb(positions), enc.pos_emb.weight[-L:])


@pytest.mark.parametrize("name", ["SASRec", "CREATE"])
def test_the_loss_on_a_trimmed_batch_is_the_untrimmed_one(name):
    model = built(name)
    seq, idx = sequential_side(model), short_batch(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        local = seq.local_loss(idx, gen)
        x, y = seq.inputs[idx], seq.targets[idx]  # [B, max_len] untrimmed
        h = seq.encoder(x)  # [B, max_len, d]
        real = x != seq.encoder.pad_id
        states = h[real]  # [N, d] row-major, as local_loss orders them
        ref = torch.nn.functional.cross_entropy(states @ seq.encoder.item_weights.T, y[real])
    assert torch.allclose(local.states, states, atol=1e-5)
    assert torch.allclose(local.loss, ref, atol=1e-5)
    assert torch.allclose(local.last, h[:, -1], atol=1e-5)


def test_bert4rec_user_states_on_a_trimmed_batch_are_the_untrimmed_ones():
    model = built("BERT4Rec")
    idx, enc = short_batch(model), model.encoder
    with torch.no_grad():
        trimmed = model.user_states(idx, None)
        items = model.windows[idx, 1:]  # [B, max_len - 1] untrimmed
        mask = torch.full((len(idx), 1), enc.mask_id)
        full = enc(torch.cat([items, mask], 1))[:, -1]
    assert torch.allclose(trimmed, full, atol=1e-5)


def test_create_aligns_and_pairs_each_trimmed_position_with_its_own_user():
    """``align_positions: all`` pairs each scored state with the e_u of its row, and L_global
    (``graph_schedule: sequential``) the row's user with its target: on a trimmed batch the rows
    of the states are those of the targets, and the users those of the windows."""
    model = built("CREATE")
    idx = short_batch(model)
    with torch.no_grad():
        local = model.seq.local_loss(idx, torch.Generator().manual_seed(0))
    rows, targets = model.seq.window_targets(idx)  # over the untrimmed windows
    assert torch.equal(local.rows, rows) and len(local.states) == len(rows)
    users, items = model.graph_pairs(idx, None)
    assert torch.equal(users, model.window_users[idx][rows]) and torch.equal(items, targets)
    x = model.seq.inputs[idx]
    assert all(int(targets[rows == r][-1]) == int(model.seq.targets[i, -1])
               for r, i in enumerate(idx.tolist()) if (x[r] != model.seq.encoder.pad_id).any())
    # a joint epoch with graph_schedule: edges still passes over every edge once
    edges = built("CREATE", {"graph_schedule": "edges"})
    steps = edges.train_batches(1, torch.Generator().manual_seed(0))
    assert sorted(torch.cat([e for _, _, e in steps]).tolist()) == list(range(edges.graph.n_edges))


# --- evaluation ---------------------------------------------------------------------------------


class Untrimmed:
    """``model`` scoring every history padded to max_history: the reference of trimming."""

    batching = "random"

    def __init__(self, model):
        self.model, self.max_history = model, model.max_history

    def score(self, batch):
        pad = self.max_history - batch.items.shape[1]
        items = torch.nn.functional.pad(batch.items, (pad, 0), value=batch.pad)
        return self.model.score(HistoryBatch(items, batch.lengths, batch.users, batch.pad))


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec", "CREATE"])
def test_evaluation_by_length_gives_exactly_the_untrimmed_metrics(small_split, name, monkeypatch):
    if name == "CREATE":
        params = {**CREATE, "batch_size": 128,
                  "sequential": {**CREATE["sequential"], "max_len": 20, "batching": "length"}}
    else:
        params = {**SEQ, "max_len": 20, "epochs": 1, "batch_size": 128, "batching": "length"}
    model = build_model(name, params, seed=0)
    model.fit(small_split.train)
    widths = []  # positions of each scored batch
    score = model.score
    monkeypatch.setattr(model, "score", lambda b: widths.append(b.items.numel()) or score(b))
    grouped, grouped_users = evaluate(model, small_split.test, batch_size=16)
    n_grouped = len(widths)
    reference, reference_users = evaluate(Untrimmed(model), small_split.test, batch_size=16)
    assert grouped == reference and grouped_users.equals(reference_users)
    n_reference = len(widths)
    model.batching = "random"  # the set's order, each batch padded to its longest
    assert evaluate(model, small_split.test, batch_size=16)[0] == reference
    # it did group: fewer positions scored than in the set's order, and far fewer than untrimmed
    assert sum(widths[:n_grouped]) < 0.8 * sum(widths[n_reference:])
    assert sum(widths[:n_grouped]) < 0.8 * sum(widths[n_grouped:n_reference])


# --- it learns, and repeats ---------------------------------------------------------------------


def test_sasrec_with_length_batches_learns_and_repeats_exactly(small_split):
    params = {"dim": 32, "n_layers": 1, "max_len": 20, "epochs": 5, "batch_size": 128,
              "lr": 0.005, "batching": "length", "progress": False}
    runs = []
    for _ in range(2):
        model = build_model("SASRec", params, seed=3)
        model.fit(small_split.train)
        runs.append(evaluate(model, small_split.test))
    assert runs[0][0] == runs[1][0] and runs[0][1].equals(runs[1][1])
    pop = build_model("PopRnd", {}, seed=0)
    pop.fit(small_split.train)
    assert runs[0][0]["ndcg@10"] > 3 * evaluate(pop, small_split.test)[0]["ndcg@10"]
