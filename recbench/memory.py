"""Refuse work that cannot fit in memory before it starts, saying how much it needs.

An out-of-memory crash halfway through a run (the kernel's OOM killer, a CUDA OOM after an hour of
training) says nothing useful. Steps whose memory grows with the data estimate their need first
and call ``require``, which raises ``ResourceError`` naming what needs how many GiB, how many are
available, and what to change:

    require(full_ce_bytes(N, n_items, dim), "SASRec: full cross-entropy over 181,304 items",
            "set loss: sce", device="cpu")

Where it is wired in: a neural model's whole training (``Budget``, one function per model
family: ``memory_budget`` of ``recbench.sequential``, ``recbench.graph_model``, MRGSRec and
CREATE), checked when ``fit`` starts, before the model is built, and again by
``training.train``; the same numbers print before a workflow's jobs start
(``python -m recbench.protocol.memory_check``).
Also parsing a raw file (``data/prepare.py``) and EASE's dense item matrix (``baselines/ease.py``).
Estimates are conservative (an upper bound of the largest allocations);
``RECBENCH_SKIP_MEMORY_CHECK=1`` in the environment turns every check off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

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
    #: the estimate by part, when it has parts (``Budget.parts``): {part: bytes}
    parts: dict = field(default_factory=dict, compare=False)


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


def require(nbytes: int, what: str, fix: str, *, device=None, held: int = 0) -> None:
    """Raise ResourceError if ``what`` (needing ``nbytes``, of which ``held`` are allocated
    already) does not fit in the memory available now on ``device`` (None or "cpu": main
    memory). ``fix`` says what to change."""
    if os.environ.get(SKIP_ENV, "").strip() not in ("", "0"):
        return
    available = available_bytes(device)
    held = min(max(int(held), 0), nbytes)
    if available is None or nbytes - held <= available:
        return
    where = f"GPU memory on {device}" if _is_cuda(device) else "memory"
    already = f" ({gib(held)} of it allocated already)" if held else ""
    raise ResourceError(
        f"{what} needs about {gib(nbytes)} of {where}{already}, but only {gib(available)} is "
        f"available. {fix.rstrip('.')}. (Refused before starting; set {SKIP_ENV}=1 to try "
        "anyway.)"
    )


def require_need(need: Need | None, *, device=None, held: int = 0) -> None:
    """``require`` for a ``Need`` (None: nothing to check)."""
    if need is not None:
        require(need.nbytes, need.what, need.fix, device=device, held=held)


# ----------------------------------------------------------------------------- whole training


@dataclass(frozen=True)
class Sizes:
    """What a training estimate reads of the data: its users, items and interactions, and
    ``n_pairs``, the sum over users of their distinct items squared (an upper bound of the item
    pairs R^T R stores), where the log is at hand."""

    n_users: int
    n_items: int
    n_interactions: int
    n_pairs: int | None = None

    @classmethod
    def of(cls, train) -> "Sizes":
        """The sizes of an ``Interactions`` training log."""
        users, items = np.asarray(train.users, np.int64), np.asarray(train.items, np.int64)
        width = max(int(train.n_items), 1)
        distinct = np.unique(users * width + items) // width  # [distinct (user, item)] users
        degree = np.bincount(distinct, minlength=int(train.n_users)).astype(np.int64)
        return cls(int(train.n_users), int(train.n_items), len(train.users),
                   int((degree ** 2).sum()))

    def pairs_bound(self, edges_per_user: int | None = None) -> tuple[int, bool]:
        """(item pairs R^T R can store, whether that is an upper bound): ``n_pairs`` (each user's
        degree capped at ``edges_per_user``) where known, else the least the sizes allow (each
        user the same degree, an estimate "at least"); never above items squared."""
        if self.n_pairs is not None:
            pairs, upper = self.n_pairs, True
            if edges_per_user is not None:
                pairs = min(pairs, self.n_users * edges_per_user ** 2)
        else:
            per_user = self.n_interactions / max(self.n_users, 1)
            if edges_per_user is not None:
                per_user = min(per_user, edges_per_user)
            pairs, upper = int(self.n_users * per_user ** 2), False
        return min(pairs, self.n_items ** 2), upper


@dataclass(frozen=True)
class Budget:
    """A training run's memory by part, in bytes. ``held``: allocated for the whole run (the
    parameter tables with their gradients and Adam's two moments, the training data, the graph).
    ``phases``: {phase: {part: bytes}}, the transients of phases that come one at a time (building
    the graph, a training step, an evaluation batch); the run's peak is ``held`` plus the largest
    phase. ``+`` joins two models trained together (CREATE: each phase's parts add up)."""

    held: dict
    phases: dict

    @property
    def peak_phase(self) -> str | None:
        return max(self.phases, key=lambda k: sum(self.phases[k].values()), default=None)

    @property
    def nbytes(self) -> int:
        phase = self.peak_phase
        return sum(self.held.values()) + (sum(self.phases[phase].values()) if phase else 0)

    @property
    def parts(self) -> dict:
        """{part: bytes} of the peak: every held part, then the largest phase's."""
        phase = self.peak_phase
        return {**self.held, **({f"{phase}: {k}": v for k, v in self.phases[phase].items()}
                                if phase else {})}

    def __add__(self, other: "Budget") -> "Budget":
        held = dict(self.held)
        for k, v in other.held.items():
            held[k] = held.get(k, 0) + v
        phases = {p: dict(parts) for p, parts in self.phases.items()}
        for p, parts in other.phases.items():
            for k, v in parts.items():
                phases.setdefault(p, {})[k] = phases.get(p, {}).get(k, 0) + v
        return Budget(held, phases)

    def describe(self, top: int = 4) -> str:
        """The largest parts of the peak: "item table ... 2.9 GiB, training step: ... 0.4 GiB"."""
        parts = sorted(self.parts.items(), key=lambda kv: -kv[1])[:top]
        return ", ".join(f"{k} {gib(v)}" for k, v in parts)


def largest_fitting(budget: Callable[[int], "Budget"], top: int, available: int,
                    step: int = 1) -> int | None:
    """The largest multiple of ``step`` up to ``top`` whose ``budget(value)`` fits in
    ``available`` bytes (the estimate grows with the value), or None when not even ``step``
    does."""
    lo, hi = 0, top // step
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if budget(mid * step).nbytes <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo * step if lo else None


def training_need(budget: Callable[[int, int, bool], "Budget"], what: str, *, dim: int,
                  eval_batch: int, cheaper: str | None = None, device=None,
                  available: int | None = None, dim_key: str = "`dim: {}`",
                  dim_step: int = 1) -> Need:
    """The ``Need`` of a whole training run, ``budget(dim, eval_batch, False)``, whose ``fix``
    names what fits in ``available`` bytes (default: ``available_bytes(device)`` now): the
    fewest changes among the ``cheaper`` setting (``budget(..., True)``: SCE), a smaller
    evaluation batch (halved) and the largest ``dim`` that fits (a multiple of ``dim_step``,
    named by the template ``dim_key``), and a device with the memory it needs."""
    est = budget(dim, eval_batch, False)
    if available is None:
        available = available_bytes(device)
    where = "a GPU" if _is_cuda(device) else "a GPU (`device: cuda`) or a machine"
    device_fix = f"{where} with at least {gib(est.nbytes)} free"
    best = None  # (changes, -dim, -batch), the settings
    if available is not None and est.nbytes > available:
        batches, b = [], eval_batch
        while b >= 1:
            batches.append(b)
            b = b // 2 if b > 16 else 0
        for use_cheaper in ((False, True) if cheaper else (False,)):
            for b in batches:
                d = largest_fitting(lambda x: budget(x, b, use_cheaper), dim, available, dim_step)
                if d is None:
                    continue
                key = (use_cheaper + (b < eval_batch) + (d < dim), -d, -b)
                if best is None or key < best[0]:
                    best = (key, use_cheaper, b, d)
    if best is None:
        fix = f"Use {device_fix}"
        if cheaper and available is not None:
            lower = budget(dim, eval_batch, True).nbytes
            if lower < est.nbytes:
                fix = (f"Nothing here fits in {gib(available)}; {cheaper} brings it to about "
                       f"{gib(lower)}. Else use {device_fix}")
        return Need(est.nbytes, f"{what} ({est.describe()})", fix, est.parts)
    _, use_cheaper, b, d = best
    settings = ([cheaper] if use_cheaper else []) + (
        [f"`eval_batch_size: {b}` (the model's; and `evaluation.batch_size: {b}`)"]
        if b < eval_batch else []) + ([dim_key.format(d)] if d < dim else [])
    fits = budget(d, b, use_cheaper).nbytes
    fix = (f"What would fit in {gib(available)}: {' and '.join(settings)} (about {gib(fits)}); "
           f"or {device_fix}")
    return Need(est.nbytes, f"{what} ({est.describe()})", fix, est.parts)
