"""Epochs on a synthetic log of Yambda-50M likes' size: seconds, and peak memory of the process.

    python benchmarks/bench_scale.py [--model SASRec CREATE ...] [--scale 1] [--device cpu|cuda]
                                     [--amp] [--steps N] [--log ml-1m] [--warmup]
    python benchmarks/bench_scale.py --model CREATE CREATE-catalog CREATE-LightGCN-catalog \
        CREATE-sequential --steps 3

The log has 8,283 users, 181,304 items and 881,456 interactions (Yambda-50M likes, the paper's
Table 1) with power-law item popularity; ``--scale k`` divides all three by k. Each model runs in
its own fresh process (``_common.in_fresh_process``), so each peak is that model's own: the whole
process, data, model, optimizer and all. The models take the paper's settings for this dataset
(config/paper.yaml: SCE, max_len 200, CREATE = SASRec + UltraGCN on all of each user's
interactions), CREATE without warm-up so that the epoch trains the whole model; ``--warmup``
times one of its warm-up epochs instead (the graph model's own pass over the edges).
``--log ml-1m``: MovieLens-1M's size (6,040 users, 3,706 items, 1,000,209 interactions, the
whole log: an upper bound of its training part) with its settings (full CE), the size the cost
of config/paper.yaml's CREATE search is estimated from. ``--log yambda-500m-likes``: the
Yambda-500M release's size (100,000 users, 3.0M items, 9.03M likes: ``YAMBDA_RELEASES``, the
counts ``check_release`` checks a download against) with config/yambda-scale.yaml's settings
(SASRec and CREATE = SASRec + LightGCN, both SCE), time a few ``--steps`` there. Every epoch
also records the library's estimate of the run (``memory_need``, the same the dry check
``python -m recbench.protocol.memory_check`` prints), its training-step part beside the peak
measured. ``VARIANTS`` are CREATE with other
readings of the paper (create_model/readings.py): catalogue-wide negatives for both graph
backbones (every item a user has not interacted with, ~181k per positive, in blocks), and the
sequential graph schedule (L_global on each batch's (user, next item) pairs, no edge pass).

Without ``--steps`` an epoch is a real one, through ``recbench.training.train`` (the memory check
included); with it, the first N steps are timed and extrapolated to the epoch's step count.
``ce_refusal`` shows what full CE would need at this size, checked as training checks it.
"""

from __future__ import annotations

import argparse
import time

import torch
import yaml

from benchmarks._common import ML_1M, ROOT, GiB, YAMBDA_50M_LIKES, in_fresh_process, synthetic_log
from recbench.data.sources import YAMBDA_RELEASES


def release_size(size: str, event: str = "likes") -> tuple[int, int, int]:
    """(users, items, interactions) of a Yambda release, as published (``YAMBDA_RELEASES``)."""
    r = YAMBDA_RELEASES[size]
    return r["users"][0], r["items"][0], r[event][0]


def scale_config_params() -> dict:
    """config/yambda-scale.yaml's model parameters (CREATE without its warm-up, so that the
    timed epoch trains the whole model)."""
    models = yaml.safe_load((ROOT / "config/yambda-scale.yaml").read_text())["models"]
    params = {name: dict((entry or {}).get("params") or {}) for name, entry in models.items()}
    params["CREATE"]["warmup_epochs"] = 0
    return params

