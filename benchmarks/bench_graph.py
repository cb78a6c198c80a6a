"""Seconds per epoch and peak memory of LightGCN and UltraGCN on a graph of Yambda-50M likes' size.

    python benchmarks/bench_graph.py [--quick] [--model LightGCN|UltraGCN|both] [--steps N]

The synthetic log has 8,283 users, 181,304 items and 881,456 interactions (Yambda-50M likes, the
paper's Table 1) with power-law item popularity; --quick divides all three by 20. One process per
model, so each peak RSS is that model's own. An epoch is timed by its first ``--steps`` steps,
extrapolated to the epoch's step count (the steps of an epoch are alike).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

SIZE = (8_283, 181_304, 881_456)


def run_one(model_name, users, items, rows, steps):
    from recbench.data.dataset import Interactions
    from recbench.models import build_model

    rng = np.random.default_rng(0)
    u = np.sort(rng.integers(0, users, rows))
    i = (rng.zipf(1.2, rows) - 1) % items
    train = Interactions(u, i, np.arange(rows), users, items)
    params = {"LightGCN": {"dim": 64, "batch_size": 2048},
              "UltraGCN": {"dim": 128, "batch_size": 1024, "negative_num": 200}}[model_name]
    model = build_model(model_name, {**params, "progress": False}, seed=0)
    t0 = time.perf_counter()
    model.build(train)
    build_s = time.perf_counter() - t0
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    batches = model.train_batches(1, gen)
    t0 = time.perf_counter()
    for b in batches[:steps]:
        opt.zero_grad(set_to_none=True)
        model.training_loss(b, gen).backward()
        opt.step()
    per_step = (time.perf_counter() - t0) / min(steps, len(batches))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"build_s": build_s, "epoch_s": per_step * len(batches), "steps": len(batches),
            "peak_rss_mib": peak}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="both")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    users, items, rows = (s // 20 for s in SIZE) if args.quick else SIZE
    if args.one:
        print(json.dumps(run_one(args.one, users, items, rows, args.steps)))
        return
    print(f"graph: {users:,} users, {items:,} items, {rows:,} interactions; threads={torch.get_num_threads()}")
    for name in (["LightGCN", "UltraGCN"] if args.model == "both" else [args.model]):
        cmd = [sys.executable, __file__, "--one", name, "--steps", str(args.steps)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name}: failed: {proc.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name}: build {r['build_s']:.1f} s, epoch {r['epoch_s']:.1f} s ({r['steps']} steps), "
              f"peak RSS {r['peak_rss_mib']:,.0f} MiB (limit 24 GiB: {'OK' if r['peak_rss_mib'] < 24 * 1024 else 'OVER'})")


if __name__ == "__main__":
    main()
