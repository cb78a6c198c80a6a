"""Aggregate per-seed metrics and render Table 2 beside the paper's published numbers.

Layout as in the paper: (dataset, metric) rows, model columns, values in %. Each cell is
"mean ± 95% CI" over seeds (Student t), followed by the paper's value in brackets where the
dataset is one of the paper's. A model without results is absent: never a placeholder number.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from recbench.stats import mean_ci

METRICS = ("ndcg@10", "recall@10", "coverage@10", "ndcg@100", "recall@100", "coverage@100")
PAPER_METRIC = {"ndcg@10": "NDCG@10", "recall@10": "Recall@10", "coverage@10": "Coverage@10",
                "ndcg@100": "NDCG@100", "recall@100": "Recall@100", "coverage@100": "Coverage@100"}
PAPER_MODEL_ORDER = ("SASRec", "BERT4Rec", "MRGSRec", "SVD", "Random", "PopRnd", "LightGCN",
                     "UltraGCN", "CREATE")


def published(table: str) -> pd.DataFrame:
    """A table of the paper's published numbers (see recbench/published/README.md)."""
    with resources.files("recbench.published").joinpath(table).open() as f:
        return pd.read_csv(f)


def collect(metric_files: list[str | Path]) -> pd.DataFrame:
    """Read results/<dataset>/<model>/seed<seed>/metrics.json files into one long frame."""
    rows = []
    for f in metric_files:
        f = Path(f)
        seed_dir, model_dir, dataset_dir = f.parent, f.parent.parent, f.parent.parent.parent
        values = json.loads(f.read_text())
        for metric in METRICS:
            rows.append({"dataset": dataset_dir.name, "model": model_dir.name,
                         "seed": int(seed_dir.name.removeprefix("seed")), "metric": metric,
                         "value": float(values[metric])})
    return pd.DataFrame(rows, columns=["dataset", "model", "seed", "metric", "value"])


def summarise(long: pd.DataFrame, paper_names: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (dataset, metric, model): mean and CI half-width in %, seeds, paper value."""
    paper = published("table2.csv")
    paper_names = paper_names or {}
    rows = []
    for (dataset, metric, model), g in long.groupby(["dataset", "metric", "model"], sort=False):
        mean, ci = mean_ci(g["value"].to_numpy() * 100.0)
        ref = paper[(paper.dataset == paper_names.get(dataset)) & (paper.metric == PAPER_METRIC[metric])
                    & (paper.model == model)]
        rows.append({"dataset": dataset, "metric": metric, "model": model, "mean_pct": mean,
                     "ci95_pct": ci, "n_seeds": len(g),
                     "paper_pct": float(ref.value_pct.iloc[0]) if len(ref) else math.nan})
    return pd.DataFrame(rows)


def model_order(models: list[str]) -> list[str]:
    """The paper's column order first, then any other model in config order."""
    known = [m for m in PAPER_MODEL_ORDER if m in models]
    return known + [m for m in models if m not in known]


def _cell(row) -> str:
    text = f"{row.mean_pct:.2f}"
    if not math.isnan(row.ci95_pct):
        text += f" ± {row.ci95_pct:.2f}"
    if not math.isnan(row.paper_pct):
        text += f" [{row.paper_pct:.2f}]"
    return text


def render_table2(summary: pd.DataFrame, datasets: list[str], models: list[str]) -> str:
    models = model_order([m for m in models if m in set(summary.model)])
    lines = ["# Table 2: model comparison (values in %)", ""]
    seeds = sorted(set(summary.n_seeds))
    lines.append(
        "Each cell: mean ± 95% confidence half-width over seeds (Student t; "
        f"seeds per cell: {', '.join(map(str, seeds))}), then the paper's published value in "
        "[brackets] where the dataset is one of the paper's. NDCG and Recall use one target per "
        "test user; Coverage@K = distinct items in all top-K lists / catalog size."
    )
    lines.append("")
    table = []
    for dataset in datasets:
        for metric in METRICS:
            sub = summary[(summary.dataset == dataset) & (summary.metric == metric)].set_index("model")
            if sub.empty:
                continue
            row = [dataset, PAPER_METRIC[metric]]
            row += [_cell(sub.loc[m]) if m in sub.index else "" for m in models]
            table.append(row)
    lines.append(tabulate(table, headers=["Dataset", "Metric", *models], tablefmt="github"))
    lines.append("")
    lines.append("Published numbers: arXiv 2602.23471, Table 2 (recbench/published/table2.csv).")
    return "\n".join(lines) + "\n"