#: config/paper.yaml's parameters for yambda-50m-likes (batch sizes: the models' defaults)
PAPER_PARAMS = {
    "SASRec": {"loss": "sce", "max_len": 200, "dim": 64, "batch_size": 128},
    "BERT4Rec": {"loss": "sce", "max_len": 200, "dim": 64, "batch_size": 128},
    "CREATE": {"sequential_backbone": "SASRec", "graph_backbone": "UltraGCN", "warmup_epochs": 0,
               "batch_size": 128, "sequential": {"loss": "sce", "max_len": 200, "dim": 64},
               "graph": {"graph_last_fraction": 1.0}},
    "LightGCN": {"dim": 64, "batch_size": 2048},
    "UltraGCN": {"dim": 128, "batch_size": 1024, "negative_num": 200},
}
#: CREATE with other readings: (base model, overrides of its PAPER_PARAMS)
VARIANTS = {
    "CREATE-catalog": ("CREATE", {"graph_negatives": "catalog"}),
    "CREATE-LightGCN": ("CREATE", {"graph_backbone": "LightGCN"}),
    "CREATE-LightGCN-catalog": ("CREATE", {"graph_backbone": "LightGCN",
                                           "graph_negatives": "catalog"}),
    "CREATE-sequential": ("CREATE", {"graph_schedule": "sequential"}),
    "CREATE-sequential-catalog": ("CREATE", {"graph_schedule": "sequential",
                                             "graph_negatives": "catalog"}),
}
MODELS = (*PAPER_PARAMS, *VARIANTS)
LIMIT = 24 * GiB  # the goal: a CREATE epoch within one 24 GiB machine
#: the logs measured on: their size, what config/paper.yaml sets there beside PAPER_PARAMS, and
#: whether a (user, item) pair occurs once only (MovieLens: one rating per movie)
LOGS = {
    "yambda-50m-likes": (YAMBDA_50M_LIKES, {}, False),
    "ml-1m": (ML_1M, {"SASRec": {"loss": "ce"},
                      "CREATE": {"sequential": {"loss": "ce", "max_len": 200, "dim": 64}}}, True),
    "yambda-500m-likes": (release_size("500m"), scale_config_params(), False),
}


