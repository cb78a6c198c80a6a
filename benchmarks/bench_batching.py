"""A SASRec and a CREATE epoch with ``batching: random`` against ``batching: length``.

    python benchmarks/bench_batching.py [--shape ml-1m beauty] [--steps 6] [--scale 1]

Synthetic logs shaped like two of the paper's datasets, lengths drawn log-normal (a real log's
long tail), each user's items distinct (one rating or review per item, so CREATE's graph has an
edge per interaction), starting at a power-law-popular item:

- ``ml-1m``: 6,040 users, about 165 events each (median 96, at least 20), 3,416 items, max_len
  200: the mean training window holds 108 real items of 200 (MovieLens-1M: 109);
- ``beauty``: 22,363 users, about 9 events each (median 6, at least 5: a 5-core), 12,101 items,
  max_len 50: 84 % of a window's positions are padding.

The models take config/paper.yaml's settings (full CE; CREATE = SASRec + UltraGCN on every
interaction of each user, Barlow Twins on every position, here without warm-up so that the epoch
is a joint one). One model is built per (shape, model) and its epoch's batches drawn both ways
from one seed. A full epoch of ML-1M's shape costs minutes on a shared CPU, so ``steps`` steps of
each batching are timed, the two taking turns, and the epoch extrapolated: the steps are a
sample spread evenly over the epoch's batches ordered by width (the longest window of each),
so their mean step time times the epoch's step count estimates the epoch. Times are CPU seconds
of the process on one thread (less sensitive to a busy machine than wall time, which is
reported beside). Positions computed / real: over the whole epoch, each batch's rows times its
longest window (what the encoder computes) against the real input positions (goal <= 1.15).

The full-catalog CE at the real positions is the same work under both batchings. A bare
``full_ce`` forward and backward over each timed batch's number of targets, taking turns with
the steps, gives its epoch time, and random epoch / that bounds the speedup of any batching (the
speedup were the encoder's work free).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks._common import in_fresh_process

#: users, items, log-normal length (median, sigma), fewest events per user, max_len
SHAPES = {
    "ml-1m": {"users": 6_040, "items": 3_416, "median": 96, "sigma": 1.04, "min_events": 20,
              "max_len": 200},
    "beauty": {"users": 22_363, "items": 12_101, "median": 6, "sigma": 0.8, "min_events": 5,
               "max_len": 50},
}
#: length / random epoch time, at least, per shape; positions computed / real, at most
SPEEDUP_GOALS = {"ml-1m": 1.6, "beauty": 3.0}
POSITIONS_GOAL = 1.15
MODELS = ("SASRec", "CREATE")


def params(model: str, max_len: int) -> dict:
    """config/paper.yaml's parameters of ``model`` (CREATE without warm-up)."""
    seq = {"dim": 64, "n_layers": 2, "n_heads": 2, "dropout": 0.2, "max_len": max_len,
           "loss": "ce"}
    if model == "SASRec":
        return {**seq, "batch_size": 128, "progress": False}
    return {"sequential_backbone": "SASRec", "graph_backbone": "UltraGCN", "warmup_epochs": 0,
            "batch_size": 128, "alignment": "barlow", "barlow_lambda": 1 / 64,
            "align_positions": "all", "barlow_scale": "mean", "progress": False,
            "sequential": {**seq, "init": "trunc_normal"},
            "graph": {"graph_last_n": None, "graph_last_fraction": 1.0, "negative_num": 200}}


