"""results/table2.md: Table 2 (every model on every dataset, mean ± 95% CI over seeds) beside
the paper's published numbers, with the paired tests against the reference and the Gain row."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from recbench.canonical import model_order
from recbench.evaluation import other_protocol
from recbench.reporting.common import (METRICS, PAPER_CLAIMS, PAPER_METRIC, PROTOCOL_TEXT,
                                       configured_rows, gain_pct, reading_lines)


def _cell(row) -> str:
    text = f"{row.mean_pct:.2f}"
    if not math.isnan(row.ci95_pct):
        text += f" ± {row.ci95_pct:.2f}"
    if bool(row.get("significant", False)):
        text += "*"
    if not math.isnan(row.paper_pct):
        text += f" [{row.paper_pct:.2f}]"
    return text


def _gain_cell(summary, dataset, metric) -> str:
    ours, paper = (gain_pct(summary, dataset, metric, column=c) for c in ("mean_pct", "paper_pct"))
    if math.isnan(ours):
        return ""
    return f"{ours:+.0f}%" + ("" if math.isnan(paper) else f" [{paper:+.0f}%]")


CORRECTION_TEXT = {"holm": "after Holm's correction", "bonferroni": "after Bonferroni's correction",
                   "none": "without correction for multiple comparisons"}


def render_table2(summary: pd.DataFrame, datasets: list[str], models: list[str],
                  readings: dict | None = None) -> str:
    """Table 2 in the configured protocol; its caption says which, how `*` is corrected and,
    with ``readings``, which reading of a model was chosen on validation."""
    full = summary
    summary = configured_rows(summary)
    models = model_order([m for m in models if m in set(summary.model)])
    gain_of, gain_over = PAPER_CLAIMS["model"], PAPER_CLAIMS["baseline"]
    with_gain = {gain_of, gain_over} <= set(models)
    lines = ["# Table 2: model comparison (values in %)", ""]
    seeds = sorted(set(summary.n_seeds))
    lines.append(
        "Each cell: mean ± 95% confidence half-width over seeds (Student t; "
        f"seeds per cell: {', '.join(map(str, seeds))}), then the paper's published value in "
        "[brackets] where the dataset is one of the paper's. NDCG and Recall use one target per "
        "test user; Coverage@K = distinct items in all top-K lists / catalog size."
        + (f" Gain: {gain_of} over {gain_over}, relative difference of the means (the paper's "
           "in brackets)." if with_gain else "")
    )
    if "protocol" in summary and len(summary):
        protocol = summary.protocol.iloc[0]
        other = other_protocol(protocol)
        lines[-1] += (f" Protocol: {PROTOCOL_TEXT[protocol]}."
                      + (f" table2.csv also holds the {other} protocol's numbers (same scores, "
                         f"rows with protocol = {other})." if (full.protocol == other).any()
                         else ""))
    if "p_value" in summary and summary.p_value.notna().any():
        ref = summary.reference.dropna().iloc[0]
        test = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}.get(
            summary.test.dropna().iloc[0], summary.test.dropna().iloc[0])
        correction = (summary.correction.dropna().iloc[0] if "correction" in summary
                      and summary.correction.notna().any() else "none")
        alpha = float(summary.alpha.dropna().iloc[0]) if "alpha" in summary else 0.05
        family = (" across the models of each (dataset, metric) row" if correction != "none"
                  else "")
        lines[-1] += (f" `*`: differs from {ref} at the {100 * alpha:g}% level "
                      f"{CORRECTION_TEXT[correction]}{family} ({test} on the per-user values of "
                      "the same test users, averaged over seeds; raw p_value and corrected "
                      "p_adjusted in table2.csv).")
    lines += reading_lines(readings, datasets)
    lines.append("")
    table = []
    for dataset in datasets:
        for metric in METRICS:
            sub = summary[(summary.dataset == dataset) & (summary.metric == metric)].set_index("model")
            if sub.empty:
                continue
            row = [dataset, PAPER_METRIC[metric]]
            row += [_cell(sub.loc[m]) if m in sub.index else "" for m in models]
            if with_gain:
                row.append(_gain_cell(summary, dataset, metric))
            table.append(row)
    headers = ["Dataset", "Metric", *models] + (["Gain"] if with_gain else [])
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines.append("")
    lines.append("Published numbers: arXiv 2602.23471, Table 2 (recbench/published/table2.csv).")
    lines += _paper_differences(summary, datasets, models)
    return "\n".join(lines) + "\n"


def _paper_differences(summary: pd.DataFrame, datasets: list[str], models: list[str]) -> list[str]:
    """Ours minus the paper's, in percentage points, for the paper's datasets."""
    if summary.paper_pct.isna().all():
        return []
    table = []
    for dataset in datasets:
        for metric in METRICS:
            sub = summary[(summary.dataset == dataset) & (summary.metric == metric)].set_index("model")
            if sub.empty or sub.paper_pct.isna().all():
                continue
            table.append([dataset, PAPER_METRIC[metric]] + [
                f"{sub.loc[m].mean_pct - sub.loc[m].paper_pct:+.2f}"
                if m in sub.index and not math.isnan(sub.loc[m].paper_pct) else "" for m in models])
    return ["", "## Difference from the paper (ours − published, percentage points)", "",
            tabulate(table, headers=["Dataset", "Metric", *models], tablefmt="github"), "",
            "Each cell's verdict against the paper's (reproduced, ours higher, ours lower or "
            "undecided, against a stated margin), the paper's claims and the test users and seeds "
            "needed to detect its Gain: results/reproduction.md."]
