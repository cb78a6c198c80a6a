"""Builders shared by the SASRec and BERT4Rec tests: a small synthetic split and one fit."""

from __future__ import annotations

from pathlib import Path

from recbench.data.dataset import SplitData, load_split, save_split
from recbench.data.split import GlobalTemporalSplit, index_split
from recbench.data.synthetic import SyntheticConfig, generate
from recbench.evaluation import evaluate
from recbench.models import build_model

#: smaller than the default data (2000 x 2000) with the same planted signals (order included)
SEQ_DATA = SyntheticConfig(n_users=600, n_items=400, n_communities=5, mean_length=25, seed=11)

#: short budgets for learning tests on 2 CPU cores
#: (BERT4Rec sits on a plateau for a few epochs early on, hence patience 8)
FAST = {"dim": 64, "max_len": 20, "epochs": 60, "patience": 8, "batch_size": 64, "lr": 0.005,
        "progress": False}


def make_split(folder: str | Path, cfg: SyntheticConfig = SEQ_DATA) -> SplitData:
    """generate -> global temporal split -> index -> save -> load, in ``folder``."""
    save_split(index_split(GlobalTemporalSplit().split(generate(cfg))), folder)
    return load_split(folder)


def fit_and_test(name: str, data: SplitData, params: dict | None = None, seed: int = 0, **kw):
    """Fit on train (early stopping on valid, as the runner does); return (model, metrics, per_user)."""
    model = build_model(name, params or {}, seed=seed, **kw)
    model.fit(data.train, data.valid)
    metrics, per_user = evaluate(model, data.test)
    return model, metrics, per_user


def beside_baselines(name: str, data: SplitData, params: dict) -> dict[str, dict]:
    """Test metrics of ``name`` fitted with ``params`` and of PopRnd and SVD on ``data``."""
    out = {baseline: fit_and_test(baseline, data)[1] for baseline in ("PopRnd", "SVD")}
    model, out[name], _ = fit_and_test(name, data, params)
    print(f"\n{name}: {model.epochs_trained} epochs, best {model.best_epoch}; test NDCG@10 "
          + ", ".join(f"{k} {v['ndcg@10']:.4f}" for k, v in out.items()))
    return out
