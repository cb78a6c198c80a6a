"""The shared training loop: divergence errors, early stopping, history files, repeatability.

(tests/recbench/test_training.py covers the basics; these add the rest of the contract.)
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recbench.errors import ConfigError, TrainingError
from recbench.training import CHECK_EVERY, TrainableModule, TrainConfig, train


class Regression(TrainableModule):
    """Linear regression on fixed random data, shuffled by the loop's generator, with dropout."""

    def __init__(self, n=256, batch=32, bad_step=None, bad_value=float("nan")):
        super().__init__()
        torch.manual_seed(0)  # weight init (NeuralRecommender.fit seeds before build likewise)
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 8, generator=g)
        self.y = self.x @ torch.randn(8, generator=g)
        self.lin = nn.Linear(8, 1)
        self.drop = nn.Dropout(0.1)
        self.batch, self.bad_step, self.bad_value, self.steps = batch, bad_step, bad_value, 0

    def train_batches(self, epoch, generator):
        return list(torch.randperm(len(self.x), generator=generator).split(self.batch))

    def training_loss(self, idx, generator):
        self.steps += 1
        loss = (self.lin(self.drop(self.x[idx])).squeeze(1) - self.y[idx]).pow(2).mean()
        return loss * self.bad_value if self.steps == self.bad_step else loss


def cfg(**kw):
    return TrainConfig(**{"epochs": 5, "lr": 0.05, "progress": False, **kw})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_diverged_loss_names_its_epoch_and_step(bad):
    steps_per_epoch = 256 // 8  # 32 > CHECK_EVERY: the failing step lies after a check point
    bad_step = steps_per_epoch + CHECK_EVERY + 3  # epoch 2, step CHECK_EVERY + 3
    model = Regression(batch=8, bad_step=bad_step, bad_value=bad)
    with pytest.raises(TrainingError, match=f"epoch 2, step {CHECK_EVERY + 3}\\b"):
        train(model, cfg())


def test_two_runs_with_one_seed_are_identical():
    runs = []
    for _ in range(2):
        model = Regression()
        result = train(model, cfg(), seed=7)
        runs.append(([r["train_loss"] for r in result.history], model.lin.weight.detach().clone()))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    other = Regression()
    train(other, cfg(), seed=8)
    assert not torch.equal(other.lin.weight, runs[0][1])


def test_history_csv_and_training_json_are_written(tmp_path):
    metrics = iter([0.2, 0.4, 0.3])

    def evaluate_fn():
        return {"ndcg@10": next(metrics), "recall@10": 0.5}

    result = train(Regression(), cfg(epochs=3), evaluate_fn=evaluate_fn, workdir=tmp_path)
    hist = pd.read_csv(tmp_path / "history.csv")
    assert list(hist.columns) == ["epoch", "train_loss", "val_ndcg@10", "val_recall@10", "seconds"]
    assert hist["epoch"].tolist() == [1, 2, 3]
    assert hist["val_ndcg@10"].tolist() == [0.2, 0.4, 0.3]
    assert (hist["seconds"] > 0).all() and hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    info = json.loads((tmp_path / "training.json").read_text())
    assert info == {"epochs_trained": 3, "best_epoch": 2, "best_val_ndcg@10": 0.4}
    assert (result.epochs_trained, result.best_epoch) == (3, 2)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_patience_counts_evaluations_and_eval_every_skips_epochs():
    calls = []

    def evaluate_fn():
        calls.append(1)
        return {"ndcg@10": 0.5 if len(calls) == 1 else 0.1}

    result = train(Regression(), cfg(epochs=20, eval_every=2, patience=2), evaluate_fn=evaluate_fn)
    # evaluations at epochs 2, 4, 6: best at 2, two worse ones -> stop after epoch 6
    assert len(calls) == 3 and result.best_epoch == 2 and result.epochs_trained == 6
    assert np.isnan(result.history[0]["val_ndcg@10"]) and result.history[1]["val_ndcg@10"] == 0.5


