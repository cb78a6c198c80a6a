"""The state of a training run (``TrainState``) and where it is checkpointed (``Checkpoints``).

``TrainState`` is everything ``recbench.training.train`` carries from one step to the next:

- where the run is: the epochs done, and inside the next one the steps done, the generator's
  state at that epoch's start (which redraws its batches) and its step losses so far;
- the model's ``state_dict``, the optimizer's and the GradScaler's (no scheduler exists);
- every random state a step draws from (``rng_state``): the loop's generator (shuffling,
  masking, negatives), torch's global CPU generator (dropout), CUDA's on a GPU, numpy's and
  Python's global ones;
- the early stopping (``EarlyStopping``: best val NDCG@10, its epoch and weights, evaluations
  without a better one, whether it stopped) and the history rows so far.

``TrainState.save(checkpoints)`` writes it to ``<folder>/checkpoint.pt`` atomically (a temporary
file renamed over the last one), with the run's identity (the model, its full parameters, seed,
device, evaluation protocol and a digest of its training and validation data);
``TrainState.restore(checkpoints)`` reads it back when the identity is the same. The loop saves
after every ``every``-th epoch and, when the process receives SIGTERM (a cluster pre-emption, a
time limit, Snakemake stopping its jobs), after the step in progress; then it exits with status
143 and a log line saying where it stopped.

A rerun of the same run continues after its last saved step; on the CPU the result is bit for
bit that of an uninterrupted run (tested). A checkpoint of another identity is discarded with a
log line; an unreadable one (truncated, not a checkpoint) stops the run with
``CheckpointError``, naming the file: it is never loaded half. ``every = None`` (or 0)
checkpoints on SIGTERM only. The owner of the folder removes it once the run's outputs are
written (``recbench.protocol.runner``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from recbench.errors import CheckpointError, ConfigError
from recbench.io import atomic_path

log = logging.getLogger(__name__)

#: bump when the layout of checkpoint.pt changes; an older one is discarded, not misread
FORMAT = 2
FILENAME = "checkpoint.pt"
#: epochs between two checkpoints (the config's ``checkpoint_every`` default): a save costs
#: 1-3 % of a default-run epoch, so every 5th keeps it under 2 % (benchmarks/bench_checkpoint.py)
DEFAULT_EVERY = 5
#: the exit status after a checkpoint on SIGTERM (128 + 15, a shell's status of a SIGTERM death)
SIGTERM_STATUS = 128 + signal.SIGTERM
#: the keys every checkpoint holds
KEYS = ("format", "identity", "epoch", "step", "epoch_rng", "losses", "terms", "checked",
        "seconds", "model", "optimizer", "scaler", "rng", "history", "stopping")


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
        if not isinstance(state, dict) or "format" not in state:
            raise CheckpointError(f"{self.path} is not a checkpoint of this loop; delete it to "
                                  "train this run from its start.")
        if state["format"] != FORMAT or state["identity"] != identity:
            why = (f"format {state['format']}, not {FORMAT}" if state["format"] != FORMAT else
                   "its settings or data differ: " + _difference(state["identity"], identity))
            log.warning("discarding the checkpoint %s (epoch %s): %s", self.path,
                        state.get("epoch"), why)
            self.path.unlink()
            return None
        missing = [k for k in KEYS if k not in state]
        if missing:
            raise CheckpointError(f"{self.path} lacks {missing}: not a checkpoint of this loop; "
                                  "delete it to train this run from its start.")
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


@dataclass
class EarlyStopping:
    """Selection of the best epoch on validation NDCG@10: stop after ``patience`` evaluations
    without a better one (None: never), keeping the best epoch's weights."""

    patience: int | None
    best_metric: float = -math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    bad_evals: int = 0
    stopped: bool = False

    def update(self, metric: float, epoch: int, module: torch.nn.Module) -> None:
        if metric > self.best_metric:
            self.best_metric, self.best_epoch, self.bad_evals = metric, epoch, 0
            self.best_state = copy.deepcopy(module.state_dict())
        else:
            self.bad_evals += 1
            self.stopped = self.patience is not None and self.bad_evals >= self.patience

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("best_metric", "best_epoch", "best_state",
                                              "bad_evals", "stopped")}


