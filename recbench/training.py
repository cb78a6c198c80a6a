"""The one training loop of every neural model: AdamW, epochs, early stopping on validation NDCG@10.

A model plugs in by implementing ``Trainable`` (below), the only hooks the loop calls; subclassing
``TrainableModule`` gives the optional ones their defaults, so a model writes two methods:

    train_batches(epoch, generator) -> list of batches   # the data of one epoch, in order
    training_loss(batch, generator) -> scalar loss tensor    # one step's forward pass

``training_loss`` may instead return a dict with the scalar to minimise under ``"loss"`` and named
terms beside it (CREATE: ``L_local``, ``L_global``, ``L_align``); each term's epoch mean becomes a
column of the history. The optional ones: ``training_memory()`` (refuse a run that cannot fit
before the first step), ``warmup_epochs`` and ``end_of_warmup()`` (below).

**Warm-up.** A model whose ``warmup_epochs`` is N > 0 (CREATE's graph-only phase) trains N
epochs before the ``epochs`` of its config; they are neither validated nor selected. Every count
the loop gives back is in the unit of ``epochs``, the epochs after the warm-up: ``best_epoch``,
``epochs_trained``, so a retraining with ``epochs: best_epoch`` runs the warm-up and then exactly
those. ``history.csv`` numbers every epoch, warm-up first, and names its ``phase`` (``warmup`` |
``joint``); ``end_of_warmup()``'s columns join the last warm-up row.

Every random choice a model makes while training (shuffling, masking, negatives, SCE projections)
draws from ``generator``, a ``torch.Generator`` on the CPU seeded from the model seed; dropout
draws from torch's global generator, which ``train`` seeds too. Two CPU runs with one seed are
therefore identical, step for step.

``NeuralRecommender`` is a ``Recommender`` that is also a ``TrainableModule``; its ``fit`` builds
the network (the catalog size is known only then) and calls ``train``. A sequential or graph
model starts from its family's base instead (``recbench.sequential``, ``recbench.graph_model``):

    @register("MyModel")
    class MyModel(NeuralRecommender):
        @params_dataclass               # recbench.params: validated by pydantic
        class Params(TrainConfig):      # epochs, batch_size, lr, ... plus the model's own
            dim: Count = 64

        def build(self, train):         # create the layers and the training data
            ...

        def train_batches(self, epoch, generator): ...
        def training_loss(self, batch, generator): ...
        def score(self, batch): ...     # [B, n_items], called in eval mode under no_grad

Per epoch the loop logs (and writes atomically to ``<workdir>/history.csv`` when the model has a
workdir) one row: epoch, train_loss, val_ndcg@10, val_recall@10, seconds. With a validation set it
stops after ``patience`` evaluations without a better NDCG@10 and restores the best weights;
without one it trains exactly ``epochs`` epochs (retraining with a tuned epoch count).

Given ``checkpoints`` (``recbench.checkpoints.Checkpoints``; a NeuralRecommender's
``checkpoints`` attribute) the loop saves its ``TrainState`` there every ``every`` epochs and
on SIGTERM, and a rerun of the same run continues from it, bit for bit on the CPU. For that a
step draws only from ``generator`` and torch's global generator, and ``train_batches`` only from
``generator``: a run resumed inside an epoch redraws its batches from the generator's state at
the epoch's start.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, runtime_checkable

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from recbench.checkpoints import (SIGTERM_STATUS, Checkpoints, EarlyStopping, Interrupted,
                                  SigtermFlag, TrainState, data_digest, identity_of)
from recbench.data.dataset import EvalSet, Interactions
from recbench.errors import TrainingError
from recbench.evaluation import evaluate
from recbench.io import write_csv, write_json
from recbench.memory import Need, Sizes, require_need
from recbench.models import Recommender
from recbench.params import TrainConfig

log = logging.getLogger(__name__)

#: the validation metric that selects the best epoch
SELECT_METRIC = "ndcg@10"
#: steps between two checks of the loss for NaN/inf (one device sync per check)
CHECK_EVERY = 16


@runtime_checkable
class Trainable(Protocol):
    """Every hook ``train`` calls, besides being an ``nn.Module``; ``TrainableModule`` gives the
    optional ones their defaults, so a model writes only the first two."""

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterable:
        """The batches of one epoch, in order (a list: the progress bar counts it)."""

    def training_loss(self, batch, generator: torch.Generator) -> torch.Tensor | dict:
        """One step's loss: a scalar, or {"loss": scalar, term: scalar, ...}."""

    def training_memory(self) -> Need | None:
        """The memory training needs where it grows with the data; ``train`` refuses to start
        (ResourceError) when it does not fit, counting the module's weights and buffers as
        allocated already. None: nothing to check."""

    #: epochs trained before the config's ``epochs``, neither validated nor selected
    warmup_epochs: int

    def end_of_warmup(self) -> dict:
        """Extra columns of the last warm-up epoch's history row, called after its steps."""


