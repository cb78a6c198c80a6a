"""Evaluation throughput against a bare `scores = H @ E.T; topk` on the same tensors.

    python benchmarks/bench_eval.py [--users 10000] [--items 20000] [--dim 64] [--device cpu]
    python benchmarks/bench_eval.py --sweep        # catalogs of 4k to 200k items

Prints histories per second for both and their ratio (goal: the project's path keeps at least
half the bare throughput). The project's path is the real one: a model's ``score`` on padded
history batches, deterministic top-100 with tie repair, target positions, coverage masks.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks._common import interleaved
from recbench.data.dataset import EvalSet
from recbench.evaluation import evaluate

GOAL = 0.5  # ours / bare throughput, at least
CATALOGS = (4_000, 20_000, 50_000, 100_000, 200_000)
#: scores per timed pass in a sweep: histories = SCORES / catalog, within [1024, 10000]
SWEEP_SCORES = 4 * 10**8


class DotModel:
    """User state = the last history item's embedding; scores = state @ E.T (as a SASRec head)."""

    def __init__(self, E):
        self.E = E

    def score(self, batch):  # [B, n_items]
        return self.E[batch.items[:, -1]] @ self.E.T


def measure(users: int = 10_000, items: int = 20_000, dim: int = 64, batch: int = 1024,
            device: str = "cpu", repeats: int = 3) -> dict:
    """Best-of-``repeats`` seconds of the bare path and of ``recbench.evaluation.evaluate``."""
    g = torch.Generator().manual_seed(0)
    E = torch.randn(items + 1, dim, generator=g).to(device)
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 20, users)
    evalset = EvalSet(users=np.arange(users), offsets=np.concatenate([[0], np.cumsum(lens)]),
                      items=rng.integers(0, items, lens.sum()),
                      targets=rng.integers(0, items, users), n_items=items)
    H = E[torch.from_numpy(evalset.items[evalset.offsets[1:] - 1]).to(device)]  # [U, d]
    Ecat = E[:items]

    def bare():
        for s in range(0, users, batch):
            torch.topk(H[s : s + batch] @ Ecat.T, 100, dim=1)

    model = DotModel(Ecat)

    def ours():
        evaluate(model, evalset, batch_size=batch, device=device)

    t = interleaved({"bare": bare, "ours": ours}, repeats, device)
    return {"device": device, "users": users, "items": items, "dim": dim, "batch": batch,
            "threads": torch.get_num_threads(), "bare_s": t["bare"], "ours_s": t["ours"],
            "bare_per_s": users / t["bare"], "ours_per_s": users / t["ours"],
            "ratio": t["bare"] / t["ours"], "goal": GOAL}


def sweep(catalogs=CATALOGS, device: str = "cpu", repeats: int = 3,
          scores: int = SWEEP_SCORES, max_users: int = 10_000, min_users: int = 1024,
          log=print) -> list[dict]:
    """``measure`` for each catalog size, with about ``scores`` scores per pass."""
    out = []
    for items in catalogs:
        users = int(min(max_users, max(min_users, scores // items)))
        r = measure(users=users, items=items, device=device, repeats=repeats)
        log(f"  eval {items:>7,} items x {users:,} histories: ratio {r['ratio']:.2f}")
        out.append(r)
    return out


def report_line(r: dict) -> str:
    return (f"{r['items']:>7,} items, {r['users']:,} histories: bare {r['bare_per_s']:,.0f}/s, "
            f"recbench {r['ours_per_s']:,.0f}/s, ratio {r['ratio']:.2f} (goal >= {GOAL}: "
            f"{'OK' if r['ratio'] >= GOAL else 'MISSED'})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sweep", action="store_true", help=f"catalogs {', '.join(map(str, CATALOGS))}")
    args = ap.parse_args()
    print(f"device={args.device} dim={args.dim} threads={torch.get_num_threads()}")
    if args.sweep:
        rows = sweep(device=args.device, repeats=args.repeats, log=lambda *_: None)
    else:
        rows = [measure(args.users, args.items, args.dim, args.batch, args.device, args.repeats)]
    for r in rows:
        print(report_line(r))


if __name__ == "__main__":
    main()