@dataclass
class TrainState:
    """What a training run carries from one step to the next (this module's docstring); the loop
    (``recbench.training.train``) reads and advances it, ``save`` and ``restore`` round-trip it."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # every random draw of train_batches and of a step
    device: torch.device
    stopping: EarlyStopping
    history: list[dict] = field(default_factory=list)  # one row per epoch done
    epoch: int = 0  # epochs done
    # inside epoch ``epoch + 1``: its steps done, the generator's state when its batches were
    # drawn, each step's detached loss and named terms, the losses checked finite, seconds spent
    step: int = 0
    epoch_rng: torch.Tensor | None = None
    losses: list[torch.Tensor] = field(default_factory=list)
    terms: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    checked: int = 0
    seconds: float = 0.0
    #: set by ``restore`` when the run resumes inside an epoch: the generator's state after the
    #: steps done, put back once that epoch's batches are redrawn
    _resume_rng: dict | None = field(default=None, repr=False)

    def draw_batches(self, draw) -> list:
        """The batches of epoch ``epoch + 1`` from ``draw(generator)``, less the steps already
        done when the run resumed inside it (redrawn from the generator's state at its start)."""
        if self.step:
            self.generator.set_state(self.epoch_rng)
        else:
            self.epoch_rng = self.generator.get_state()
        batches = list(draw(self.generator))
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng, self.generator, self.device)
            self._resume_rng = None
        return batches[self.step:]

    def record(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """One step done: its loss and named terms, detached."""
        self.step += 1
        self.losses.append(loss.detach().float())
        for key, value in terms.items():
            self.terms.setdefault(key, []).append(value.detach().float())

    def end_epoch(self, row: dict) -> None:
        """Epoch ``epoch + 1`` done: its history row kept, the step accumulators emptied."""
        self.epoch += 1
        self.history.append(row)
        self.step, self.epoch_rng, self.losses, self.terms = 0, None, [], {}
        self.checked, self.seconds = 0, 0.0

    def save(self, checkpoints: Checkpoints, identity: str) -> None:
        checkpoints.save({
            "identity": identity, "epoch": self.epoch, "step": self.step,
            "epoch_rng": self.epoch_rng,
            "losses": torch.stack(self.losses) if self.losses else torch.zeros(0),
            "terms": {k: torch.stack(v) for k, v in self.terms.items()},
            "checked": self.checked, "seconds": self.seconds,
            "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": rng_state(self.generator, self.device),
            "history": self.history, "stopping": self.stopping.state_dict()})

    def restore(self, checkpoints: Checkpoints, identity: str) -> bool:
        """Continue from the checkpoint of this run, if there is one; False: start afresh."""
        saved = checkpoints.load(identity)
        if saved is None:
            return False
        self.module.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        for key, value in saved["stopping"].items():
            setattr(self.stopping, key, value)
        self.history, self.epoch, self.step = list(saved["history"]), saved["epoch"], saved["step"]
        self.epoch_rng, self.checked, self.seconds = (saved["epoch_rng"], saved["checked"],
                                                      saved["seconds"])
        self.losses = list(saved["losses"].unbind())
        self.terms = {k: list(v.unbind()) for k, v in saved["terms"].items()}
        if self.step:  # inside an epoch: after its batches are redrawn (draw_batches)
            self._resume_rng = saved["rng"]
        else:
            set_rng_state(saved["rng"], self.generator, self.device)
        return True

    @property
    def where(self) -> str:
        """Where the run is, for a log line."""
        if self.step:
            return f"epoch {self.epoch}, step {self.step} of epoch {self.epoch + 1}"
        return f"epoch {self.epoch}"