def test_the_log_says_which_epochs_were_validated(caplog):
    caplog.set_level("INFO", logger="recbench.training")
    train(Regression(), cfg(epochs=2, eval_every=2),
          evaluate_fn=lambda: {"ndcg@10": 0.5, "recall@10": 0.25})
    train(Regression(), cfg(epochs=1))  # a retraining: no validation set at all
    lines = [r.getMessage() for r in caplog.records if ": train_loss " in r.getMessage()]
    assert "not validated this epoch" in lines[0] and "val_ndcg@10 0.5000" in lines[1]
    assert "no validation" in lines[2]
    assert not any("nan" in line for line in lines), lines


def test_without_patience_all_epochs_run_and_the_best_weights_return():
    snapshots, values = [], iter([0.1, 0.9, 0.2, 0.3])
    model = Regression()

    def evaluate_fn():
        snapshots.append(model.lin.weight.detach().clone())
        return {"ndcg@10": next(values)}

    result = train(model, cfg(epochs=4, patience=None), evaluate_fn=evaluate_fn)
    assert result.epochs_trained == 4 and result.best_epoch == 2 and result.best_metric == 0.9
    assert torch.equal(model.lin.weight, snapshots[1])
    assert not model.training  # left in eval mode for scoring


def test_without_validation_exactly_epochs_run():
    result = train(Regression(), cfg(epochs=3, patience=1))
    assert result.epochs_trained == 3 and result.best_epoch == 3 and result.best_metric is None
    assert all(np.isnan(r["val_ndcg@10"]) for r in result.history)


def test_amp_is_ignored_on_cpu_and_clipping_runs():
    plain, amp = Regression(), Regression()
    train(plain, cfg(), seed=1)
    train(amp, cfg(amp=True), seed=1)
    assert torch.equal(plain.lin.weight, amp.lin.weight)
    clipped = Regression()
    train(clipped, cfg(max_grad_norm=1e-3), seed=1)
    assert not torch.equal(clipped.lin.weight, plain.lin.weight)


def test_bad_settings_and_modules_are_named():
    with pytest.raises(ConfigError, match=r"^TrainConfig\.lr must be > 0, got 0 \(int\)"):
        train(Regression(), cfg(lr=0))
    with pytest.raises(ConfigError, match=r"^TrainConfig\.patience must be >= 1 or null, got 0 "):
        train(Regression(), cfg(patience=0))
    with pytest.raises(TypeError, match="Linear does not implement recbench.training.Trainable"):
        train(nn.Linear(2, 2), cfg())


