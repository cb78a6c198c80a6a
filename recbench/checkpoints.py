"""Epoch checkpoints of the training loop (``recbench.training.train``): a killed run resumes.

A run given ``Checkpoints(folder, every)`` writes ``<folder>/checkpoint.pt`` atomically (a
temporary file renamed over the last one) after every ``every``-th epoch, and, when the process
receives SIGTERM (a cluster pre-emption, a time limit, Snakemake stopping its jobs), after the
step in progress, then exits with status 143 and a log line saying where it stopped. It holds
everything the rest of the run depends on:

- the epoch (and, written on SIGTERM inside an epoch, the steps done of the next one, the
  generator's state at that epoch's start, which redraws its batches, and its step losses so far);
- the model's ``state_dict``, the optimizer's and the GradScaler's (no scheduler exists);
- every random state a step draws from: the loop's generator (shuffling, masking, negatives),
  torch's global CPU generator (dropout), CUDA's on a GPU, numpy's and Python's global ones;
- the early-stopping state (best val NDCG@10, best epoch, best weights, evaluations without a
  better one, whether it had stopped) and the history rows so far;
- the run's identity: the model, its full parameters, seed, device, evaluation protocol and a
  digest of the training (and validation) data.

At its start a run with a checkpoint of the same identity continues after its last step; on the
CPU the result is bit for bit that of an uninterrupted run (tested). A checkpoint of another
identity is discarded with a log line; an unreadable one (truncated, not a checkpoint) stops the
run with ``CheckpointError``, naming the file: it is never loaded half. ``every = None`` (or 0)
checkpoints on SIGTERM only. The owner of the folder removes it once the run's outputs are
written (``recbench.protocol.runner``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recbench.errors import CheckpointError, ConfigError
from recbench.io import atomic_path

log = logging.getLogger(__name__)

#: bump when the layout of checkpoint.pt changes; an older one is discarded, not misread
FORMAT = 1
FILENAME = "checkpoint.pt"
#: epochs between two checkpoints (the config's ``checkpoint_every`` default): a save costs
#: 1-3 % of a default-run epoch, so every 5th keeps it under 2 % (benchmarks/bench_checkpoint.py)
DEFAULT_EVERY = 5
#: the exit status after a checkpoint on SIGTERM (128 + 15, a shell's status of a SIGTERM death)
SIGTERM_STATUS = 128 + signal.SIGTERM
#: the keys every checkpoint holds
KEYS = ("format", "identity", "epoch", "step", "model", "optimizer", "scaler", "rng", "history",
        "best", "stopped")


class Interrupted(SystemExit):
    """SIGTERM arrived while training; the checkpoint is written. Exits with status 143."""


@dataclass
class Checkpoints:
    """Where a run checkpoints and how often: after every ``every``-th epoch (None or 0: on
    SIGTERM only)."""

    folder: Path
    every: int | None = DEFAULT_EVERY

    def __post_init__(self):
        self.folder = Path(self.folder)
        if self.every is not None and (isinstance(self.every, bool) or self.every < 0):
            raise ConfigError(f"checkpoint_every must be a number of epochs >= 0 or null, got "
                             f"{self.every!r}")

    @property
    def path(self) -> Path:
        return self.folder / FILENAME

    def due(self, epoch: int) -> bool:
        return bool(self.every) and epoch % self.every == 0

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp:
            torch.save({"format": FORMAT, **state}, tmp)

    def load(self, identity: str) -> dict | None:
        """The checkpoint of the run ``identity`` (``identity_of``), or None when there is none or
        it is another run's (then it is deleted)."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch raises RuntimeError, EOFError, pickle's...
            raise CheckpointError(
                f"{self.path} is not a readable checkpoint ({type(err).__name__}: {err}). It was "
                "not written whole by the training loop (a full disk? copied half?); delete it to "
                "train this run from its start.") from err
        missing = [k for k in KEYS if not isinstance(state, dict) or k not in state]
        if missing:
            raise CheckpointError(f"{self.path} lacks {missing}: not a checkpoint of this loop; "
                                  "delete it to train this run from its start.")
        if state["format"] != FORMAT or state["identity"] != identity:
            why = (f"format {state['format']}, not {FORMAT}" if state["format"] != FORMAT else
                   "its settings or data differ: " + _difference(state["identity"], identity))
            log.warning("discarding the checkpoint %s (epoch %d): %s", self.path, state["epoch"],
                        why)
            self.path.unlink()
            return None
        return state


def identity_of(**parts) -> str:
    """A run's identity as canonical JSON (sorted keys; non-JSON values by their str)."""
    return json.dumps(parts, sort_keys=True, default=str)


def _difference(old: str, new: str) -> str:
    a, b = json.loads(old), json.loads(new)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ", ".join(keys) or "?"


def data_digest(*arrays) -> str:
    """A digest of the arrays (and numbers) a run trains on, e.g. an Interactions' columns."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def rng_state(generator: torch.Generator, device: torch.device) -> dict:
    """Every random state a training step may draw from."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"generator": generator.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate()}


def set_rng_state(state: dict, generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class SigtermFlag:
    """While entered (``enabled``, in the main thread), SIGTERM only sets ``received``: the loop
    checkpoints at its next step boundary and raises ``Interrupted``. The previous handler is
    restored on exit."""

    def __init__(self, enabled: bool = True):
        self.received = False
        self.enabled = enabled
        self._previous = None

    def _handle(self, signum, frame):
        self.received = True

    def __enter__(self) -> "SigtermFlag":
        if not self.enabled:
            pass
        elif threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        else:
            log.info("not in the main thread: SIGTERM will not checkpoint (periodic ones do)")
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
