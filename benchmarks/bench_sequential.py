"""SASRec training-step time against a bare plain-torch step, and peak memory of CE against SCE.

    python benchmarks/bench_sequential.py [--quick] [--device cpu|cuda]

1. Step time: one optimisation step of the project's SASRec (encoder + full CE through the
   shared training code path: ``SASRec.training_loss`` + AdamW) against a bare step written here
   in plain torch with the same shapes (embedding + positions, nn.TransformerEncoder, full CE),
   measured in the same run; the ratio is ours / bare (goal: at most 1.2).
2. Memory: peak memory of one forward+backward of full CE against SCE for catalogs of 20k, 100k
   and 200k items at batch 128, length 200, dimension 64 (CUDA: max_memory_allocated; CPU: peak
   RSS growth of a fresh subprocess per point, so one point's allocations never hide another's).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def bare_step_fn(n_items, dim, L, B, device):
    emb = nn.Embedding(n_items + 1, dim).to(device)
    pos = nn.Embedding(L, dim).to(device)
    layer = nn.TransformerEncoderLayer(dim, 2, dim, 0.2, activation="gelu", batch_first=True,
                                       norm_first=True)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(dim), enable_nested_tensor=False).to(device)
    params = list(emb.parameters()) + list(pos.parameters()) + list(enc.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    causal = torch.ones(L, L, dtype=torch.bool, device=device).triu(1)
    x = torch.randint(0, n_items, (B, L), device=device)
    y = torch.randint(0, n_items, (B * L,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        h = enc(emb(x) + pos.weight, mask=causal)  # [B, L, d]
        loss = F.cross_entropy(h.reshape(-1, dim) @ emb.weight[:n_items].T, y)
        loss.backward()
        opt.step()
    return step


def our_step_fn(n_items, dim, L, B, device):
    from recbench.data.dataset import Interactions
    from recbench.models import build_model

    users = np.repeat(np.arange(B), L + 1)
    items = np.random.default_rng(0).integers(0, n_items, len(users))
    train = Interactions(users, items, np.arange(len(users)), B, n_items)
    model = build_model("SASRec", {"dim": dim, "max_len": L, "batch_size": B, "progress": False},
                        device=device)
    model.build(train)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    idx = torch.arange(B)

    def step():
        opt.zero_grad(set_to_none=True)
        model.training_loss(idx, gen).backward()
        opt.step()
    return step


def time_steps(step, device, n):
    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


def memory_point(loss, n_items, B, L, dim, device):
    """Peak bytes of one forward+backward of the loss above what its inputs hold."""
    import threading

    import psutil

    from recbench.nn.losses import full_ce, scalable_ce

    g = torch.Generator().manual_seed(0)
    states = torch.randn(B * L, dim, generator=g).to(device).requires_grad_()
    items = torch.randn(n_items, dim, generator=g).to(device).requires_grad_()
    targets = torch.randint(0, n_items, (B * L,), generator=g).to(device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:  # sample the process's RSS every millisecond while the loss runs
        proc, peak, done = psutil.Process(), [0], threading.Event()
        base = proc.memory_info().rss

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                done.wait(0.001)
        sampler = threading.Thread(target=sample)
        sampler.start()
    if loss == "ce":
        out = full_ce(states, items, targets)
    else:
        out = scalable_ce(states, items, targets, n_buckets=256, bucket_size_x=256,
                          bucket_size_y=256, generator=g)
    out.backward()
    if cuda:
        return torch.cuda.max_memory_allocated() - base
    done.set()
    sampler.join()
    return max(peak[0], proc.memory_info().rss) - base


def ce_bytes_estimate(n_items, B, L):
    """Full CE holds the [B*L, C] logits, their softmax and its gradient: about 3 float32 copies."""
    return 3 * 4 * B * L * n_items


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small shapes (for CI-sized machines)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--memory-point", nargs=4, metavar=("LOSS", "ITEMS", "B", "L"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_point:
        loss, n, B, L = args.memory_point
        print(json.dumps(memory_point(loss, int(n), int(B), int(L), 64, args.device)))
        return

    n_items, dim, L, B, steps = (2000, 64, 50, 64, 5) if args.quick else (20000, 64, 200, 128, 10)
    torch.manual_seed(0)
    bare = time_steps(bare_step_fn(n_items, dim, L, B, args.device), args.device, steps)
    ours = time_steps(our_step_fn(n_items, dim, L, B, args.device), args.device, steps)
    print(f"device={args.device} threads={torch.get_num_threads()} items={n_items:,} B={B} L={L} d={dim}")
    print(f"SASRec step: ours {ours * 1e3:.1f} ms, bare {bare * 1e3:.1f} ms, ratio {ours / bare:.2f} "
          f"(goal <= 1.2: {'OK' if ours / bare <= 1.2 else 'MISSED'})")

    catalogs = (2000, 10000) if args.quick else (20_000, 100_000, 200_000)
    B, L = (32, 50) if args.quick else (128, 200)
    print(f"peak memory of one forward+backward, batch {B} x length {L}, d=64:")
    for n in catalogs:
        row = []
        for loss in ("ce", "sce"):
            if loss == "ce" and not args.device.startswith("cuda"):
                import psutil
                need, free = ce_bytes_estimate(n, B, L), psutil.virtual_memory().available
                if need > 0.8 * free:
                    row.append(f"ce: refused, needs ~{need / 2**30:,.0f} GiB of {free / 2**30:,.0f} GiB free")
                    continue
            proc = subprocess.run([sys.executable, __file__, "--device", args.device,
                                   "--memory-point", loss, str(n), str(B), str(L)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                row.append(f"{loss}: failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode})")
            else:
                row.append(f"{loss}: {int(proc.stdout) / 2**20:,.0f} MiB")
        print(f"  {n:>7,} items   " + "   ".join(row))


if __name__ == "__main__":
    main()