class HistoryFirst(Regression):
    """Validation scores that change with the epoch: at epoch 1 the three history items top
    every list and the target comes next (NDCG@10 1/log2(5) unfiltered, 1 filtered); from epoch 2
    on an unseen item comes first, then the target, the history last (1/log2(3) in both)."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def train_batches(self, epoch, generator):
        self.epoch = epoch
        return super().train_batches(epoch, generator)

    def score(self, batch):
        scores = torch.zeros(len(batch.lengths), 30)
        history = torch.zeros_like(scores).scatter_(1, batch.items.clamp(max=29), 1.0).bool()
        if self.epoch == 1:
            scores[history] = 10.0
            scores[:, 0] = 5.0
        else:
            scores[:, 1] = 10.0
            scores[:, 0] = 5.0
        return scores


def history_first_valid():
    from recbench.data.dataset import EvalSet

    return EvalSet(users=np.arange(4), offsets=np.arange(5) * 3, items=np.tile([5, 6, 7], 4),
                   targets=np.zeros(4, dtype=np.int64), n_items=30)


@pytest.mark.parametrize("filter_seen, best_epoch", [(False, 2), (True, 1)])
def test_early_stopping_selects_on_the_configured_protocol(filter_seen, best_epoch):
    result = train(HistoryFirst(), cfg(epochs=3, patience=None), valid=history_first_valid(),
                   filter_seen=filter_seen)
    assert result.best_epoch == best_epoch
    expected = 1.0 if filter_seen else 1 / np.log2(3)
    assert result.best_metric == pytest.approx(expected)


def test_neural_models_early_stop_on_their_eval_filter_seen(monkeypatch):
    """train_model hands the protocol the model was built with (eval_filter_seen) to the loop."""
    from recbench import training

    seen = []
    monkeypatch.setattr(training, "train", lambda *a, **kw: seen.append(kw["filter_seen"]))

    class Model(training.NeuralRecommender):
        Params = TrainConfig

        def build(self, train):
            pass

    for flag in (False, True):
        Model(TrainConfig(), eval_filter_seen=flag).fit(None, history_first_valid())
    assert seen == [False, True]


class WithUntouched(Regression):
    """Regression plus a parameter the loss reaches with a zero gradient, and one it never
    reaches (its .grad stays None)."""

    def __init__(self):
        super().__init__()
        self.zero_gradient = nn.Parameter(torch.full((3,), 2.0))
        self.no_gradient = nn.Parameter(torch.full((3,), 2.0))

    def training_loss(self, idx, generator):
        return super().training_loss(idx, generator) + 0.0 * self.zero_gradient.sum()


def test_weight_decay_is_decoupled_and_shrinks_an_untouched_parameter_by_lr_wd_per_step():
    """AdamW: w <- w (1 - lr wd) each step whatever the gradient (Adam's own step is 0 for a zero
    gradient); a parameter without a gradient is skipped (so CREATE's warm-up leaves the
    transformer bit-identical even with decay)."""
    lr, wd, epochs = 0.05, 0.1, 2
    model = WithUntouched()
    train(model, cfg(epochs=epochs, lr=lr, weight_decay=wd), seed=0)
    steps = epochs * len(model.train_batches(1, torch.Generator()))
    torch.testing.assert_close(model.zero_gradient.detach(),
                               torch.full((3,), 2.0) * (1 - lr * wd) ** steps, rtol=1e-6, atol=0)
    assert torch.equal(model.no_gradient.detach(), torch.full((3,), 2.0))
    plain = WithUntouched()
    train(plain, cfg(epochs=epochs, lr=lr), seed=0)
    assert torch.equal(plain.zero_gradient.detach(), torch.full((3,), 2.0))  # no decay by default


def test_max_grad_norm_caps_the_global_gradient_norm_at_every_step():
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    def run(max_grad_norm):
        norms = []

        def hook(optimizer, args, kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                     if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

        handle = register_optimizer_step_pre_hook(hook)
        try:
            train(Regression(), cfg(epochs=1, max_grad_norm=max_grad_norm), seed=1)
        finally:
            handle.remove()
        return norms

    free, capped = run(None), run(0.5)
    assert max(free) > 2.0  # the gradients this run would take unclipped
    assert max(capped) <= 0.5 * (1 + 1e-5)
    assert capped[0] == pytest.approx(0.5, rel=1e-5)  # clipped to the cap, not below it


class WarmedRegression(Regression):
    """Regression with two warm-up epochs, which record what the loop asked of them."""

    warmup_epochs = 2

    def __init__(self):
        super().__init__()
        self.epochs_drawn, self.ended = [], 0

    def train_batches(self, epoch, generator):
        self.epochs_drawn.append(epoch)
        return super().train_batches(epoch, generator)

    def end_of_warmup(self):
        self.ended += 1
        return {"warm_metric": 0.25}


def test_warmup_epochs_come_first_unvalidated_and_counts_are_in_epochs_after_them():
    calls, values = [], iter([0.2, 0.9, 0.1])
    model = WarmedRegression()

    def evaluate_fn():
        calls.append(len(model.epochs_drawn))  # the epoch being validated
        return {"ndcg@10": next(values)}

    result = train(model, cfg(epochs=3, patience=None), evaluate_fn=evaluate_fn)
    assert model.epochs_drawn == [1, 2, 3, 4, 5] and calls == [3, 4, 5]  # warm-up not validated
    assert [r["phase"] for r in result.history] == ["warmup"] * 2 + ["joint"] * 3
    assert model.ended == 1 and result.history[1]["warm_metric"] == 0.25
    assert "warm_metric" not in result.history[0] and "warm_metric" not in result.history[2]
    # the best epoch is the second after the warm-up (history row 4), in the unit of `epochs`
    assert (result.best_epoch, result.epochs_trained, result.best_metric) == (2, 3, 0.9)
    alone = WarmedRegression()
    assert train(alone, cfg(epochs=3), epochs=0).epochs_trained == 0  # the warm-up alone
    assert alone.epochs_drawn == [1, 2] and alone.ended == 1


def test_a_model_without_warmup_has_no_phase_column():
    result = train(Regression(), cfg(epochs=2))
    assert all("phase" not in row for row in result.history)