def sizes(scale: int = 1, log: str = "yambda-50m-likes") -> tuple[int, int, int]:
    return tuple(max(s // scale, 1) for s in LOGS[log][0])


def epoch(model: str, scale: int = 1, device: str = "cpu", amp: bool = False,
          steps: int | None = None, params: dict | None = None,
          log: str = "yambda-50m-likes") -> dict:
    """Build ``model`` on the ``log``-size log and train one epoch (or ``steps`` steps)."""
    from recbench.models import build_model
    from recbench.training import train

    users, items, rows = sizes(scale, log)
    data = synthetic_log(users, items, rows, distinct=LOGS[log][2])
    base, variant = VARIANTS.get(model, (model, {}))
    params = {**PAPER_PARAMS[base], **LOGS[log][1].get(base, {}), **variant, **(params or {}),
              "progress": False, "epochs": 1, "amp": amp}
    torch.manual_seed(0)
    m = build_model(base, params, seed=0, device=device)
    t0 = time.perf_counter()
    m.build(data)
    build_s = time.perf_counter() - t0
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    gen = torch.Generator().manual_seed(0)
    n_steps = len(m.train_batches(1, gen))
    cpu0 = time.process_time()  # CPU seconds of every thread: less sensitive to a busy machine
    if steps is None:  # the real loop, one epoch
        result = train(m, m.params.train_config(), seed=0, device=device, name=model)
        epoch_s, done = result.history[0]["seconds"], n_steps
        loss = result.history[0]["train_loss"]
    else:  # the first `steps` steps, extrapolated (an epoch's steps are alike)
        m.to(device).train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        batches = m.train_batches(1, gen)[:steps]
        t0 = time.perf_counter()
        for b in batches:
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=cuda and amp):
                out = m.training_loss(b, gen)
            out = out["loss"] if isinstance(out, dict) else out  # CREATE: the terms beside it
            out.backward()
            opt.step()
        if cuda:
            torch.cuda.synchronize()
        done = len(batches)
        epoch_s = (time.perf_counter() - t0) / done * n_steps
        loss = float(out)
    cpu_s = (time.process_time() - cpu0) / done * n_steps
    estimate = run_estimate(m, data, device)
    out = {**estimate, "model": model, "device": device, "amp": bool(amp and cuda), "log": log,
           "users": users, "items": items, "interactions": rows, "params": params,
           "build_s": build_s, "epoch_s": epoch_s, "epoch_cpu_s": cpu_s,
           "threads": torch.get_num_threads(), "steps": n_steps, "timed_steps": done,
           "extrapolated": steps is not None, "train_loss": loss}
    if cuda:
        out["cuda_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def run_estimate(m, data, device: str = "cpu") -> dict:
    """The library's estimate of training ``m`` on ``data`` (``memory_need``: what the dry check
    prints and ``fit`` checks), and its parts without evaluation (held + a training step), the
    part a run of training steps can be measured against."""
    from recbench.memory import Sizes

    sizes = Sizes.of(data)
    need = type(m).memory_need(m.params, sizes, device=device, available=LIMIT)
    budget = type(m).memory_budget(m.params, sizes)
    step = sum(budget.held.values()) + sum(budget.phases.get("training step", {}).values())
    return {"estimate_bytes": need.nbytes, "estimate_step_bytes": step,
            "estimate_what": need.what, "estimate_fix": need.fix}


def ce_refusal(model: str = "CREATE", scale: int = 1, device: str = "cpu") -> dict:
    """The same model with ``loss: ce``: what full CE needs here, and whether training refuses
    it (the check ``recbench.training.train`` makes before its first step)."""
    from recbench.errors import ResourceError
    from recbench.memory import Sizes, available_bytes, require_need
    from recbench.models import build_model

    users, items, rows = sizes(scale)
    params = PAPER_PARAMS[model]
    params = ({**params, "sequential": {**params["sequential"], "loss": "ce"}} if model == "CREATE"
              else {**params, "loss": "ce"})
    m = build_model(model, {**params, "progress": False}, seed=0, device=device)
    data = synthetic_log(users, items, rows)
    m.build(data)
    m.data_sizes = Sizes.of(data)  # what ``fit`` records before it checks
    need = m.training_memory()
    t0 = time.perf_counter()
    try:
        require_need(need, device=device)
        refused, message = False, ""
    except ResourceError as exc:
        refused, message = True, str(exc)
    return {"model": model, "device": device, "items": items, "need_bytes": need.nbytes,
            "available_bytes": available_bytes(device), "refused": refused, "message": message,
            "check_s": time.perf_counter() - t0}


def run(models=("SASRec", "CREATE"), scale: int = 1, device: str = "cpu", amp: bool = False,
        steps: int | None = None, timeout: float | None = None, log=print,
        size: str = "yambda-50m-likes", params: dict | None = None) -> list[dict]:
    """``epoch`` of each model, each in a fresh process, on a log of ``size``'s size."""
    out = []
    for name in models:
        r = in_fresh_process(epoch, timeout=timeout, model=name, scale=scale, device=device,
                             amp=amp, steps=steps, log=size, params=(params or {}).get(name))
        r.setdefault("model", name)
        r.setdefault("device", device)
        if "error" in r:
            log(f"  {name} epoch at 1/{scale} of {size} size: failed: {r['error']}")
        else:
            log(f"  {name} epoch at 1/{scale} of {size} size ({device}): {r['epoch_s']:.1f} s, "
                f"peak RSS {r['peak_rss_bytes'] / GiB:.2f} GiB")
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=["SASRec", "CREATE"], choices=list(MODELS))
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", action="store_true", help="float16 autocast (CUDA only)")
    ap.add_argument("--steps", type=int, default=None, help="time N steps and extrapolate")
    ap.add_argument("--log", choices=list(LOGS), default="yambda-50m-likes", help="whose size")
    ap.add_argument("--warmup", action="store_true", help="CREATE: time a warm-up epoch")
    args = ap.parse_args()
    users, items, rows = sizes(args.scale, args.log)
    print(f"log: {users:,} users, {items:,} items, {rows:,} interactions; device={args.device} "
          f"threads={torch.get_num_threads()}")
    params = {"CREATE": {"warmup_epochs": 1}} if args.warmup else None
    for r in run(args.model, args.scale, args.device, args.amp, args.steps, log=lambda *_: None,
                 size=args.log, params=params):
        if "error" in r:
            print(f"{r['model']}: failed: {r['error']}")
            continue
        print(f"{r['model']}: build {r['build_s']:.1f} s, epoch {r['epoch_s']:.1f} s "
              f"({r['epoch_cpu_s']:.1f} CPU-s over {r['threads']} threads; {r['steps']} steps"
              f"{', extrapolated' if r['extrapolated'] else ''}), peak RSS "
              f"{r['peak_rss_bytes'] / GiB:.2f} GiB (limit 24 GiB: "
              f"{'OK' if r['peak_rss_bytes'] < LIMIT else 'OVER'})"
              + (f", GPU peak {r['cuda_peak_bytes'] / GiB:.2f} GiB" if "cuda_peak_bytes" in r else ""))


if __name__ == "__main__":
    main()
