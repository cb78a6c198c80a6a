"""Training-step time of each neural model against a bare plain-torch step of the same shapes.

    python benchmarks/bench_steps.py [--quick] [--device cpu|cuda] [--model SASRec ...]

One optimisation step of the project's model (its ``training_loss`` + AdamW, the code path of
``recbench.training.train``) against a step written here in plain torch with the same tensor
shapes and the same arithmetic, measured in the same run, the two taking turns (goal: ours /
bare at most 1.2):

- SASRec: embedding + positions, causal nn.TransformerEncoder, full CE at every position;
- BERT4Rec: the same, bidirectional, 4x feed-forward, 20% of positions masked, CE on those;
- LightGCN: 3 layers of sparse propagation of the whole graph, BPR with a uniform negative, L2;
- UltraGCN: degree-weighted BCE over 200 negatives, item-item constraint, L2 of both tables;
- CREATE (SASRec + UltraGCN, Barlow Twins), a joint step of its schedule: the SASRec step + the
  per-positive UltraGCN loss of the step's share of the graph's edges (here the whole graph of
  the batch's users: one window batch per epoch) + Barlow Twins (divided by d, lambda 1/d)
  between every position's transformer state and its user's embedding (the configs' reading).

The bare steps share nothing with the project's code: they are what a reader would write.
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks._common import interleaved, sequence_log

GOAL = 1.2  # ours / bare step time, at most
MODELS = ("SASRec", "BERT4Rec", "LightGCN", "UltraGCN", "CREATE")

#: shapes of each model's step (full; --quick divides the sizes)
SHAPES = {  # the paper config's batch sizes, lengths and dimensions; a 10k-20k-item catalog
    "SASRec": {"n_items": 10_000, "batch": 128, "max_len": 50, "dim": 64},
    "BERT4Rec": {"n_items": 10_000, "batch": 128, "max_len": 50, "dim": 64},
    "LightGCN": {"n_items": 20_000, "users": 4_000, "per_user": 50, "batch": 2048, "dim": 64},
    "UltraGCN": {"n_items": 20_000, "users": 4_000, "per_user": 50, "batch": 1024, "dim": 128},
    "CREATE": {"n_items": 10_000, "batch": 128, "max_len": 50, "dim": 64},
}
QUICK = {
    "SASRec": {"n_items": 2_000, "batch": 32, "max_len": 50, "dim": 32},
    "BERT4Rec": {"n_items": 2_000, "batch": 32, "max_len": 50, "dim": 32},
    "LightGCN": {"n_items": 2_000, "users": 400, "per_user": 20, "batch": 1024, "dim": 32},
    "UltraGCN": {"n_items": 2_000, "users": 400, "per_user": 20, "batch": 512, "dim": 32},
    "CREATE": {"n_items": 2_000, "batch": 32, "max_len": 20, "dim": 32},
}


# ----------------------------------------------------------------------------- bare steps


def _optimizer_step(params, loss_fn):
    opt = torch.optim.AdamW(params, lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()
    return step


class _BareTransformer(nn.Module):
    """Item table (+ padding, + [MASK]) and positions, pre-norm nn.TransformerEncoder."""

    def __init__(self, n_items, dim, L, ffn, extra_rows=1):
        super().__init__()
        self.n_items = n_items
        self.emb = nn.Embedding(n_items + extra_rows, dim)
        self.pos = nn.Embedding(L, dim)
        layer = nn.TransformerEncoderLayer(dim, 2, ffn, 0.2, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(dim),
                                         enable_nested_tensor=False)

    def forward(self, x, mask=None):
        return self.enc(self.emb(x) + self.pos.weight, mask=mask)  # [B, L, d]


def bare_sasrec(n_items, batch, max_len, dim, device):
    net = _BareTransformer(n_items, dim, max_len, dim).to(device)
    causal = torch.ones(max_len, max_len, dtype=torch.bool, device=device).triu(1)
    x = torch.randint(0, n_items, (batch, max_len), device=device)
    y = torch.randint(0, n_items, (batch * max_len,), device=device)

    def loss():
        h = net(x, causal)
        return F.cross_entropy(h.reshape(-1, dim) @ net.emb.weight[:n_items].T, y)
    return _optimizer_step(net.parameters(), loss)


def bare_bert4rec(n_items, batch, max_len, dim, device, mask_prob=0.2):
    net = _BareTransformer(n_items, dim, max_len, 4 * dim, extra_rows=2).to(device)
    x = torch.randint(0, n_items, (batch, max_len), device=device)

    def loss():
        masked = torch.rand(batch, max_len, device=device) < mask_prob
        h = net(x.masked_fill(masked, n_items + 1))
        return F.cross_entropy(h[masked] @ net.emb.weight[:n_items].T, x[masked])
    return _optimizer_step(net.parameters(), loss)


def _random_graph(users, n_items, per_user, seed=0):
    """Binary users x items CSR with ``per_user`` distinct random items per user."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(users), per_user)
    cols = rng.integers(0, n_items, len(rows))
    R = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(users, n_items))
    R.sum_duplicates()
    R.data[:] = 1.0
    return R