class TrainableModule(nn.Module):
    """An ``nn.Module`` with the defaults of ``Trainable``'s optional hooks: no memory check, no
    warm-up. A model's ``state_dict`` is all ``train`` keeps of it (the best epoch's weights), so
    saving and loading a model start here too."""

    warmup_epochs = 0

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterable:
        raise NotImplementedError

    def training_loss(self, batch, generator: torch.Generator) -> torch.Tensor | dict:
        raise NotImplementedError

    def training_memory(self) -> Need | None:
        return None

    def end_of_warmup(self) -> dict:
        return {}


@dataclass
class TrainResult:
    epochs_trained: int  # after the warm-up, the unit of ``epochs``
    best_epoch: int  # the epoch whose weights the model holds after training, in the same unit
    best_metric: float | None  # its val NDCG@10; None without validation
    history: list[dict] = field(default_factory=list)  # one row per epoch, warm-up included


def _autocast(device: torch.device, enabled: bool):
    if enabled:
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return torch.autocast(device_type=device.type, enabled=False)


def _check_finite(state: TrainState, epoch: int, name: str) -> None:
    """Raise TrainingError naming the first step since the last check whose loss is NaN or
    infinite; then those steps count as checked."""
    values = state.losses[state.checked:]
    if values:
        values = torch.stack(values)
        bad = ~torch.isfinite(values)
        if bad.any():
            i = int(bad.nonzero()[0, 0])
            raise TrainingError(
                f"{name}: loss is {values[i].item()} at epoch {epoch}, step "
                f"{state.checked + i + 1}. Training diverged: lower lr, set max_grad_norm (e.g. "
                "1.0), or turn amp off.")
    state.checked = len(state.losses)


