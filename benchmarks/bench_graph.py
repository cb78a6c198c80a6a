"""Seconds per epoch and peak memory of LightGCN and UltraGCN on a graph of Yambda-50M likes' size.

    python benchmarks/bench_graph.py [--quick] [--model LightGCN|UltraGCN|both] [--steps N]

The synthetic log has 8,283 users, 181,304 items and 881,456 interactions (Yambda-50M likes, the
paper's Table 1) with power-law item popularity; --quick divides all three by 20. One process per
model, so each peak RSS is that model's own. An epoch is timed by its first ``--steps`` steps,
extrapolated to the epoch's step count (the steps of an epoch are alike). The measuring code is
``bench_scale.py``'s, which does the same for SASRec and CREATE.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks import bench_scale
from benchmarks._common import GiB


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="both")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    scale = 20 if args.quick else 1
    users, items, rows = bench_scale.sizes(scale)
    print(f"graph: {users:,} users, {items:,} items, {rows:,} interactions; "
          f"threads={torch.get_num_threads()}")
    models = ["LightGCN", "UltraGCN"] if args.model == "both" else [args.model]
    for r in bench_scale.run(models, scale, args.device, steps=args.steps, log=lambda *_: None):
        if "error" in r:
            print(f"{r['model']}: failed: {r['error']}")
            continue
        print(f"{r['model']}: build {r['build_s']:.1f} s, epoch {r['epoch_s']:.1f} s "
              f"({r['steps']} steps), peak RSS {r['peak_rss_bytes'] / GiB:.2f} GiB "
              f"(limit 24 GiB: {'OK' if r['peak_rss_bytes'] < bench_scale.LIMIT else 'OVER'})")


if __name__ == "__main__":
    main()