def edge_batches(rows, cols, batch: int, device: str):
    """A function returning the next ``batch`` (user [b], item [b]) edges on ``device``, in a
    fixed order, wrapping around."""
    eu = torch.from_numpy(np.asarray(rows).astype(np.int64))
    ei = torch.from_numpy(np.asarray(cols).astype(np.int64))
    state = {"at": 0}

    def next_edges():
        s = state["at"]
        state["at"] = (s + batch) % len(eu)
        return eu[s:s + batch].to(device), ei[s:s + batch].to(device)

    return next_edges


def bare_lightgcn(n_items, users, per_user, batch, dim, device, n_layers=3, reg=1e-4):
    R = _random_graph(users, n_items, per_user).tocoo()
    n = users + n_items
    rows = np.concatenate([R.row, R.col + users])
    cols = np.concatenate([R.col + users, R.row])
    deg = np.bincount(rows, minlength=n).astype(np.float32)
    d = 1.0 / np.sqrt(np.maximum(deg, 1))
    A = torch.sparse_coo_tensor(np.stack([rows, cols]), d[rows] * d[cols], (n, n)).coalesce()
    A = A.float().to(device)
    emb = nn.Embedding(n, dim).to(device)
    nn.init.normal_(emb.weight, std=0.1)
    next_edges = edge_batches(R.row, R.col, batch, device)

    def loss():
        u, i = next_edges()
        j = torch.randint(0, n_items, (len(u),), device=device)
        x, total = emb.weight, emb.weight
        for _ in range(n_layers):
            x = torch.sparse.mm(A, x)
            total = total + x
        final = total / (n_layers + 1)
        fu, fi, fj = final[u], final[users + i], final[users + j]
        bpr = F.softplus((fu * fj).sum(-1) - (fu * fi).sum(-1)).mean()
        ego = emb.weight
        l2 = ego[u].pow(2).sum() + ego[users + i].pow(2).sum() + ego[users + j].pow(2).sum()
        return bpr + reg * l2 / (2 * len(u))
    return _optimizer_step(emb.parameters(), loss)