def train(module: nn.Module, config: "TrainConfig", **kwargs) -> "TrainResult":
    """Train ``module`` (see ``_train`` for the arguments). On the CPU, deterministic algorithms
    are on while it trains: some backward kernels (index_put with accumulate, used by advanced
    indexing) sum in a thread-dependent order otherwise, and a seeded run must repeat exactly."""
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    if torch.device(kwargs.get("device", "cpu")).type == "cpu" and not previous[0]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _train(module, config, **kwargs)
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _train(
    module: nn.Module,
    config: TrainConfig,
    *,
    valid: EvalSet | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    workdir: str | Path | None = None,
    evaluate_fn: Callable[[], dict[str, float]] | None = None,
    name: str | None = None,
    filter_seen: bool = False,
    checkpoints: Checkpoints | None = None,
    identity: dict | None = None,
    epochs: int | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train ``module`` (see ``Trainable``) with AdamW; return what happened.

    ``evaluate_fn`` returns validation metrics (at least ``ndcg@10``) of the module as it is now;
    by default it is ``recbench.evaluation.evaluate(module, valid, filter_seen=filter_seen)``,
    whose ``ndcg@10`` is that of the configured protocol (``evaluation.filter_seen``). Without
    ``valid`` and without ``evaluate_fn`` the module trains exactly ``config.epochs`` epochs
    (after its warm-up); ``epochs`` overrides that count (0: the warm-up alone).

    ``checkpoints`` (``recbench.checkpoints``): save the run's state there every few epochs and
    on SIGTERM, and resume from it; ``identity`` (JSON-able: the model's parameters, a digest of
    its data) joins the config, seed and device in deciding that a checkpoint is this run's.
    ``on_epoch(row)`` is called with each history row once it is written (a resumed run's
    restored rows first): a tracker follows the curves with it (``recbench.tracking``).
    """
    name = name or type(module).__name__
    device = torch.device(device)
    if not isinstance(module, Trainable):
        raise TypeError(f"{name} does not implement recbench.training.Trainable; subclass "
                        "TrainableModule (or NeuralRecommender) and define train_batches() and "
                        "training_loss().")
    if evaluate_fn is None and valid is not None:
        def evaluate_fn():
            return evaluate(module, valid, batch_size=config.eval_batch_size, device=device,
                            filter_seen=filter_seen)[0]
    amp = config.amp and device.type == "cuda"
    if config.amp and not amp:
        log.info("%s: amp=True ignored on %s (mixed precision is CUDA only)", name, device)
    warmup = module.warmup_epochs
    last = warmup + (config.epochs if epochs is None else epochs)
    torch.manual_seed(seed)  # dropout
    module.to(device)
    # a run that cannot fit (e.g. full CE over a huge catalog) is refused now, not at step one
    require_need(module.training_memory(), device=device, held=module_bytes(module))
    state = TrainState(
        module, torch.optim.AdamW(module.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay),
        torch.amp.GradScaler("cuda", enabled=amp),
        torch.Generator().manual_seed(seed),  # shuffling, masking, negatives
        device, EarlyStopping(config.patience))
    history_path = Path(workdir) / "history.csv" if workdir is not None else None
    if checkpoints is not None:
        # the run's identity: a checkpoint of other settings, seed, device or data is not resumed
        identity = identity_of(**(identity or {}), name=name, seed=seed, device=device.type,
                               validated=evaluate_fn is not None, filter_seen=filter_seen,
                               epochs=last, config={k: v for k, v in dataclasses.asdict(
                                   config).items() if k != "progress"})
        if state.restore(checkpoints, identity):
            log.info("%s: resuming from %s after %s", name, checkpoints.path, state.where)
            if history_path is not None:
                write_csv(history_frame(state.history), history_path)
    on_epoch = on_epoch or (lambda row: None)
    for row in state.history:
        on_epoch(row)

    with SigtermFlag(enabled=checkpoints is not None) as sigterm:
        while state.epoch < last and not state.stopping.stopped:
            epoch, started = state.epoch + 1, time.perf_counter() - state.seconds
            module.train()
            batches = state.draw_batches(lambda g: module.train_batches(epoch, g))
            bar = tqdm(batches, total=state.step + len(batches), initial=state.step,
                       desc=f"{name} epoch {epoch}", unit="step", leave=False,
                       disable=None if config.progress is None else not config.progress)
            for batch in bar:
                state.record(*_step(state, batch, config, amp))
                if state.step % CHECK_EVERY == 0:
                    _check_finite(state, epoch, name)
                    bar.set_postfix(loss=f"{state.losses[-1].item():.4f}")
                if sigterm.received:
                    break
            bar.close()
            state.seconds = time.perf_counter() - started
            if sigterm.received:  # the one place a SIGTERM stops the run: after a whole step
                state.save(checkpoints, identity)
                log.warning("%s: SIGTERM: stopped after %s; checkpoint written to %s, a rerun "
                            "resumes there", name, state.where, checkpoints.path)
                raise Interrupted(SIGTERM_STATUS)
            state.end_epoch(_end_epoch(state, epoch, warmup, last, config.eval_every, evaluate_fn,
                                       name, started))
            if history_path is not None:
                write_csv(history_frame(state.history), history_path)
            on_epoch(state.history[-1])
            if checkpoints is not None and checkpoints.due(epoch):
                state.save(checkpoints, identity)
        if state.stopping.stopped:
            log.info("%s: no better val %s in %d evaluations; stopped early", name,
                     SELECT_METRIC, state.stopping.bad_evals)

    result = _result(state, warmup)
    module.eval()
    log.info("%s: trained %d epochs, best epoch %d (val %s %s)", name, result.epochs_trained,
             result.best_epoch, SELECT_METRIC,
             "n/a" if result.best_metric is None else f"{result.best_metric:.4f}")
    if workdir is not None:
        write_json({"epochs_trained": result.epochs_trained, "best_epoch": result.best_epoch,
                    "best_val_ndcg@10": result.best_metric}, Path(workdir) / "training.json")
    return result


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers (what ``training_memory`` counts as held)."""
    tensors = {id(t): t for t in [*module.parameters(), *module.buffers()]}.values()
    return sum(t.numel() * t.element_size() for t in tensors if t.layout == torch.strided)


def _step(state: TrainState, batch, config: TrainConfig, amp: bool) -> tuple[torch.Tensor, dict]:
    """One optimiser step on ``batch``; returns its loss and its named terms."""
    module, optimizer, scaler = state.module, state.optimizer, state.scaler
    optimizer.zero_grad(set_to_none=True)
    with _autocast(state.device, amp):
        loss = module.training_loss(batch, state.generator)
    terms = {}
    if isinstance(loss, dict):  # {"loss": total, term: value, ...}
        terms = {key: value for key, value in loss.items() if key != "loss"}
        loss = loss["loss"]
    scaler.scale(loss).backward()
    if config.max_grad_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss, terms


def _end_epoch(state: TrainState, epoch: int, warmup: int, last: int, eval_every: int,
               evaluate_fn: Callable | None, name: str, started: float) -> dict:
    """The history row of the epoch whose steps are done: its losses, its validation (every
    ``eval_every``-th epoch after the warm-up, and the ``last``) and the early-stopping update;
    ``started``: when the epoch started, by ``time.perf_counter``."""
    if not state.losses:
        raise TrainingError(f"{name}: epoch {epoch} had no training batch; the training data is "
                            "empty (no user with at least two interactions?).")
    _check_finite(state, epoch, name)
    row = {"epoch": epoch, "train_loss": float(torch.stack(state.losses).mean()),
           **{key: float(torch.stack(values).mean()) for key, values in state.terms.items()},
           "val_ndcg@10": math.nan, "val_recall@10": math.nan, "seconds": math.nan}
    if warmup:
        row["phase"] = "warmup" if epoch <= warmup else "joint"
        if epoch == warmup:
            row.update(state.module.end_of_warmup())
    if evaluate_fn is not None and epoch > warmup and (
            (epoch - warmup) % eval_every == 0 or epoch == last):
        state.module.eval()
        metrics = evaluate_fn()
        row["val_ndcg@10"] = metrics[SELECT_METRIC]
        row["val_recall@10"] = metrics.get("recall@10", math.nan)
        state.stopping.update(metrics[SELECT_METRIC], epoch, state.module)
    row["seconds"] = time.perf_counter() - started
    val = ("no validation" if evaluate_fn is None else "not validated this epoch"
           if math.isnan(row["val_ndcg@10"]) else
           f"val_ndcg@10 {row['val_ndcg@10']:.4f} val_recall@10 {row['val_recall@10']:.4f}")
    log.info("%s epoch %d: train_loss %.4f %s (%.1fs)", name, epoch, row["train_loss"], val,
             row["seconds"])
    return row


def _result(state: TrainState, warmup: int) -> TrainResult:
    """What happened, counted after the warm-up; the module holds the best epoch's weights (with
    validation) or the last one's."""
    stopping, trained = state.stopping, state.epoch - warmup
    if stopping.best_state is None:  # no validation: the last epoch's weights
        return TrainResult(trained, trained, None, state.history)
    state.module.load_state_dict(stopping.best_state)
    return TrainResult(trained, stopping.best_epoch - warmup, stopping.best_metric, state.history)


def history_frame(history: list[dict]) -> pd.DataFrame:
    """One row per epoch: epoch, train_loss, the loss terms (L_*), then validation and the rest."""
    frame = pd.DataFrame(history)
    terms = [c for c in frame.columns if c.startswith("L_")]
    head = [c for c in ("epoch", "train_loss") if c in frame] + terms
    return frame[head + [c for c in frame.columns if c not in head]]


class NeuralRecommender(Recommender, TrainableModule):
    """A Recommender that is an nn.Module trained by ``train``. Its Params subclass TrainConfig.

    Subclasses implement ``build(train)`` (create layers and training tensors, seeded),
    ``train_batches``, ``training_loss`` and ``score``. After ``fit``: ``train_result``,
    ``epochs_trained`` and ``best_epoch``. A model family whose memory grows with the data
    writes ``memory_need`` (from the Params and the data's ``Sizes`` alone, no model built), which
    ``fit`` checks before it builds anything and ``train`` before the first step.
    """

    def __init__(self, params, *, seed: int = 0, device: str = "cpu", workdir: Path | None = None,
                 eval_filter_seen: bool = False):
        nn.Module.__init__(self)
        Recommender.__init__(self, params, seed=seed, device=device, workdir=workdir,
                             eval_filter_seen=eval_filter_seen)
        self.train_result: TrainResult | None = None
        #: where ``fit`` checkpoints and resumes (``recbench.checkpoints``); None: it does not
        self.checkpoints: Checkpoints | None = None
        #: called with each epoch's history row (``train``'s ``on_epoch``); None: nothing
        self.on_epoch: Callable[[dict], None] | None = None

    def build(self, train: Interactions) -> None:
        raise NotImplementedError

    @classmethod
    def memory_need(cls, params, sizes: Sizes, *, device=None, available: int | None = None,
                    positions: int | None = None) -> Need | None:
        """What training on data of ``sizes`` needs, with the fix naming what fits in
        ``available`` bytes (default: what ``device`` has free now); ``positions``: the most a
        batch scores, when the windows are known. None: nothing to check."""
        return None

    def max_positions(self) -> int | None:
        """The most positions a batch scores, once built (None: not known)."""
        return None

    def training_memory(self) -> Need | None:
        """``memory_need`` of the data ``fit`` was given (None before ``fit``)."""
        sizes = getattr(self, "data_sizes", None)
        if sizes is None:
            return None
        return self.memory_need(self.params, sizes, device=self.device,
                                positions=self.max_positions())

    def fit(self, train: Interactions, valid: EvalSet | None = None) -> None:
        self.data_sizes = None if train is None else Sizes.of(train)
        # at job start: a run that cannot fit stops before the model (and its graph) is built
        require_need(self.training_memory(), device=self.device)
        torch.manual_seed(self.seed)  # weight initialisation
        self.build(train)
        identity = None
        if self.checkpoints is not None:  # a checkpoint resumes only the same model on this data
            data = [train.users, train.items, train.timestamps, [train.n_users, train.n_items]]
            if valid is not None:
                data += [valid.users, valid.offsets, valid.items, valid.targets, [valid.n_items]]
            params = {k: v for k, v in dataclasses.asdict(self.params).items() if k != "progress"}
            identity = {"model": self.registry_name, "params": params, "data": data_digest(*data)}
        self.train_result = train_model(self, valid, identity)

    def fitted_state(self) -> dict:
        """The weights (``state_dict``) and what training did (``train_result``)."""
        if self.train_result is None:
            raise TrainingError(f"{self.registry_name} is not fitted: nothing to save")
        return {"state_dict": self.state_dict(),
                "train_result": dataclasses.asdict(self.train_result)}

    def load_fitted_state(self, state: dict, train: Interactions) -> None:
        """Rebuild the layers (and training graph) from ``train``, then load the weights."""
        torch.manual_seed(self.seed)
        self.build(train)
        self.load_state_dict(state["state_dict"])
        self.train_result = TrainResult(**state["train_result"])
        self.to(self.device)
        self.eval()

    @property
    def epochs_trained(self) -> int | None:
        return None if self.train_result is None else self.train_result.epochs_trained

    @property
    def best_epoch(self) -> int | None:
        return None if self.train_result is None else self.train_result.best_epoch


def train_model(model: NeuralRecommender, valid: EvalSet | None = None,
                identity: dict | None = None) -> TrainResult:
    """``train`` with a NeuralRecommender's own config, seed, device, workdir, checkpoints,
    ``on_epoch`` and the evaluation protocol early stopping selects on (``eval_filter_seen``,
    given at construction)."""
    return train(model, model.params.train_config(), valid=valid, seed=model.seed,
                 device=model.device, workdir=model.workdir, name=model.registry_name,
                 filter_seen=model.eval_filter_seen, checkpoints=model.checkpoints,
                 identity=identity, on_epoch=model.on_epoch)
