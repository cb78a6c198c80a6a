"""What every benchmark shares: timing, peak memory in a fresh process, synthetic logs.

- ``interleaved(fns, rounds)``: the best time of each function over ``rounds`` rounds, the
  functions taking turns inside a round, so a burst of load on a shared machine hits all of them
  alike (the ratios are what the reports compare; absolute times on a noisy machine mean little);
- ``in_fresh_process(fn, **kwargs)``: ``fn(**kwargs)`` in a fresh Python process
  (multiprocessing's "spawn") and its result (a dict) with the process's peak RSS added, so one
  memory-heavy case never hides another's peak;
- ``synthetic_log``: a log of a given number of users, items and interactions with power-law item
  popularity (``YAMBDA_50M_LIKES`` is the size of the paper's largest dataset).
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: its config, Snakefile and git
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


def in_fresh_process(fn, timeout: float | None = None, **kwargs) -> dict:
    """``fn(**kwargs)`` in a fresh Python process (multiprocessing's "spawn": a new interpreter,
    so its peak is its own, see ``peak_rss_bytes``); its dict result plus ``peak_rss_bytes`` (the
    whole process: interpreter, imports, data) and ``base_rss_bytes`` (after the imports of
    ``fn``'s module, before the call). ``fn`` is a module-level function; kwargs and result are
    pickled. The fresh process imports the main script too, so a script keeps its work under
    ``if __name__ == "__main__":``. On failure: {"error": "ExceptionType: message"}, or how the
    process ended."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, kwargs))
    proc.start()
    send.close()  # this process's copy: a child that dies unheard gives EOF, not a hang
    try:
        if not receive.poll(timeout):
            proc.kill()
            return {"error": f"timed out after {timeout:.0f} s"}
        return receive.recv()
    except EOFError:  # killed (out of memory?) or failed before fn ran (its traceback is above)
        proc.join()
        return {"error": f"the process ended with exit status {proc.exitcode} before returning"}
    finally:
        receive.close()
        proc.join()


def _child(send, fn, kwargs: dict) -> None:
    base = current_rss_bytes()  # fn's module was imported when the arguments were unpickled
    try:
        out = {**fn(**kwargs), "peak_rss_bytes": peak_rss_bytes(), "base_rss_bytes": base}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which records it
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}".replace("\n", " ")}
    send.send(out)
    send.close()


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