class _BareUltra(nn.Module):
    """UltraGCN's tables, degree weights and (random, same-shaped) item-item neighbours."""

    def __init__(self, R, dim, n_neighbours=10, item_table=None, user_std=1e-3):
        super().__init__()
        n_users, n_items = R.shape
        self.user = nn.Parameter(torch.randn(n_users, dim) * user_std)
        self.item = item_table if item_table is not None else nn.Parameter(
            torch.randn(n_items, dim) * 1e-3)
        d_u = np.asarray(R.sum(1)).ravel()
        d_i = np.asarray(R.sum(0)).ravel()
        self.register_buffer("beta_u", torch.tensor(np.sqrt(d_u + 1) / np.maximum(d_u, 1),
                                                    dtype=torch.float32))
        self.register_buffer("beta_i", torch.tensor(1 / np.sqrt(d_i + 1), dtype=torch.float32))
        self.register_buffer("nbr", torch.randint(0, n_items, (n_items, n_neighbours)))
        self.register_buffer("omega", torch.rand(n_items, n_neighbours))

    def loss(self, u, i, j, items, w=(1e-7, 1.0, 1e-7, 1.0), nw=200.0, gamma=1e-4, lam=1e-3,
             mean=False):
        eu = self.user[u]  # [B, d]
        s_pos = (eu * items[i]).sum(-1)
        s_neg = torch.einsum("bd,bmd->bm", eu, items[j])
        bu = self.beta_u[u]
        c_pos, c_neg = bu * self.beta_i[i], bu[:, None] * self.beta_i[j]
        bp, bn = F.softplus(-s_pos), F.softplus(s_neg)
        l_o = (w[0] * bp).sum() + nw * (w[2] * bn).mean(-1).sum()
        l_c = (w[1] * c_pos * bp).sum() + nw * (w[3] * c_neg * bn).mean(-1).sum()
        s_nbr = torch.einsum("bd,bkd->bk", eu, items[self.nbr[i]])
        l_i = (self.omega[i] * F.softplus(-s_nbr)).sum()
        if mean:  # per positive, L2 of the rows the step touched
            B = len(u)
            norm = (eu.pow(2).sum() + items[i].pow(2).sum()
                    + items[j].pow(2).sum(-1).mean(-1).sum()) / (2 * B)
            return (l_o + l_c + lam * l_i) / B + gamma * norm
        norm = (self.user.pow(2).sum() + items.pow(2).sum()) / 2
        return l_o + l_c + lam * l_i + gamma * norm


def bare_ultragcn(n_items, users, per_user, batch, dim, device, negatives=200):
    R = _random_graph(users, n_items, per_user)
    net = _BareUltra(R, dim).to(device)
    coo = R.tocoo()
    next_edges = edge_batches(coo.row, coo.col, batch, device)

    def loss():
        u, i = next_edges()
        j = torch.randint(0, n_items, (len(u), negatives), device=device)
        return net.loss(u, i, j, net.item)
    return _optimizer_step(net.parameters(), loss)


def _barlow(h, e, lambd=5e-3):
    def z(v):
        var = v.var(0, unbiased=False)
        return (v - v.mean(0)) / torch.sqrt(var + 1e-5 * var.mean().detach())
    c = z(h).T @ z(e) / len(h)
    on = (1 - torch.diagonal(c)).pow(2).sum()
    return (on + lambd * (c.pow(2).sum() - torch.diagonal(c).pow(2).sum())) / h.shape[1]


def bare_create(n_items, batch, max_len, dim, device, negatives=200):
    net = _BareTransformer(n_items, dim, max_len, dim).to(device)
    R = _random_graph(batch, n_items, max_len)  # the batch's users, their last max_len items
    ultra = _BareUltra(R, dim, item_table=net.emb.weight, user_std=dim ** -0.5).to(device)
    causal = torch.ones(max_len, max_len, dtype=torch.bool, device=device).triu(1)
    x = torch.randint(0, n_items, (batch, max_len), device=device)
    y = torch.randint(0, n_items, (batch * max_len,), device=device)
    users = torch.arange(batch, device=device)
    coo = R.tocoo()  # one window batch per epoch: the step's edge share is every edge
    eu = torch.from_numpy(coo.row.astype(np.int64)).to(device)
    ei = torch.from_numpy(coo.col.astype(np.int64)).to(device)

    def loss():
        h = net(x, causal)
        items = net.emb.weight[:n_items]
        local = F.cross_entropy(h.reshape(-1, dim) @ items.T, y)
        neg = torch.randint(0, n_items, (len(eu), negatives), device=device)
        graph = ultra.loss(eu, ei, neg, items, mean=True)
        # the configured reading: every position's state paired with its user's e_u
        e = ultra.user[users].repeat_interleave(max_len, 0)  # [B * L, d]
        return local + 0.1 * graph + 0.1 * _barlow(h.reshape(-1, dim), e, 1 / 64)
    return _optimizer_step(list(net.parameters()) + [ultra.user], loss)