def shaped_log(shape: str, scale: int = 1, seed: int = 0):
    """An ``Interactions`` log of ``shape`` (``SHAPES``), ``scale`` times fewer users."""
    from recbench.data.dataset import Interactions

    s = SHAPES[shape]
    rng = np.random.default_rng(seed)
    users = max(s["users"] // scale, 2)
    lengths = np.maximum(s["min_events"],
                         np.round(rng.lognormal(np.log(s["median"]), s["sigma"], users)))
    lengths = lengths.astype(np.int64)
    u = np.repeat(np.arange(users), lengths)
    # one interaction per (user, item), as in a ratings or reviews log (a graph of len(u) edges):
    # each user's items are consecutive item ids from a power-law start
    within = np.arange(len(u)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    first = (rng.zipf(1.2, users) - 1) % s["items"]
    i = (first[u] + within) % s["items"]
    return Interactions(u, i.astype(np.int64), np.arange(len(u)), users, s["items"])


def positions(lengths: torch.Tensor, batches: list[torch.Tensor]) -> tuple[int, int]:
    """(positions computed, real positions) of an epoch: each batch is cut to its longest row."""
    return (sum(len(b) * int(lengths[b].max()) for b in batches),
            sum(int(lengths[b].sum()) for b in batches))


def measure(shape: str, model: str, steps: int = 6, scale: int = 1) -> dict:
    """Both batchings' epoch of ``model`` on ``shape``'s log (run it in a fresh process)."""
    from recbench.models import build_model
    from recbench.nn.losses import full_ce

    torch.set_num_threads(1)
    data = shaped_log(shape, scale)
    torch.manual_seed(0)
    m = build_model(model, params(model, SHAPES[shape]["max_len"]), seed=0)
    m.build(data)
    m.train()
    seq = getattr(m, "seq", m)  # the windows and the batching live in the sequential side
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    epochs, sample = {}, {}
    for batching in ("random", "length"):
        seq.batching = batching
        epochs[batching] = m.train_batches(1, torch.Generator().manual_seed(0))
        windows = [b[1] for b in epochs[batching]] if model == "CREATE" else epochs[batching]
        width = [int(seq.input_lengths[w].max()) for w in windows]
        ranked = sorted(range(len(windows)), key=width.__getitem__)
        n = len(ranked)
        sample[batching] = [epochs[batching][ranked[(2 * k + 1) * n // (2 * steps)]]
                            for k in range(min(steps, n))]
        epochs[batching] = {"steps": n, "widths": width,
                            "positions": positions(seq.input_lengths, windows)}

    def step(batch):
        opt.zero_grad(set_to_none=True)
        out = m.training_loss(batch, gen)
        (out["loss"] if isinstance(out, dict) else out).backward()
        opt.step()

    # The full CE at a batch's real positions is the same work under both batchings: a bare
    # `full_ce` forward and backward over as many states as the batch has targets bounds the
    # speedup any batching can give (random epoch / this, were the encoder free).
    items = torch.nn.Parameter(torch.randn(data.n_items, 64) * 0.05)

    def ce_step(batch):
        rows = batch[1] if model == "CREATE" else batch
        n = int(seq.input_lengths[rows].sum())
        states = torch.randn(n, 64, generator=gen, requires_grad=True)
        targets = torch.randint(data.n_items, (n,), generator=gen)
        items.grad = None
        full_ce(states, items, targets).backward()

    runs = {"random": step, "length": step, "ce": ce_step}
    sample["ce"] = sample["length"]
    for kind, run in runs.items():  # warm-up: first-call costs out of the timing
        run(sample[kind][0])
    cpu = dict.fromkeys(runs, 0.0)
    wall = dict(cpu)
    for triple in zip(*(sample[k] for k in runs)):  # taking turns
        for (kind, run), batch in zip(runs.items(), triple):
            c0, w0 = time.process_time(), time.perf_counter()
            run(batch)
            cpu[kind] += time.process_time() - c0
            wall[kind] += time.perf_counter() - w0
    out = {"shape": shape, "model": model, "scale": scale, "users": data.n_users,
           "items": data.n_items, "interactions": len(data), "max_len": SHAPES[shape]["max_len"],
           "threads": torch.get_num_threads(), "timed_steps": len(sample["random"])}
    for batching, e in epochs.items():
        timed = len(sample[batching])
        computed, real = e["positions"]
        out[batching] = {"steps": e["steps"], "epoch_cpu_s": cpu[batching] / timed * e["steps"],
                         "epoch_wall_s": wall[batching] / timed * e["steps"],
                         "positions_computed": computed, "positions_real": real,
                         "positions_ratio": computed / real,
                         "mean_width": float(np.mean(e["widths"]))}
    out["ce_epoch_cpu_s"] = cpu["ce"] / len(sample["ce"]) * epochs["length"]["steps"]
    out["speedup"] = out["random"]["epoch_cpu_s"] / out["length"]["epoch_cpu_s"]
    out["speedup_bound"] = out["random"]["epoch_cpu_s"] / out["ce_epoch_cpu_s"]
    out["speedup_wall"] = out["random"]["epoch_wall_s"] / out["length"]["epoch_wall_s"]
    out["goal"] = SPEEDUP_GOALS[shape]
    return out


def sweep(shapes=tuple(SHAPES), models=MODELS, steps: int = 6, scale: int = 1,
          log=print) -> list[dict]:
    """``measure`` of each (shape, model), each in a fresh process."""
    out = []
    for shape in shapes:
        for model in models:
            r = in_fresh_process(measure, shape=shape, model=model, steps=steps, scale=scale)
            r.setdefault("shape", shape)
            r.setdefault("model", model)
            if "error" in r:
                log(f"  batching {shape} {model}: failed: {r['error']}")
            else:
                log(f"  batching {shape} {model}: epoch random {r['random']['epoch_cpu_s']:.1f} "
                    f"CPU-s, length {r['length']['epoch_cpu_s']:.1f} CPU-s, speedup "
                    f"{r['speedup']:.2f} (wall {r['speedup_wall']:.2f}), full CE alone "
                    f"{r['ce_epoch_cpu_s']:.1f} CPU-s: bound {r['speedup_bound']:.2f}; "
                    f"positions computed / "
                    f"real {r['random']['positions_ratio']:.2f} -> "
                    f"{r['length']['positions_ratio']:.3f}")
            out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--model", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=6, help="steps timed per batching")
    ap.add_argument("--scale", type=int, default=1, help="divide the users by this")
    args = ap.parse_args()
    sweep(args.shape, args.model, args.steps, args.scale)


if __name__ == "__main__":
    main()
