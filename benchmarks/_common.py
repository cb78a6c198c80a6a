"""What every benchmark shares: timing, peak memory in a fresh process, synthetic logs.

- ``interleaved(fns, rounds)``: the best time of each function over ``rounds`` rounds, the
  functions taking turns inside a round, so a burst of load on a shared machine hits all of them
  alike (the ratios are what the reports compare; absolute times on a noisy machine mean little);
- ``in_subprocess(module, function, **kwargs)``: call ``benchmarks/<module>.py:<function>`` in a
  fresh Python process and return its result (a dict) with the process's peak RSS added, so one
  memory-heavy case never hides another's peak. ``python benchmarks/_common.py --call m:f --kwargs
  JSON`` is that process;
- ``synthetic_log``: a log of a given number of users, items and interactions with power-law item
  popularity (``YAMBDA_50M_LIKES`` is the size of the paper's largest dataset).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:  # measure this checkout's code, whatever is installed
    sys.path.insert(0, str(ROOT))
#: users, items, interactions of Yambda-50M likes and of MovieLens-1M (the paper's Table 1)
YAMBDA_50M_LIKES = (8_283, 181_304, 881_456)
ML_1M = (6_040, 3_706, 1_000_209)
MiB, GiB = 2**20, 2**30


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_bytes() -> int:
    """The largest resident set of this process (since ``reset_peak_rss``): VmHWM on Linux.

    Not ``getrusage().ru_maxrss``: after fork + exec that starts at the forking parent's resident
    set (the kernel carries the old memory map's peak over), so a small child of a big parent
    would report the parent's size. Elsewhere ru_maxrss is the fallback."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak_rss() -> None:
    """Make the peak the current resident set (Linux: 5 > /proc/self/clear_refs), so the next
    ``peak_rss_bytes`` tells the largest set of what runs from now on."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def current_rss_bytes() -> int:
    """This process's resident set now."""
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else peak_rss_bytes()


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, device: str = "cpu") -> float:
    """Seconds of one call of ``fn`` (the device synchronised after it)."""
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def interleaved(fns: dict, rounds: int, device: str = "cpu", warmup: bool = True) -> dict:
    """{name: best seconds of fns[name]() over ``rounds`` rounds}, taking turns within a round."""
    if warmup:
        for fn in fns.values():
            fn()
        sync(device)
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timed(fn, device))
    return best


def in_subprocess(module: str, function: str, timeout: float | None = None, **kwargs) -> dict:
    """``benchmarks/<module>.py:<function>(**kwargs)`` in a fresh process; its dict result plus
    ``peak_rss_bytes`` (the whole fresh process: interpreter, imports, data) and
    ``base_rss_bytes`` (after the imports, before the call). On failure: {"error": the last line of its stderr}."""
    cmd = [sys.executable, str(BENCH_DIR / "_common.py"), "--call", f"{module}:{function}",
           "--kwargs", json.dumps(kwargs)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = proc.stderr.strip().splitlines()
        return {"error": err[-1] if err else f"exit status {proc.returncode}"}
    return json.loads(lines[-1])


def _child(call: str, kwargs: dict) -> None:
    sys.path.insert(0, str(BENCH_DIR))
    module, function = call.split(":")
    fn = getattr(importlib.import_module(module), function)
    import torch  # noqa: F401 - imported before the baseline is taken, as every case needs it

    base = current_rss_bytes()
    try:
        out = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which records it
        traceback.print_exc()
        print(f"{type(exc).__name__}: {exc}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)
    print(json.dumps({**out, "peak_rss_bytes": peak_rss_bytes(), "base_rss_bytes": base}))


def synthetic_log(users: int, items: int, rows: int, seed: int = 0, zipf: float = 1.2,
                  distinct: bool = False):
    """An ``Interactions`` log: users drawn uniformly (sorted, one sequence each), items with
    power-law popularity over the whole catalog, timestamps in row order. ``distinct``: no
    (user, item) pair twice, as in a ratings log such as MovieLens (a graph of ``rows`` edges):
    each user's items are consecutive item ids from a power-law start."""
    import numpy as np

    from recbench.data.dataset import Interactions

    rng = np.random.default_rng(seed)
    u = np.sort(rng.integers(0, users, rows))
    if distinct:
        starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
        position = np.arange(rows) - np.repeat(starts, np.diff(np.r_[starts, rows]))
        first = (rng.zipf(zipf, users) - 1) % items
        i = (first[u] + position) % items
    else:
        i = (rng.zipf(zipf, rows) - 1) % items
    return Interactions(u, i.astype(np.int64), np.arange(rows), users, items)


def sequence_log(users: int, length: int, items: int, seed: int = 0):
    """``users`` users with exactly ``length`` uniformly drawn items each."""
    import numpy as np

    from recbench.data.dataset import Interactions

    u = np.repeat(np.arange(users), length)
    i = np.random.default_rng(seed).integers(0, items, len(u))
    return Interactions(u, i, np.arange(len(u)), users, items)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--call", required=True)
    ap.add_argument("--kwargs", default="{}")
    args = ap.parse_args()
    _child(args.call, json.loads(args.kwargs))