BARE = {"SASRec": bare_sasrec, "BERT4Rec": bare_bert4rec, "LightGCN": bare_lightgcn,
        "UltraGCN": bare_ultragcn, "CREATE": bare_create}


# ----------------------------------------------------------------------------- the project's steps


def our_step(name: str, shape: dict, device: str):
    """One step of the project's model ``name`` on data of ``shape`` (AdamW, as ``train`` does)."""
    from recbench.models import build_model

    s = shape
    if name in ("SASRec", "BERT4Rec"):  # one full window per user: batch x max_len positions
        train = sequence_log(s["batch"], s["max_len"] + 1, s["n_items"])
        params = {"dim": s["dim"], "max_len": s["max_len"], "batch_size": s["batch"]}
    elif name == "CREATE":
        train = sequence_log(s["batch"], s["max_len"] + 1, s["n_items"])
        params = {"sequential_backbone": "SASRec", "graph_backbone": "UltraGCN",
                  "alignment": "barlow", "warmup_epochs": 0, "batch_size": s["batch"],
                  "align_positions": "all", "barlow_lambda": 1 / 64,  # the configs' reading
                  "sequential": {"dim": s["dim"], "max_len": s["max_len"],
                                 "init": "trunc_normal"},
                  "graph": {"graph_last_n": s["max_len"]}}
    else:
        train = sequence_log(s["users"], s["per_user"], s["n_items"])
        params = {"dim": s["dim"], "batch_size": s["batch"]}
    torch.manual_seed(0)
    model = build_model(name, {**params, "progress": False}, seed=0, device=device)
    model.build(train)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batches = list(model.train_batches(1, gen))  # CREATE: joint steps (warm-up 0)
    state = {"at": 0}

    def step():
        batch = batches[state["at"] % len(batches)]
        state["at"] += 1
        opt.zero_grad(set_to_none=True)
        loss = model.training_loss(batch, gen)
        (loss["loss"] if isinstance(loss, dict) else loss).backward()  # CREATE: with its terms
        opt.step()
    return step


def measure(name: str, device: str = "cpu", quick: bool = False, steps: int = 10,
            rounds: int = 3) -> dict:
    """Best-of-``rounds`` ms per step (over ``steps`` steps) of the bare and the project's step."""
    shape = (QUICK if quick else SHAPES)[name]
    torch.manual_seed(0)
    bare = BARE[name](**shape, device=device)
    ours = our_step(name, shape, device)

    def many(step):
        def run():
            for _ in range(steps):
                step()
        return run

    t = interleaved({"bare": many(bare), "ours": many(ours)}, rounds, device)
    return {"model": name, "device": device, "shape": shape, "threads": torch.get_num_threads(),
            "bare_ms": 1e3 * t["bare"] / steps, "ours_ms": 1e3 * t["ours"] / steps,
            "ratio": t["ours"] / t["bare"], "goal": GOAL}


def sweep(models=MODELS, device: str = "cpu", quick: bool = False, steps: int = 10,
          rounds: int = 3, log=print) -> list[dict]:
    out = []
    for name in models:
        r = measure(name, device, quick, steps, rounds)
        log(f"  step {name}: ours {r['ours_ms']:.1f} ms, bare {r['bare_ms']:.1f} ms, "
            f"ratio {r['ratio']:.2f}")
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small shapes")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"device={args.device} threads={torch.get_num_threads()}")
    for r in sweep(args.model, args.device, args.quick, args.steps, args.rounds, log=lambda *_: None):
        print(f"{r['model']:>9}: ours {r['ours_ms']:8.1f} ms, bare {r['bare_ms']:8.1f} ms, ratio "
              f"{r['ratio']:.2f} (goal <= {GOAL}: {'OK' if r['ratio'] <= GOAL else 'MISSED'})  {r['shape']}")


if __name__ == "__main__":
    main()
