"""SASRec training-step time against a bare plain-torch step, and peak memory of CE against SCE.

    python benchmarks/bench_sequential.py [--quick] [--device cpu|cuda]

1. Step time: one optimisation step of the project's SASRec against a bare step in plain torch
   with the same shapes (``bench_steps.py``, which does every neural model); goal: at most 1.2.
2. Memory: peak memory of one forward+backward of full CE against SCE as the catalog grows, at
   batch 128, length 50, dimension 64 (CUDA: max_memory_allocated; CPU: the peak RSS of a fresh
   process per point above its RSS before the loss, so one point's allocations never hide
   another's). Full CE is first checked against the memory available by the library's own
   estimate (``recbench.nn.losses.full_ce_bytes``, ``recbench.memory.require``): a point that
   does not fit is refused with the GiB it needs, as training would refuse it.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks import bench_steps
from benchmarks._common import (MiB, current_rss_bytes, in_fresh_process, peak_rss_bytes,
                                reset_peak_rss)

CATALOGS = (4_000, 20_000, 50_000, 100_000, 200_000)
BATCH, LENGTH, DIM = 128, 50, 64
SCE = {"n_buckets": 256, "bucket_size_x": 256, "bucket_size_y": 256}


def memory_point(loss: str, n_items: int, batch: int = BATCH, length: int = LENGTH,
                 dim: int = DIM, device: str = "cpu") -> dict:
    """Peak bytes of one forward+backward of ``loss`` above what its inputs hold (run it in a
    fresh process: ``in_fresh_process(memory_point, ...)``)."""
    from recbench.nn.losses import full_ce, scalable_ce

    g = torch.Generator().manual_seed(0)
    # warm-up on tiny inputs: the first call faults in the kernels' code pages, not the loss's
    for fn in (full_ce, scalable_ce):
        w = torch.randn(8, dim, device=device, requires_grad=True)
        t = torch.randint(0, 8, (8,), device=device)
        (fn(w, w, t) if fn is full_ce else fn(w, w, t, generator=g, **SCE)).backward()
    n = batch * length
    states = torch.randn(n, dim, generator=g).to(device).requires_grad_()
    items = torch.randn(n_items, dim, generator=g).to(device).requires_grad_()
    targets = torch.randint(0, n_items, (n,), generator=g).to(device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset_peak_rss()
        base = current_rss_bytes()
    if loss == "ce":
        out = full_ce(states, items, targets)
    else:
        out = scalable_ce(states, items, targets, generator=g, **SCE)
    out.backward()
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = peak_rss_bytes() - base
    return {"loss": loss, "items": n_items, "positions": n, "peak_bytes": int(peak)}


def memory_sweep(catalogs=CATALOGS, batch: int = BATCH, length: int = LENGTH,
                 device: str = "cpu", log=print) -> list[dict]:
    """One row per catalog: CE's measured peak (or its refusal) and estimate, SCE's peak."""
    from recbench.errors import ResourceError
    from recbench.memory import available_bytes, require
    from recbench.nn.losses import full_ce_bytes

    rows = []
    for n_items in catalogs:
        est = full_ce_bytes(batch * length, n_items, DIM)
        row = {"items": n_items, "positions": batch * length, "device": device,
               "ce_estimate_bytes": est, "available_bytes": available_bytes(device)}
        try:
            require(est, f"full CE over {n_items:,} items for {batch * length:,} positions",
                    "use SCE", device=device)
            r = in_fresh_process(memory_point, loss="ce", n_items=n_items, batch=batch,
                                 length=length, device=device)
            row["ce_peak_bytes"] = r.get("peak_bytes")
            row["ce_error"] = r.get("error")
        except ResourceError as exc:
            row["ce_peak_bytes"], row["ce_refused"] = None, str(exc)
        r = in_fresh_process(memory_point, loss="sce", n_items=n_items, batch=batch,
                             length=length, device=device)
        row["sce_peak_bytes"], row["sce_error"] = r.get("peak_bytes"), r.get("error")
        ce = row["ce_peak_bytes"]
        log(f"  memory {n_items:>7,} items: CE "
            + (f"{ce / MiB:,.0f} MiB" if ce else f"refused (needs {est / MiB:,.0f} MiB)")
            + f" (estimate {est / MiB:,.0f} MiB), SCE "
            + (f"{row['sce_peak_bytes'] / MiB:,.0f} MiB" if row["sce_peak_bytes"] is not None
               else f"failed: {row['sce_error']}"))
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small shapes (for CI-sized machines)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    r = bench_steps.measure("SASRec", args.device, quick=args.quick, steps=5 if args.quick else 10)
    print(f"device={args.device} threads={torch.get_num_threads()} {r['shape']}")
    print(f"SASRec step: ours {r['ours_ms']:.1f} ms, bare {r['bare_ms']:.1f} ms, ratio "
          f"{r['ratio']:.2f} (goal <= {bench_steps.GOAL}: "
          f"{'OK' if r['ratio'] <= bench_steps.GOAL else 'MISSED'})")
    catalogs = (2_000, 10_000) if args.quick else CATALOGS
    batch, length = (32, 50) if args.quick else (BATCH, LENGTH)
    print(f"peak memory of one forward+backward, batch {batch} x length {length}, d={DIM}:")
    memory_sweep(catalogs, batch, length, args.device)


if __name__ == "__main__":
    main()
