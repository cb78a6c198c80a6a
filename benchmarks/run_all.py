"""Every benchmark of the project in one command, and one report: results/benchmarks.md.

    python benchmarks/run_all.py                  # everything but the default run
    python benchmarks/run_all.py --default-run    # also the default pipeline, cold
    python benchmarks/run_all.py --tiny --out /tmp/b/benchmarks.md   # small shapes, < 1 minute
    python benchmarks/run_all.py --only eval,steps                     # some sections, merged
    python benchmarks/run_all.py --render results/benchmarks/benchmarks.json   # re-render only

Every figure is a ratio against a bare reference measured in the same run on the same machine
(shared machines are noisy; absolute times alone mean little), next to the goal, PASS or FAIL and
the absolute numbers. Sections (each a module of benchmarks/ that also runs on its own):

1. eval (bench_eval.py): scoring + top-100 through ``recbench.evaluation.evaluate`` against a
   bare ``H @ E.T; topk`` on the same tensors, catalogs of 4k to 200k items (goal >= 0.5).
2. steps (bench_steps.py): one training step of SASRec, BERT4Rec, LightGCN, UltraGCN and CREATE
   against a bare plain-torch step of the same shapes (goal <= 1.2).
3. memory (bench_sequential.py, bench_scale.py): peak memory of full CE against SCE as the
   catalog grows, each point in a fresh process, CE checked first by the library's estimate; the
   estimate against the measurement; a CREATE epoch with SCE on a log of Yambda-50M likes' size
   in a fresh process (goal: peak RSS within 24 GiB), and what CE would need there (refused up
   front).
4. data (bench_data.py): prepare + split of a 10,000,000-row synthetic log against a bare polars
   read-sort-write of it, time and peak memory (goal: <= 10 s per million rows; prepare's memory
   estimate bounds its peak).
5. pipeline (bench_pipeline.py): ``snakemake -n`` of the paper's whole grid (every dataset,
   model, seed, tuning trial and ablation point) against a bare Snakefile of as many jobs.
6. default (``--default-run``): ``snakemake --cores 8 results/table2.md`` in a fresh clone, cold
   (goal: under 10 minutes on 2 CPU cores).
7. gpu: with CUDA, sections 1-3 again on the GPU, the Yambda-size SASRec and CREATE epochs with
   mixed precision; without, the report says there is no GPU.
8. checkpoint (bench_checkpoint.py): a default-run SASRec and CREATE epoch with a checkpoint
   after every epoch against one without, in a fresh process (goal <= 1.02), the checkpoint's
   size and one save's time.
9. batching (bench_batching.py): a SASRec and a CREATE epoch with ``batching: length`` against
   ``batching: random`` on synthetic logs shaped like ML-1M (max_len 200) and Amazon Beauty
   (max_len 50), a fixed number of steps of each timed and extrapolated (goal: length >= 1.6x
   faster on ML-1M's shape, >= 3x on Beauty's), and the positions the encoder computes per real
   position (goal <= 1.15).
10. yambda (bench_yambda_scale.py): prepare + split, out of core, of Yambda-shaped flat listens
   files of 10M, 100M and 500M rows (Zipf items), each in a fresh process: wall time, peak RSS,
   the disk the run needs (cleaned up after), a plot, and the peak's line extrapolated to
   Yambda-5B's 4.65B listens (goals: <= 6 GiB at 500M, <= 24 GiB extrapolated, <= 1 s per
   million rows).
11. training (bench_scale.py): an epoch at Yambda-500M likes' size (100,000 users, 3.0M items,
   9.03M interactions) of SASRec-SCE, CREATE-SCE (config/yambda-scale.yaml's settings) and
   LightGCN on the CPU, a few steps timed in a fresh process each and extrapolated to the epoch;
   the library's memory estimate (``memory_need``) of the run beside the peak measured (goal: the
   estimate of the held parts and a step bounds the measured peak). No GPU: the report says so.

Peaks are resident sets of fresh processes (VmHWM; see ``_common.peak_rss_bytes``). The report,
its plots (PNG, ``<out stem>/``) and the raw numbers (``<out stem>/benchmarks.json``) are written
atomically, after every section (a stopped run keeps what it measured). ``--only`` measures
some sections and merges them into the raw numbers already at ``<out stem>/benchmarks.json``
(of the same mode): the other sections keep their numbers, the header their run's machine, and
the report says when and where the merged sections were measured (``merge``). The exit status is
1 when a section failed to run (its error is in the report). ``REPORT`` says how each section is
rendered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from benchmarks._common import GiB, MiB, ROOT
from recbench.provenance import cpu_model, meminfo, usable_cores

SECTIONS = ("eval", "steps", "memory", "data", "pipeline", "default", "gpu", "checkpoint",
            "batching", "yambda", "training")

FULL = {
    "eval": {"catalogs": (4_000, 20_000, 50_000, 100_000, 200_000), "repeats": 3,
             "scores": 4 * 10**8, "min_users": 1024, "max_users": 10_000},
    "steps": {"quick": False, "steps": 3, "rounds": 3},
    "memory": {"catalogs": (4_000, 20_000, 50_000, 100_000, 200_000), "batch": 128, "length": 50},
    "scale": {"scale": 1, "models": ("CREATE",), "gpu_models": ("SASRec", "CREATE")},
    "data": {"rows": 10_000_000},
    "pipeline": {"tiny": False},
    "checkpoint": {"models": ("SASRec", "CREATE"), "epochs": 3, "rounds": 5},
    "batching": {"scale": 1, "steps": 6},
    "yambda": {"rows": (10_000_000, 100_000_000, 500_000_000)},
    "training": {"size": "yambda-500m-likes", "scale": 1, "steps": 3,
                 "models": ("SASRec", "CREATE", "LightGCN")},
}
TINY = {
    "eval": {"catalogs": (4_000, 20_000), "repeats": 1, "scores": 10**6, "min_users": 256,
             "max_users": 256},
    "steps": {"quick": True, "steps": 2, "rounds": 1},
    "memory": {"catalogs": (2_000, 8_000), "batch": 32, "length": 50},
    "scale": {"scale": 200, "models": ("CREATE",), "gpu_models": ("SASRec", "CREATE")},
    "data": {"rows": 200_000},
    "pipeline": {"tiny": True},
    "checkpoint": {"models": ("SASRec", "CREATE"), "epochs": 1, "rounds": 1},
    "batching": {"scale": 100, "steps": 1},
    "yambda": {"rows": (200_000, 1_000_000)},
    "training": {"size": "yambda-500m-likes", "scale": 1000, "steps": 1,
                 "models": ("SASRec", "CREATE", "LightGCN")},
}

EVAL_GOAL, STEP_GOAL, SCE_GOAL, SCE_GOAL_FROM = 0.5, 1.2, 0.1, 100_000
CHECKPOINT_GOAL = 1.02  # bench_checkpoint.GOAL: epoch with a checkpoint after it / without
LIMIT_BYTES = 24 * GiB


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------- measuring


def machine() -> dict:
    import torch

    mem = meminfo()
    try:
        git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        git = ""
    cuda = torch.cuda.is_available()
    return {
        "cpu": cpu_model(), "cores": usable_cores(), "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "ram_bytes": mem.get("MemTotal"), "available_bytes_at_start": mem.get("MemAvailable"),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "os": platform.platform(), "git": git or "unknown",
        "cuda": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda else None,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run_eval(cfg: dict, device: str = "cpu") -> list[dict]:
    from benchmarks import bench_eval

    return bench_eval.sweep(cfg["catalogs"], device=device, repeats=cfg["repeats"],
                            scores=cfg["scores"], max_users=cfg["max_users"],
                            min_users=cfg["min_users"], log=log)


def run_steps(cfg: dict, device: str = "cpu") -> list[dict]:
    from benchmarks import bench_steps

    return bench_steps.sweep(device=device, quick=cfg["quick"], steps=cfg["steps"],
                             rounds=cfg["rounds"], log=log)


def run_memory(cfg: dict, scale_cfg: dict, device: str = "cpu", amp: bool = False) -> dict:
    from benchmarks import bench_scale, bench_sequential
    from benchmarks._common import in_fresh_process

    sweep = bench_sequential.memory_sweep(cfg["catalogs"], cfg["batch"], cfg["length"], device,
                                          log=log)
    models = scale_cfg["gpu_models" if device.startswith("cuda") else "models"]
    epochs = bench_scale.run(models, scale_cfg["scale"], device, amp=amp, log=log)
    refusal = in_fresh_process(bench_scale.ce_refusal, model="CREATE", scale=scale_cfg["scale"],
                               device=device)
    log(f"  CREATE with loss: ce at this size: {'refused' if refusal.get('refused') else 'fits'}"
        + (f" ({refusal['error']})" if "error" in refusal else ""))
    return {"sweep": sweep, "batch": cfg["batch"], "length": cfg["length"], "epochs": epochs,
            "ce_refusal": refusal, "scale": scale_cfg["scale"],
            "sizes": bench_scale.sizes(scale_cfg["scale"])}


def run_data(cfg: dict) -> dict:
    from benchmarks import bench_data

    r = bench_data.measure(cfg["rows"])
    if "time_ratio" in r:
        log(f"  data {cfg['rows']:,} rows: {r['ours']['total_s']:.1f} s (bare "
            f"{r['bare']['total_s']:.1f} s), peak {r['ours']['peak_bytes'] / MiB:,.0f} MiB")
    return r


def run_pipeline(cfg: dict) -> dict:
    from benchmarks import bench_pipeline

    r = bench_pipeline.measure_dry_run(tiny=cfg["tiny"])
    log(f"  snakemake -n: {r['ours']['jobs']:,} jobs in {r['ours']['seconds']:.1f} s (bare "
        f"{r['bare']['seconds']:.1f} s)")
    return r


def run_default() -> dict:
    from benchmarks import bench_pipeline

    r = bench_pipeline.default_run()
    log(f"  default run, cold: {r['seconds']:.0f} s ({'ok' if r['ok'] else 'FAILED'})")
    return r


def run_gpu(conf: dict) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"available": False}
    out = {"available": True, "device": torch.cuda.get_device_name(0)}
    for name, fn in (("eval", lambda: run_eval(conf["eval"], "cuda")),
                     ("steps", lambda: run_steps(conf["steps"], "cuda")),
                     ("memory", lambda: run_memory(conf["memory"], conf["scale"], "cuda", True))):
        log(f"[gpu] {name}")
        out[name] = _guard(fn)
    return out


def run_checkpoint(cfg: dict) -> dict:
    from benchmarks import bench_checkpoint
    from benchmarks._common import in_fresh_process

    # a fresh process: the measurement sets torch's threads to a default-run job's one
    r = in_fresh_process(bench_checkpoint.run, models=cfg["models"], epochs=cfg["epochs"],
                         rounds=cfg["rounds"], every=1)
    if "error" in r:
        log(f"  checkpoint: failed: {r['error']}")
    else:
        for line in bench_checkpoint.report(r)[1:]:
            log(line)
    return r


def run_batching(cfg: dict) -> list[dict]:
    from benchmarks import bench_batching

    return bench_batching.sweep(steps=cfg["steps"], scale=cfg["scale"], log=log)


def run_yambda(cfg: dict) -> dict:
    from benchmarks import bench_yambda_scale

    return bench_yambda_scale.measure(cfg["rows"], log=log)


def run_training(cfg: dict) -> dict:
    import torch

    from benchmarks import bench_scale

    epochs = bench_scale.run(cfg["models"], cfg["scale"], "cpu", steps=cfg["steps"], log=log,
                             size=cfg["size"])
    return {"epochs": epochs, "size": cfg["size"], "scale": cfg["scale"],
            "sizes": bench_scale.sizes(cfg["scale"], cfg["size"]),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _guard(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}


def measure(conf: dict, sections, default_run: bool, on_section=None) -> dict:
    """Run the chosen sections; ``on_section(results)`` after each (the report so far)."""
    results = {"machine": machine(), "sections": {}}
    t0 = time.perf_counter()
    plan = {
        "eval": lambda: run_eval(conf["eval"]),
        "steps": lambda: run_steps(conf["steps"]),
        "memory": lambda: run_memory(conf["memory"], conf["scale"]),
        "data": lambda: run_data(conf["data"]),
        "pipeline": lambda: run_pipeline(conf["pipeline"]),
        "default": run_default,
        "gpu": lambda: run_gpu(conf),
        "checkpoint": lambda: run_checkpoint(conf["checkpoint"]),
        "batching": lambda: run_batching(conf["batching"]),
        "yambda": lambda: run_yambda(conf["yambda"]),
        "training": lambda: run_training(conf["training"]),
    }
    todo = [n for n in SECTIONS if n in sections and (n != "default" or default_run)]
    for i, name in enumerate(todo):
        log(f"[{name}]")
        s = time.perf_counter()
        results["sections"][name] = _guard(plan[name])
        log(f"[{name}] {time.perf_counter() - s:.0f} s")
        results["wall_s"] = time.perf_counter() - t0
        results["machine"]["load_average_at_end"] = (os.getloadavg() if hasattr(os, "getloadavg")
                                                     else None)
        results["unfinished"] = todo[i + 1:]
        if on_section is not None:
            on_section(results)
    results["wall_s"] = time.perf_counter() - t0
    results["unfinished"] = []
    return results


def merge(previous: dict | None, new: dict) -> dict:
    """The results of an ``--only`` run (``new``) merged into an earlier run's (``previous``, or
    None): its sections replace theirs, every other section, the machine, the date, the wall time
    and the mode stay the earlier run's, and ``merged`` records for each merged section where and
    when it was measured (shown under the report's header)."""
    if previous is None:
        return new
    m = new["machine"]
    stamp = {k: m.get(k) for k in ("date", "git", "cpu", "cores", "load_average_at_start",
                                   "load_average_at_end")}
    done = set(new["sections"])
    return {**previous, "sections": {**previous["sections"], **new["sections"]},
            "merged": {**previous.get("merged", {}), **{name: stamp for name in done}},
            "unfinished": [n for n in SECTIONS if n in new.get("unfinished", []) or (
                n in previous.get("unfinished", []) and n not in done)],
            "default_run": bool(previous.get("default_run") or new.get("default_run"))}


def previous_results(path: Path, tiny: bool) -> dict | None:
    """The raw numbers an ``--only`` run merges into: ``path`` when it holds a run of the same
    mode (tiny or full), else None (the run starts a new report)."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or "sections" not in results or "machine" not in results:
        return None
    if bool(results.get("tiny")) != tiny:
        log(f"{path} holds a {'tiny' if results.get('tiny') else 'full'} run: not merging into it")
        return None
    return results


# ----------------------------------------------------------------------------- rendering


def _fmt(x, spec=".2f", none="—"):
    return none if x is None else format(x, spec)


def _mib(b):
    return "—" if b is None else f"{b / MiB:,.0f}"


def _gib(b):
    return "—" if b is None else f"{b / GiB:,.2f}"


def _status(ok) -> str:
    return "info" if ok is None else ("PASS" if ok else "FAIL")


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _error(section) -> str | None:
    """The error of a section or row: "error", or any "*_error" key that is set."""
    if not isinstance(section, dict):
        return None
    return section.get("error") or next(
        (f"{k}: {v}" for k, v in section.items() if k.endswith("_error") and v), None)


def eval_rows(rows):
    return [[f"{r['items']:,}", f"{r['users']:,}", f"{r['bare_per_s']:,.0f}",
             f"{r['ours_per_s']:,.0f}", f"{r['ratio']:.2f}", f">= {EVAL_GOAL}",
             _status(r["ratio"] >= EVAL_GOAL)] for r in rows]


EVAL_HEADER = ["catalog (items)", "histories", "bare (histories/s)", "recbench (histories/s)",
               "ratio", "goal", "status"]


def steps_rows(rows):
    out = []
    for r in rows:
        # sorted: the live run and benchmarks.json (written with sorted keys) render alike
        shape = ", ".join(f"{k} {v:,}" for k, v in sorted(r["shape"].items()))
        out.append([r["model"], shape, f"{r['bare_ms']:.1f}", f"{r['ours_ms']:.1f}",
                    f"{r['ratio']:.2f}", f"<= {STEP_GOAL}", _status(r["ratio"] <= STEP_GOAL)])
    return out


STEPS_HEADER = ["model", "shapes", "bare (ms/step)", "recbench (ms/step)", "ratio", "goal",
                "status"]


def memory_rows(sweep):
    out = []
    for r in sweep:
        ce, sce, est = r.get("ce_peak_bytes"), r.get("sce_peak_bytes"), r["ce_estimate_bytes"]
        if ce is not None:
            ce_cell, ref = _mib(ce), ce
        elif r.get("ce_refused"):
            ce_cell, ref = f"refused up front (needs {_gib(est)} GiB)", est
        else:
            ce_cell, ref = f"failed: {r.get('ce_error')}", est
        ratio = sce / ref if sce is not None and ref else None
        big = r["items"] >= SCE_GOAL_FROM
        out.append([f"{r['items']:,}", f"{r['positions']:,}", ce_cell, _mib(est),
                    _fmt(ce / est if ce is not None else None), _mib(sce),
                    _fmt(ratio, ".3f"), f"<= {SCE_GOAL}" if big else "—",
                    _status(ratio <= SCE_GOAL if big and ratio is not None else None)])
    return out


MEMORY_HEADER = ["catalog (items)", "positions", "CE peak (MiB)", "CE estimate (MiB)",
                 "CE measured / estimate", "SCE peak (MiB)", "ratio SCE / CE", "goal", "status"]


def epoch_rows(epochs):
    out = []
    for r in epochs:
        if "error" in r:
            out.append([r.get("model", "?"), "—", "—", "—", "—", "—", f"failed: {r['error']}",
                        "—", "FAIL"])
            continue
        peak = r["peak_rss_bytes"]
        gpu = f", GPU peak {_gib(r['cuda_peak_bytes'])} GiB" if "cuda_peak_bytes" in r else ""
        out.append([r["model"], r["device"] + (" + amp" if r.get("amp") else ""),
                    f"{r['steps']:,}", f"{r['epoch_s']:.1f}", f"{r['build_s']:.1f}",
                    f"{_gib(peak)}{gpu}", f"{peak / LIMIT_BYTES:.2f}", "<= 1 (24 GiB)",
                    _status(peak <= LIMIT_BYTES)])
    return out


EPOCH_HEADER = ["model", "device", "steps", "epoch (s)", "build (s)", "peak RSS (GiB)",
                "ratio to 24 GiB", "goal", "status"]


def _threads(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


def _fmt_load(load):
    return "—" if not load else ", ".join(f"{x:.1f}" for x in load)


def _rows(sec):
    return f"{sec['rows']:,}-row" if isinstance(sec, dict) and "rows" in sec else "large"


# Each section's renderer: (its results, the plots' folder) -> (body lines, summary rows), called
# only when the section ran without an error; a summary row is [section, headline, ratio, goal,
# status].


def _eval(sec: list, plots: Path):
    worst = min(sec, key=lambda r: r["ratio"])
    lines = [f"Histories per second through `recbench.evaluation.evaluate` (a SASRec-like "
             "head's `score`, deterministic top-100 with tie repair, target ranks, coverage) "
             "against a bare `torch.topk(H @ E.T, 100)` on the same tensors; d = 64, batches "
             f"of 1,024, {_threads(sec[0]['threads'])}. Ratio = recbench / bare throughput.",
             "", f"![evaluation]({plots.name}/eval.png)", "", *table(EVAL_HEADER, eval_rows(sec))]
    return lines, [["1. evaluation", f"worst of {len(sec)} catalogs ({worst['items']:,} items)",
                    f"{worst['ratio']:.2f}", f">= {EVAL_GOAL}",
                    _status(worst["ratio"] >= EVAL_GOAL)]]


def _steps(sec: list, plots: Path):
    worst = max(sec, key=lambda r: r["ratio"])
    lines = ["One AdamW step of the project's model (its `training_loss`, the path of "
             "`recbench.training.train`) against a step written in plain torch with the same "
             "tensor shapes (`benchmarks/bench_steps.py` says what each bare step does); best "
             "of the rounds, the two taking turns. Ratio = recbench / bare time.", "",
             f"![training steps]({plots.name}/steps.png)", "",
             *table(STEPS_HEADER, steps_rows(sec))]
    return lines, [["2. training steps", f"worst of {len(sec)} models ({worst['model']})",
                    f"{worst['ratio']:.2f}", f"<= {STEP_GOAL}",
                    _status(worst["ratio"] <= STEP_GOAL)]]


def _memory(sec: dict, plots: Path, plot_name: str = "memory", label: str = "3."):
    users, items, rows = sec["sizes"]
    sweep = sec["sweep"]
    device = sweep[0]["device"] if sweep else "cpu"
    summary = []
    body = [f"Peak memory of one forward + backward of the loss over {sec['batch']} x "
            f"{sec['length']} positions, d = 64, each point in a fresh process "
            + ("(`torch.cuda.max_memory_allocated`)" if device.startswith("cuda") else
               "(resident set above what the inputs hold)")
            + ". Full CE is first checked by the library's estimate (`recbench.nn.losses."
            "full_ce_bytes`, the check training makes): a point that does not fit is refused up "
            "front and plotted at its estimate. SCE: 256 buckets of 256 x 256. Ratio = SCE / CE "
            "(CE's estimate where refused).", "",
            f"![CE against SCE]({plots.name}/{plot_name}.png)", ""]
    body += table(MEMORY_HEADER, memory_rows(sweep))
    big = [r for r in sweep if r["items"] >= SCE_GOAL_FROM and r.get("sce_peak_bytes")]
    if big:
        r = big[-1]
        ref = r.get("ce_peak_bytes") or r["ce_estimate_bytes"]
        ratio = r["sce_peak_bytes"] / ref
        summary.append([f"{label} memory, CE vs SCE", f"{r['items']:,} items: SCE "
                        f"{_mib(r['sce_peak_bytes'])} MiB, CE {_mib(ref)} MiB", f"{ratio:.3f}",
                        f"<= {SCE_GOAL}", _status(ratio <= SCE_GOAL)])
    measured = [r["ce_peak_bytes"] / r["ce_estimate_bytes"] for r in sweep
                if r.get("ce_peak_bytes")]
    if measured:
        summary.append([f"{label} memory, CE estimate", "worst measured / estimated CE peak",
                        f"{max(measured):.2f}", "<= 1", _status(max(measured) <= 1)])
    part = "" if sec["scale"] == 1 else f"; 1/{sec['scale']} of it"
    body += [f"### Epochs on a log of Yambda-50M likes' size ({users:,} users, {items:,} items, "
             f"{rows:,} interactions{part})",
             "", "The paper's settings for this dataset (`config/paper.yaml`: SCE, max_len 200; "
             "CREATE = SASRec + UltraGCN on each user's last 200 items, Barlow Twins, here without "
             "warm-up so the epoch trains the whole model), one real epoch through "
             "`recbench.training.train` in a fresh process. Peak RSS: the whole process (data, "
             "model, optimizer). Ratio = peak / 24 GiB.", ""]
    body += table(EPOCH_HEADER, epoch_rows(sec["epochs"]))
    for r in sec["epochs"]:
        if r.get("model") == "CREATE":
            ok = "error" not in r and r["peak_rss_bytes"] <= LIMIT_BYTES
            summary.append([f"{label} CREATE epoch, SCE", "failed" if "error" in r else
                            f"{r['epoch_s']:.0f} s, peak {_gib(r['peak_rss_bytes'])} GiB",
                            "—" if "error" in r else f"{r['peak_rss_bytes'] / LIMIT_BYTES:.2f}",
                            "<= 1 (24 GiB)", _status(ok)])
    ref = sec["ce_refusal"]
    if "error" in ref:
        body += [f"CREATE with `loss: ce` at this size: the check failed to run: {ref['error']}",
                 ""]
    else:
        body += [f"The same CREATE with `sequential: {{loss: ce}}` needs "
                 f"{_gib(ref['need_bytes'])} GiB for full CE ({_gib(ref['available_bytes'])} GiB "
                 f"available on {ref['device']}): "
                 + (f"refused before training, in {ref['check_s'] * 1e3:.1f} ms, with: "
                    f"\"{ref['message']}\"" if ref["refused"] else "it would fit here.") + "", ""]
    return body, summary


def _data_error(sec) -> str | None:
    """Its error, or its measured paths' (then it has no ratios)."""
    if _error(sec) or "time_ratio" not in sec:
        return (_error(sec) or sec["ours"].get("error") or sec["bare"].get("error")
                or "no time_ratio in its results")
    return None


def _data(sec: dict, plots: Path):
    o, b = sec["ours"], sec["bare"]
    per_m = o["total_s"] / (sec["rows"] / 1e6)
    body = [f"A download-free log of {sec['rows']:,} rows ({sec['users']:,} users, "
            f"{sec['items']:,} items, power-law popularity; parquet "
            f"{sec['file_bytes'] / MiB:,.0f} MiB) parsed as a custom dataset (`prepare`, "
            "with its memory check), saved, split by the global temporal split, indexed and "
            "saved, in a fresh process; the bare reference reads the same file with polars, "
            "sorts it by time and writes it, in another. Peaks are each process's resident "
            "set above what it held before the work.", ""]
    body += table(["", "recbench", "bare read-sort-write", "ratio", "goal", "status"], [
        ["seconds", f"{o['total_s']:.2f} (prepare {o['prepare_s']:.2f}, split + index + "
                    f"save {o['split_s']:.2f})", f"{b['total_s']:.2f}",
         f"{sec['time_ratio']:.2f}", "—", "info"],
        ["seconds per million rows", f"{per_m:.2f}", "—", f"{per_m / 10:.2f}",
         "<= 10 s", _status(per_m <= 10)],
        ["peak memory (MiB)", f"{_mib(o['peak_bytes'])} ({o['peak_bytes'] / sec['rows']:.0f} "
                              "bytes per row)", _mib(b["peak_bytes"]),
         f"{sec['memory_ratio']:.2f}", "—", "info"],
        ["prepare's peak / its up-front estimate", f"{_mib(o['prepare_peak_bytes'])} / "
         f"{_mib(o['parse_estimate_bytes'])} MiB", "—", f"{sec['estimate_ratio']:.2f}",
         "<= 1", _status(sec["estimate_ratio"] <= 1)],
    ])
    if sec["rows"] >= 1_000_000:  # below, fixed costs dominate the bytes per row
        body += [f"At this many bytes per row a Yambda-500M-class log (500,000,000 rows) "
                 f"would peak near {sec['extrapolated_500m_bytes'] / GiB:,.0f} GiB in "
                 "prepare + split."]
    body += ["`prepare` refuses a file whose parsing alone does not fit, before reading it, "
             "with the GiB it needs.", ""]
    return body, [["4. data", f"{sec['rows']:,} rows: {o['total_s']:.1f} s, peak "
                   f"{_mib(o['peak_bytes'])} MiB", f"{per_m / 10:.2f}", "<= 1 (10 s per M rows)",
                   _status(per_m <= 10 and sec["estimate_ratio"] <= 1)]]


def _pipeline(sec: dict, plots: Path):
    o, b = sec["ours"], sec["bare"]
    body = [f"`snakemake -n {' '.join(sec['targets'])} --configfile {sec['configfile']}` in "
            "a throw-away copy of the working tree (nothing written here), against a dry run "
            "of a bare Snakefile of as many trivial jobs (Snakemake's own cost). Ratio = "
            "ours / bare time.", ""]
    body += table(["", "jobs planned", "seconds", "ratio"], [
        ["paper grid" if sec["configfile"].endswith("paper.yaml") else "default Table 2",
         f"{o['jobs']:,}", f"{o['seconds']:.1f}", f"{sec['ratio']:.2f}"],
        ["bare Snakefile", f"{b['jobs']:,}", f"{b['seconds']:.1f}", "1.00"],
    ])
    body += ["Jobs per rule: " + ", ".join(f"{k} {v:,}" for k, v in o["job_counts"].items()
                                          if k != "total") + ".", ""]
    return body, [["5. pipeline", f"{o['jobs']:,} jobs planned in {o['seconds']:.1f} s",
                   f"{sec['ratio']:.2f}", "—", "info"]]


def _default(sec: dict, plots: Path):
    status = _status(sec["ok"] and sec["seconds"] <= sec["goal_s"])
    body = [f"`{sec['command']}` in a fresh `git clone` of commit {sec['commit'][:10]}, its "
            "committed results removed (no data, no results, no .snakemake), "
            f"{sec['cores']} cores. Ratio = seconds / 600.", ""]
    body += table(["command", "jobs", "seconds", "ratio", "goal", "status"], [
        [f"`{sec['command']}`", _fmt(sec.get("jobs"), ","), f"{sec['seconds']:.0f}",
         f"{sec['ratio']:.2f}", "<= 1 (600 s)",
         status + ("" if sec["ok"] else f" (failed: {sec['tail']})")]])
    return body, [["6. default run", f"{sec['seconds']:.0f} s on {sec['cores']} cores",
                   f"{sec['ratio']:.2f}", "<= 1 (600 s)", status]]


CHECKPOINT_HEADER = ["model", "epoch (s)", "epoch + checkpoint (s)", "ratio", "goal", "status",
                     "checkpoint (MiB)", "one save (ms)"]
#: n: (every n-th epoch, the share of the every-epoch cost), in words
_NTH = {2: ("second", "a half"), 3: ("third", "a third"), 4: ("fourth", "a quarter"),
        5: ("fifth", "a fifth"), 10: ("tenth", "a tenth")}


def _checkpoint(sec: dict, plots: Path):
    rows, every, default = sec["models"], sec["every"], sec["default_every"]
    worst = max(rows, key=lambda r: r["ratio"])
    after = "every epoch" if every == 1 else f"every {every} epochs"
    what = (f"An epoch of a default-run final fit (`config/config.yaml`'s models with their "
            "configured parameters, on the embedded dataset, "
            f"{_threads(sec['threads'])} as a default-run job has, no validation) without "
            "checkpoints and with one (`recbench.checkpoints`: model, optimizer, random states, "
            f"written atomically) after {after}; fits of {sec['epochs']} epochs (CREATE: its "
            "warm-up epochs and then these), the two taking turns, in a fresh process, best of "
            f"{sec['rounds']} rounds. Ratio = with / without. One save: that checkpoint saved "
            "alone, best of the rounds.")
    body = [what, ""]
    body += table(CHECKPOINT_HEADER, [
        [r["model"], f"{r['epoch_s']:.3f}", f"{r['epoch_checkpointed_s']:.3f}",
         f"{r['ratio']:.3f}", f"<= {CHECKPOINT_GOAL}", _status(r["ratio"] <= CHECKPOINT_GOAL),
         f"{r['checkpoint_MiB']:.1f}", f"{r['save_s'] * 1e3:.0f}"] for r in rows])
    if any(r["ratio"] < 1 for r in rows):
        body += ["A ratio below 1 is this machine's noise (a fit with checkpoints does strictly "
                 "more work): the two fits' times differ by less than its jitter; one save's "
                 "time is what a checkpoint adds.", ""]
    if not default:
        body += [f"The config's `checkpoint_every: {default}` writes them on SIGTERM only.", ""]
    elif default != every:
        nth, part = _NTH.get(default, (f"{default}th", f"1/{default}"))
        per, label = every / default, "every-epoch" if every == 1 else f"every-{every}-epochs"
        body += [f"The default `checkpoint_every: {default}` writes one every {nth} epoch, so its "
                 f"overhead is {part} of the {label} figure: "
                 + ", ".join(f"{r['model']} {(r['ratio'] - 1) * per:+.1%}" for r in rows)
                 + f" of an epoch (one save over {default} epochs: "
                 + ", ".join(f"{r['model']} {r['save_s'] / (default * r['epoch_s']):.1%}"
                             for r in rows) + ").", ""]
    headline = f"worst of {len(rows)} models ({worst['model']}), a checkpoint after {after}"
    return body, [["8. checkpoints", headline, f"{worst['ratio']:.3f}",
                   f"<= {CHECKPOINT_GOAL}", _status(worst["ratio"] <= CHECKPOINT_GOAL)]]


def _gpu_eval(part: list, plots: Path):
    worst = min(part, key=lambda r: r["ratio"])
    return ([f"![evaluation on the GPU]({plots.name}/eval_cuda.png)", "",
             *table(EVAL_HEADER, eval_rows(part))],
            [["7. GPU evaluation", f"worst ({worst['items']:,} items)", f"{worst['ratio']:.2f}",
              f">= {EVAL_GOAL}", _status(worst["ratio"] >= EVAL_GOAL)]])


def _gpu_steps(part: list, plots: Path):
    worst = max(part, key=lambda r: r["ratio"])
    return ([f"![training steps on the GPU]({plots.name}/steps_cuda.png)", "",
             *table(STEPS_HEADER, steps_rows(part))],
            [["7. GPU training steps", f"worst ({worst['model']})", f"{worst['ratio']:.2f}",
              f"<= {STEP_GOAL}", _status(worst["ratio"] <= STEP_GOAL)]])


#: the GPU section's parts: key in its results, heading, renderer
GPU_PARTS = (("eval", "Evaluation", _gpu_eval), ("steps", "Training steps", _gpu_steps),
             ("memory", "Memory",
              lambda part, plots: _memory(part, plots, "memory_cuda", "7. GPU")))


def _gpu(sec: dict, plots: Path):
    if not sec.get("available"):
        return (["No GPU on this machine (`torch.cuda.is_available()` is False): sections 1-3 "
                 "ran on the CPU only. On a machine with CUDA the same command repeats them on "
                 "the GPU, the Yambda-size SASRec and CREATE epochs with mixed precision.", ""],
                [["7. GPU", "no GPU on this machine", "—", "—", "not run"]])
    body, summary = [f"{sec['device']}: sections 1-3 on the GPU; the Yambda-size epochs with "
                     "mixed precision (float16 autocast).", ""], []
    for i, (key, title, render_part) in enumerate(GPU_PARTS, start=1):
        part = sec.get(key)
        body += [f"### 7.{i} {title} (cuda)", ""]
        if part is None or _error(part):
            body += [f"Failed: {_error(part)}", ""]
            continue
        lines, rows = render_part(part, plots)
        body, summary = body + lines, summary + rows
    return body, summary


BATCHING_HEADER = ["shape", "model", "steps (random / length)", "random epoch (CPU-s)",
                   "length epoch (CPU-s)", "speedup (wall)", "full CE alone (CPU-s)",
                   "speedup bound", "positions computed / real (random -> length)", "goal",
                   "status"]


def _batching(sec: list, plots: Path):
    from benchmarks.bench_batching import POSITIONS_GOAL, SHAPES

    rows, summary = [], []
    for r in sec:
        if "error" in r:
            rows.append([r["shape"], r["model"], *["—"] * 8, f"failed: {r['error']}"])
            continue
        a, b = r["random"], r["length"]
        ok = r["speedup"] >= r["goal"] and b["positions_ratio"] <= POSITIONS_GOAL
        rows.append([r["shape"], r["model"], f"{a['steps']} / {b['steps']}",
                     f"{a['epoch_cpu_s']:.1f}", f"{b['epoch_cpu_s']:.1f}",
                     f"{r['speedup']:.2f} ({r['speedup_wall']:.2f})",
                     *(f"{r[k]:{f}}" if k in r else "—"  # not in records before the CE timing
                       for k, f in (("ce_epoch_cpu_s", ".1f"), ("speedup_bound", ".2f"))),
                     f"{a['positions_ratio']:.2f} -> {b['positions_ratio']:.3f}",
                     f">= {r['goal']}x, <= {POSITIONS_GOAL}", _status(ok)])
    done = [r for r in sec if "error" not in r]
    for shape in SHAPES:
        part = [r for r in done if r["shape"] == shape]
        if part:
            worst = min(part, key=lambda r: r["speedup"])
            summary.append([f"9. batching, {shape}", f"worst of {len(part)} models "
                            f"({worst['model']}): speedup, random epoch / length",
                            f"{worst['speedup']:.2f}", f">= {worst['goal']}",
                            _status(worst["speedup"] >= worst["goal"])])
    if done:
        worst = max(done, key=lambda r: r["length"]["positions_ratio"])
        summary.append(["9. batching, positions", "worst computed / real with length "
                        f"({worst['shape']}, {worst['model']})",
                        f"{worst['length']['positions_ratio']:.3f}", f"<= {POSITIONS_GOAL}",
                        _status(worst["length"]["positions_ratio"] <= POSITIONS_GOAL)])
    r0 = done[0] if done else {}
    scale = r0.get("scale", 1)
    lines = ["One epoch of SASRec and of CREATE (config/paper.yaml's settings: full CE, CREATE = "
             "SASRec + UltraGCN, Barlow Twins on every position, a joint epoch) with `batching: "
             "random` against `batching: length`, on synthetic logs with log-normal lengths "
             "shaped like ML-1M (" + ", ".join(
                 f"{k}: {v['users'] // scale:,} users, median {v['median']} events, max_len "
                 f"{v['max_len']}" for k, v in SHAPES.items()) + "; `benchmarks/bench_batching."
             "py`). A full ML-1M epoch takes minutes on a shared CPU, so "
             f"{r0.get('timed_steps', '?')} steps of each batching, spread evenly over the "
             "epoch's batches by width, are timed (taking turns, one thread, CPU seconds) and "
             "extrapolated to the epoch's step count. Speedup = random / length epoch time; "
             "positions computed / real over the whole epoch (each batch's rows times its "
             "longest window, against its real input positions). Full CE alone: a bare "
             "full-catalog CE forward and backward over each timed batch's targets (the same "
             "work under both batchings), taking turns with the steps; speedup bound = random "
             "epoch / full CE alone, the speedup of any batching were the encoder free.", "",
             *table(BATCHING_HEADER, rows)]
    return lines, summary


def _yambda(sec: dict, plots: Path):
    from benchmarks import bench_yambda_scale as b

    pts = sec["points"]
    ok = [p for p in pts if "error" not in p]
    if ok:
        b.plot(sec, plots / "yambda_scale.png")
    body = ["Yambda-shaped flat listens files (uid, timestamp, item_id, is_organic, "
            "played_ratio_pct; users and items in the 500M release's proportions, Zipf item "
            "popularity, rows in random order) prepared (`prepare_to`: streamed, duplicates "
            "counted in user buckets) and split (`split_to_folder`: the global temporal split in "
            "buckets of whole users, exact quantiles by histograms) in a fresh process each, "
            "every listen counting (`min_played_ratio: null`, the most work). Peak: the whole "
            "process's resident set. Disk: the work folder (raw file, prepared log, buckets, "
            "split) at its largest, sampled every second; deleted after each size.", ""]
    body += table(["rows", "users", "items", "raw file (GiB)", "prepare (s)", "split (s)",
                   "s per M rows", "peak RSS (GiB)", "disk (GiB)", "cleaned up"], [
        [f"{p['rows']:,}", f"{p['users']:,}", f"{p['items']:,}", _gib(p["file_bytes"]),
         *(["failed: " + p["error"], "—", "—", "—", "—", "—"] if "error" in p else
           [f"{p['prepare_s']:.0f}", f"{p['split_s']:.0f}", f"{p['seconds_per_million']:.2f}",
            _gib(p["peak_rss_bytes"]), _gib(p["disk_peak_bytes"]),
            "yes" if p["cleaned_up"] else "no"])] for p in pts])
    ext, p500 = sec.get("extrapolated_peak_bytes"), sec.get("peak_500m_bytes")
    worst = max((p["seconds_per_million"] for p in ok), default=None)
    if ext is not None:
        body += ["", f"The least-squares line through the measured peaks gives "
                 f"{_gib(ext)} GiB at {sec['extrapolated_rows']:,} rows (Yambda-5B listens): "
                 "an extrapolation, not a measurement."]
    if ok:
        body += ["", f"![prepare + split at scale]({plots.name}/yambda_scale.png)"]
    body += [""]
    rows = [["10. yambda, seconds", f"worst {worst:.2f} s per M rows" if worst is not None
             else "—", f"{worst:.2f}" if worst is not None else "—", "<= 1 (s per M rows)",
             _status(worst is not None and worst <= b.SECONDS_PER_MILLION)],
            ["10. yambda, 500M peak", f"{_gib(p500)} GiB" if p500 else "500M not measured",
             f"{p500 / b.PEAK_GOAL_500M:.2f}" if p500 else "—", "<= 1 (6 GiB)",
             _status(p500 <= b.PEAK_GOAL_500M) if p500 else "not run"],
            ["10. yambda, 4.65B extrapolated", f"{_gib(ext)} GiB" if ext is not None else "—",
             f"{ext / b.PEAK_GOAL_5B:.2f}" if ext is not None else "—", "<= 1 (24 GiB)",
             _status(ext <= b.PEAK_GOAL_5B) if ext is not None else "not run"]]
    return body, rows


def _yambda_error(sec) -> str | None:
    if _error(sec):
        return _error(sec)
    points = sec.get("points") or []
    if points and all("error" in p for p in points):  # else the table shows the failed sizes
        return f"{points[0]['rows']:,} rows: {points[0]['error']}"
    return None if points else "no sizes measured"


def _hours(seconds: float) -> str:
    return f"{seconds:,.0f} s ({seconds / 3600:.1f} h)"


def _training(sec: dict, plots: Path):
    users, items, rows = sec["sizes"]
    part = "" if sec["scale"] == 1 else f", 1/{sec['scale']} of it"
    body = [f"One epoch on the CPU at {sec['size']}'s size ({users:,} users, {items:,} items, "
            f"{rows:,} interactions{part}; a synthetic log with power-law item popularity), "
            "each model in a fresh process with config/yambda-scale.yaml's settings (SASRec and "
            "CREATE = SASRec + LightGCN, SCE; LightGCN: its defaults); the first steps timed and "
            "extrapolated to the epoch's steps (`benchmarks/bench_scale.py --log "
            f"{sec['size']} --steps N`). Estimate: the library's (`memory_need`, what "
            "`python -m recbench.protocol.memory_check` prints and `fit` checks), held parts + "
            "a training step against the measured peak RSS (the timed steps never evaluate), "
            "and the whole run's with its evaluation batch.", ""]
    out, worst = [], None
    for r in sec["epochs"]:
        if "error" in r:
            out.append([r.get("model", "?"), *["—"] * 9, f"failed: {r['error']}", "FAIL",
                        "—"])
            continue
        used = r["peak_rss_bytes"] - r.get("base_rss_bytes", 0)
        ratio = used / r["estimate_step_bytes"]
        judged = r["estimate_step_bytes"] >= GiB  # below, allocator and library overheads rule
        if judged:
            worst = ratio if worst is None else max(worst, ratio)
        out.append([r["model"], f"{r['steps']:,}", f"{r['timed_steps']}",
                    f"{r['epoch_s'] / r['steps']:.1f}", _hours(r["epoch_s"]),
                    f"{r['build_s']:.0f}", _threads(r["threads"]), _gib(r["peak_rss_bytes"]),
                    _gib(used), _gib(r["estimate_step_bytes"]), f"{ratio:.2f}",
                    _status(ratio <= 1) if judged else "info", _gib(r["estimate_bytes"])])
    body += table(["model", "steps / epoch", "timed", "s / step", "epoch (extrapolated)",
                   "build (s)", "threads", "peak RSS (GiB)", "above imports (GiB)",
                   "estimate: held + step (GiB)", "ratio above imports / estimate", "status",
                   "estimate: whole run (GiB)"], out)
    body += ["", "GPU: " + (f"{sec['gpu']}, not timed in this section." if sec.get("gpu") else
                            "none lent to this run, so no GPU epoch was timed.")]
    slowest = max((r for r in sec["epochs"] if "error" not in r), key=lambda r: r["epoch_s"],
                  default=None)
    rows_ = [["11. training, 500M-likes epoch (CPU)",
              f"slowest {slowest['model']} {_hours(slowest['epoch_s'])}" if slowest else "—",
              _fmt(worst), "<= 1 (estimate bounds peak)",
              _status(worst <= 1) if worst is not None else "info"]]
    return body, rows_


class Section(NamedTuple):
    """How the report shows one section of the results."""

    label: str  # its row in the summary
    heading: str | Callable[[object], str]  # or a function of its results
    render: Callable  # (results, plots folder) -> (body lines, summary rows), when it ran
    goal: str = "—"  # the summary's goal when it failed
    not_run_goal: str = "—"  # ... and when it did not run
    not_run_note: str = ""  # after "Not run in this invocation."
    error: Callable[[object], str | None] = _error


REPORT = {
    "eval": Section("1. evaluation",
                    "1. Evaluation: scoring + top-100 against a bare `H @ E.T; topk`", _eval,
                    goal=f">= {EVAL_GOAL}"),
    "steps": Section("2. training steps",
                     "2. Training steps against a bare plain-torch step of the same shapes",
                     _steps, goal=f"<= {STEP_GOAL}"),
    "memory": Section("3. memory",
                      "3. Memory: full cross-entropy against SCE, and a Yambda-size epoch",
                      _memory),
    "data": Section("4. data", lambda sec: f"4. Data: prepare + split of a {_rows(sec)} "
                    "synthetic log", _data, error=_data_error),
    "pipeline": Section("5. pipeline", "5. Pipeline: `snakemake -n` of the paper's grid",
                        _pipeline),
    "default": Section("6. default run", "6. The default command, cold, on this machine",
                       _default, goal="<= 1 (600 s)", not_run_goal="<= 1 (600 s)",
                       not_run_note=" `python benchmarks/run_all.py --default-run` runs the "
                       "README's `snakemake --cores 8 results/table2.md` in a fresh clone and "
                       "times it."),
    "gpu": Section("7. GPU", "7. GPU", _gpu),
    "checkpoint": Section("8. checkpoints", "8. Checkpoints: a default-run epoch with a checkpoint "
                          "after it against one without", _checkpoint,
                          goal=f"<= {CHECKPOINT_GOAL}", not_run_goal=f"<= {CHECKPOINT_GOAL}"),
    "batching": Section("9. batching", "9. Length-grouped batches: a SASRec and a CREATE epoch, "
                        "`batching: length` against `random`", _batching),
    "yambda": Section("10. yambda", "10. Beyond the paper's scale: prepare + split of "
                      "Yambda-shaped logs, out of core", _yambda, error=_yambda_error),
    "training": Section("11. training", "11. Training at Yambda-500M likes' size: an epoch "
                        "on the CPU, and the memory estimate", _training),
}


def _machine(m: dict) -> list[str]:
    load0, load1 = m.get("load_average_at_start"), m.get("load_average_at_end")
    return ["## Machine", ""] + table(["", "this run"], [
        ["CPU", m["cpu"]], ["cores (usable)", m["cores"]],
        ["torch threads", f"{m['torch_threads']} (OMP_NUM_THREADS={m['omp_num_threads']})"],
        ["RAM", f"{_gib(m['ram_bytes'])} GiB ({_gib(m['available_bytes_at_start'])} GiB "
                "available at the start)"],
        ["load average (1, 5, 15 min)", f"{_fmt_load(load0)} at the start, {_fmt_load(load1)} "
                                        "at the end"],
        ["GPU", m["cuda"] + f" ({_gib(m['cuda_memory_bytes'])} GiB)" if m["cuda"] else
         "none (no GPU on this machine)"],
        ["torch", m["torch"]], ["Python", m["python"]], ["OS", m["os"]],
        ["commit", m["git"]], ["date", m["date"]],
    ])


def render(results: dict, plots: Path, tiny: bool, default_run: bool) -> str:
    """The report's markdown: a header, the summary, the machine, then each section of
    ``REPORT``, in the order of ``SECTIONS``."""
    m, S = results["machine"], results["sections"]
    mode = "tiny (--tiny: small shapes, a smoke test)" if tiny else "full"
    lines = [
        "# Benchmarks",
        "",
        f"`python benchmarks/run_all.py{' --tiny' if tiny else ''}"
        f"{' --default-run' if default_run else ''}`: mode {mode}, {m['date']}, "
        f"{results['wall_s']:.0f} s in all. Each figure is a ratio against a bare reference "
        "measured in the same run on the same machine; absolute numbers beside it. Raw numbers: "
        f"`{plots.name}/benchmarks.json`.",
        "",
    ]
    merged = results.get("merged") or {}
    if merged:
        lines += ["Measured later by `python benchmarks/run_all.py --only` and merged into this "
                  "run's report (the machine table is this run's): " + "; ".join(
                      f"{REPORT[k].label} on {v['date']} (commit {v['git']}, {v['cpu']}, "
                      f"{v['cores']} cores, load average "
                      f"{_fmt_load(v.get('load_average_at_start'))} at its start, "
                      f"{_fmt_load(v.get('load_average_at_end'))} at its end)"
                      for k, v in ((k, merged[k]) for k in SECTIONS if k in merged)) + ".", ""]
    unfinished = results.get("unfinished") or []
    if unfinished:
        lines += [f"**Unfinished**: this report was written after each section; the run was still "
                  f"going or was stopped before {', '.join(unfinished)}.", ""]
    body, summary = _machine(m), []
    for key in SECTIONS:
        part, sec = REPORT[key], S.get(key)
        body += [f"## {part.heading(sec) if callable(part.heading) else part.heading}", ""]
        if sec is None:
            missed = key in unfinished
            body += [("Not measured: the run stopped (or was still going) before this section."
                      if missed else "Not run in this invocation.") + part.not_run_note, ""]
            summary.append([part.label, "not measured" if missed else "not run in this invocation",
                            "—", part.not_run_goal, "not run"])
        elif part.error(sec):
            body += [f"Failed: {part.error(sec)}", ""]
            summary.append([part.label, "failed", "—", part.goal, "FAIL"])
        else:
            more, rows = part.render(sec, plots)
            body, summary = body + more, summary + rows
    lines += ["## Summary", ""]
    lines += table(["section", "headline", "ratio", "goal", "status"], summary)
    return "\n".join(lines + body)


# ----------------------------------------------------------------------------- plots


def plot_all(results: dict, plots: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    S = results["sections"]
    gpu = S.get("gpu") if isinstance(S.get("gpu"), dict) else {}
    for key, rows, suffix in (("eval", S.get("eval"), ""), ("eval", gpu.get("eval"), "_cuda")):
        if isinstance(rows, list) and rows:
            _plot_eval(rows, plots / f"eval{suffix}.png")
    for rows, suffix in ((S.get("steps"), ""), (gpu.get("steps"), "_cuda")):
        if isinstance(rows, list) and rows:
            _plot_steps(rows, plots / f"steps{suffix}.png")
    for sec, suffix in ((S.get("memory"), ""), (gpu.get("memory"), "_cuda")):
        if isinstance(sec, dict) and sec.get("sweep"):
            _plot_memory(sec["sweep"], plots / f"memory{suffix}.png")


def _catalog_axis(ax, items) -> None:
    """Log x axis with the catalogs as ticks: 4k, 20k, 200k."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(items)
    ax.set_xticklabels([f"{n / 1000:g}k" for n in items])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("catalog (items)")


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from recbench.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_eval(rows, path):
    import matplotlib.pyplot as plt

    x = [r["items"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(x, [r["bare_per_s"] for r in rows], "o-", label="bare H @ E.T; topk")
    a.plot(x, [r["ours_per_s"] for r in rows], "s-", label="recbench evaluate")
    a.set(yscale="log", ylabel="histories / s", title="Evaluation throughput")
    _catalog_axis(a, x)
    a.legend()
    b.plot(x, [r["ratio"] for r in rows], "s-", color="C1", label="recbench / bare")
    b.axhline(EVAL_GOAL, color="red", ls="--", label=f"goal >= {EVAL_GOAL}")
    b.axhline(1.0, color="grey", lw=0.8)
    b.set(ylabel="throughput ratio", ylim=(0, max(1.2, max(r["ratio"] for r in rows) * 1.1)),
          title="Ratio recbench / bare (higher is better)")
    _catalog_axis(b, x)
    b.legend()
    fig.suptitle(f"device {rows[0]['device']}")
    _save(fig, path)


def _plot_steps(rows, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    names = [r["model"] for r in rows]
    ratios = [r["ratio"] for r in rows]
    ax.bar(names, ratios, color=["C2" if v <= STEP_GOAL else "C3" for v in ratios])
    ax.axhline(STEP_GOAL, color="red", ls="--", label=f"goal <= {STEP_GOAL}")
    ax.axhline(1.0, color="grey", lw=0.8)
    for i, r in enumerate(rows):
        ax.text(i, r["ratio"], f"{r['ratio']:.2f}\n{r['ours_ms']:.0f} / {r['bare_ms']:.0f} ms",
                ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="step time, recbench / bare", ylim=(0, max(1.5, max(ratios) * 1.3)),
           title="Training step against a bare plain-torch step "
                 f"({rows[0]['device']}; lower is better)")
    ax.legend(loc="upper left")
    _save(fig, path)


def _plot_memory(sweep, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    x = [r["items"] for r in sweep]
    ax.plot(x, [r["ce_estimate_bytes"] / MiB for r in sweep], "--", color="C0", alpha=0.6,
            label="full CE, library estimate")
    xm = [r["items"] for r in sweep if r.get("ce_peak_bytes")]
    ax.plot(xm, [r["ce_peak_bytes"] / MiB for r in sweep if r.get("ce_peak_bytes")], "o",
            color="C0", label="full CE, measured")
    xr = [r for r in sweep if r.get("ce_refused")]
    if xr:
        ax.plot([r["items"] for r in xr], [r["ce_estimate_bytes"] / MiB for r in xr], "x",
                color="C3", ms=10, mew=2, label="full CE, refused up front")
    xs = [r for r in sweep if r.get("sce_peak_bytes") is not None]
    ax.plot([r["items"] for r in xs], [max(r["sce_peak_bytes"], MiB) / MiB for r in xs], "s-",
            color="C1", label="SCE (256 x 256 x 256), measured")
    avail = sweep[0].get("available_bytes")
    if avail:
        ax.axhline(avail / MiB, color="grey", ls=":", label="memory available")
    _catalog_axis(ax, x)
    ax.set(yscale="log", ylabel="peak memory (MiB)",
           title=f"Peak memory of one forward + backward ({sweep[0]['positions']:,} positions, "
                 f"{sweep[0]['device']})")
    ax.legend(fontsize=8)
    _save(fig, path)


# ----------------------------------------------------------------------------- main


def write_report(results: dict, out: Path, tiny: bool, default_run: bool) -> None:
    from recbench.io import write_json, write_text

    plots = out.parent / out.stem
    write_json(results, plots / "benchmarks.json")
    plot_all(results, plots)
    write_text(render(results, plots, tiny, default_run) + "\n", out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="small shapes: a smoke test, < 1 minute")
    ap.add_argument("--default-run", action="store_true",
                    help="also run `snakemake --cores 8 results/table2.md` cold in a fresh clone")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks.md",
                    help="the report (plots and JSON go to <out without .md>/)")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated sections of {','.join(SECTIONS)} (default: all), "
                         "merged into <out without .md>/benchmarks.json's other sections")
    ap.add_argument("--render", type=Path, help="re-render this benchmarks.json, measure nothing")
    args = ap.parse_args(argv)
    only = args.only is not None and not args.render
    sections = [s.strip() for s in (args.only or ",".join(SECTIONS)).split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.render:
        results = json.loads(args.render.read_text())
        tiny, default_run = results.get("tiny", args.tiny), results.get("default_run", False)
    else:
        tiny, default_run = args.tiny, args.default_run
        previous = (previous_results(args.out.parent / args.out.stem / "benchmarks.json", tiny)
                    if only else None)

        def merged(partial):
            partial["tiny"], partial["default_run"] = tiny, default_run
            return merge(previous, partial)

        def save(partial):  # a stopped run keeps the sections it measured
            out = merged(partial)
            write_report(out, args.out, tiny, out["default_run"])

        new = measure(TINY if tiny else FULL, sections, default_run, on_section=save)
        results = merged(new)
        default_run = results["default_run"]
        sections = list(new["sections"])  # the exit status is this run's
    write_report(results, args.out, tiny, default_run)
    log(f"wrote {args.out}" + (f" ({new['wall_s']:.0f} s)" if not args.render else ""))
    failed = [k for k, v in results["sections"].items() if k in sections and _failed(v)]
    if failed:
        log(f"failed sections: {', '.join(failed)}")
    return 1 if failed else 0


def _failed(section) -> bool:
    if _error(section):
        return True
    if isinstance(section, dict):
        return any(_failed(v) for v in section.values() if isinstance(v, (dict, list)))
    if isinstance(section, list):
        return any(_failed(v) for v in section)
    return False


if __name__ == "__main__":
    sys.exit(main())
