"""Evaluation throughput against a bare `scores = H @ E.T; topk` on the same tensors.

    python benchmarks/bench_eval.py [--users 10000] [--items 20000] [--dim 64] [--device cpu]

Prints histories per second for both and their ratio (goal: the project's path keeps at least
half the bare throughput). The project's path is the real one: a model's ``score`` on padded
history batches, deterministic top-100 with tie repair, target positions, coverage masks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from recbench.data.dataset import EvalSet
from recbench.evaluation import evaluate


class DotModel:
    """User state = the last history item's embedding; scores = state @ E.T (as a SASRec head)."""

    def __init__(self, E):
        self.E = E

    def score(self, batch):  # [B, n_items]
        return self.E[batch.items[:, -1]] @ self.E.T


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    g = torch.Generator().manual_seed(0)
    E = torch.randn(args.items + 1, args.dim, generator=g).to(args.device)
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 20, args.users)
    evalset = EvalSet(users=np.arange(args.users), offsets=np.concatenate([[0], np.cumsum(lens)]),
                      items=rng.integers(0, args.items, lens.sum()),
                      targets=rng.integers(0, args.items, args.users), n_items=args.items)
    H = E[torch.from_numpy(evalset.items[evalset.offsets[1:] - 1]).to(args.device)]  # [U, d]
    Ecat = E[: args.items]

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def bare():
        for s in range(0, args.users, args.batch):
            torch.topk(H[s : s + args.batch] @ Ecat.T, 100, dim=1)
        sync()

    model = DotModel(Ecat)

    def ours():
        evaluate(model, evalset, batch_size=args.batch, device=args.device)
        sync()

    bare(), ours()  # warm-up
    t_bare = min(_time(bare) for _ in range(args.repeats))
    t_ours = min(_time(ours) for _ in range(args.repeats))
    print(f"device={args.device} users={args.users:,} items={args.items:,} dim={args.dim} "
          f"threads={torch.get_num_threads()}")
    print(f"bare H@E.T + topk(100): {args.users / t_bare:,.0f} histories/s ({t_bare:.3f} s)")
    print(f"recbench evaluate:      {args.users / t_ours:,.0f} histories/s ({t_ours:.3f} s)")
    ratio = t_bare / t_ours
    print(f"throughput ratio (ours / bare): {ratio:.2f}  goal >= 0.50  {'OK' if ratio >= 0.5 else 'MISSED'}")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
