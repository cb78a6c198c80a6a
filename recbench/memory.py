"""Refuse work that cannot fit in memory before it starts, saying how much it needs.

An out-of-memory crash halfway through a run (the kernel's OOM killer, a CUDA OOM after an hour of
training) says nothing useful. Steps whose memory grows with the data estimate their need first
and call ``require``, which raises ``ResourceError`` naming what needs how many GiB, how many are
available, and what to change:

    require(full_ce_bytes(N, n_items, dim), "SASRec: full cross-entropy over 181,304 items",
            "set loss: sce", device="cpu")

Where it is wired in: full cross-entropy logits of the sequential models (``training.train``,
through the models' ``training_memory``), parsing a raw file (``data/prepare.py``) and EASE's dense
item matrix (``baselines/ease.py``). Estimates are conservative (an upper bound of the largest
allocation); ``RECBENCH_SKIP_MEMORY_CHECK=1`` in the environment turns every check off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recbench.errors import ResourceError
from recbench.provenance import meminfo

GiB = 2**30
#: set to 1 in the environment to skip every check (e.g. a machine with large swap)
SKIP_ENV = "RECBENCH_SKIP_MEMORY_CHECK"


@dataclass(frozen=True)
class Need:
    """What a step will allocate at its peak, and what to change if it does not fit."""

    nbytes: int
    what: str
    fix: str


def _is_cuda(device) -> bool:
    return device is not None and str(device).startswith("cuda")


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (Linux), else the free physical pages, else None."""
    available = meminfo().get("MemAvailable")
    if available is not None:
        return available
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """Room left under this process's cgroup memory limit (containers, SLURM), or None."""
    candidates = [  # (limit, usage, stat) for cgroup v2, then v1
        ("memory.max", "memory.current", "memory.stat", "inactive_file"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat",
         "total_inactive_file"),
    ]
    root = Path("/sys/fs/cgroup")
    for limit_f, usage_f, stat_f, inactive_key in candidates:
        try:
            limit = (root / limit_f).read_text().strip()
            if limit == "max" or int(limit) >= 2**60:
                continue
            usage = int((root / usage_f).read_text())
            inactive = 0  # page cache the kernel reclaims before it kills anything
            for line in (root / stat_f).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == inactive_key:
                    inactive = int(value)
            return max(int(limit) - usage + inactive, 0)
        except (OSError, ValueError):
            continue
    return None


def available_bytes(device=None) -> int | None:
    """Bytes a new allocation can take now: free GPU memory for a CUDA device
    (``torch.cuda.mem_get_info``), else MemAvailable of /proc/meminfo, capped by the cgroup limit.
    None where it cannot be told (then nothing is refused)."""
    if _is_cuda(device):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(found) if found else None


def gib(nbytes: float) -> str:
    """``nbytes`` as GiB for messages: "55.7 GiB", "0.02 GiB"."""
    x = nbytes / GiB
    return f"{x:,.1f} GiB" if x >= 1 else f"{x:.2f} GiB"


def require(nbytes: int, what: str, fix: str, *, device=None) -> None:
    """Raise ResourceError if ``what`` (needing ``nbytes``) does not fit in the memory available
    now on ``device`` (None or "cpu": main memory). ``fix`` says what to change."""
    if os.environ.get(SKIP_ENV, "").strip() not in ("", "0"):
        return
    available = available_bytes(device)
    if available is None or nbytes <= available:
        return
    where = f"GPU memory on {device}" if _is_cuda(device) else "memory"
    raise ResourceError(
        f"{what} needs about {gib(nbytes)} of {where}, but only {gib(available)} is available. "
        f"{fix.rstrip('.')}. (Refused before starting; set {SKIP_ENV}=1 to try anyway.)"
    )


def require_need(need: Need | None, *, device=None) -> None:
    """``require`` for a ``Need`` (None: nothing to check)."""
    if need is not None:
        require(need.nbytes, need.what, need.fix, device=device)
