"""Aggregate per-seed metrics and render Table 2 beside the paper's published numbers.

Layout as in the paper: (dataset, metric) rows, model columns, values in %. Each cell is
"mean ± 95% CI" over seeds (Student t), followed by the paper's value in brackets where the
dataset is one of the paper's. A model without results is absent: never a placeholder number.

Every run is evaluated in both protocols (recbench.evaluation: history items filtered or not);
table2.csv holds both, one ``protocol`` per row and ``configured`` true for the configured one
(``evaluation.filter_seen``), which table2.md shows. results/reproduction.md says, cell by
cell, whether the paper's value lies inside our interval.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from recbench.errors import DataError
from recbench.evaluation import PROTOCOLS, other_protocol
from recbench.stats import adjust_pvalues, mean_ci, paired_per_user, paired_test

METRICS = ("ndcg@10", "recall@10", "coverage@10", "ndcg@100", "recall@100", "coverage@100")
PAPER_METRIC = {"ndcg@10": "NDCG@10", "recall@10": "Recall@10", "coverage@10": "Coverage@10",
                "ndcg@100": "NDCG@100", "recall@100": "Recall@100", "coverage@100": "Coverage@100"}
PAPER_MODEL_ORDER = ("SASRec", "BERT4Rec", "MRGSRec", "SVD", "Random", "PopRnd", "LightGCN",
                     "UltraGCN", "CREATE")


def published(table: str) -> pd.DataFrame:
    """A table of the paper's published numbers (see recbench/published/README.md)."""
    with resources.files("recbench.published").joinpath(table).open() as f:
        return pd.read_csv(f, keep_default_na=False, na_values=[""])  # "None" is a method


def collect(metric_files: list[str | Path], both: bool = False,
            configured: str | None = None) -> pd.DataFrame:
    """Read results/<dataset>/<model>/seed<seed>/metrics.json files into one long frame.

    By default the configured protocol's metrics only (the six top-level keys). ``both``: both
    protocols, with columns ``protocol`` and ``configured`` (true for the file's configured
    one). ``configured`` (a protocol name): every file must have been evaluated with it as the
    configured protocol, else DataError.
    """
    rows = []
    for f in metric_files:
        f = Path(f)
        seed_dir, model_dir, dataset_dir = f.parent, f.parent.parent, f.parent.parent.parent
        values = json.loads(f.read_text())
        key = {"dataset": dataset_dir.name, "model": model_dir.name,
               "seed": int(seed_dir.name.removeprefix("seed"))}
        own = values.get("protocol")
        if (both or configured) and own not in PROTOCOLS:
            raise DataError(f"{f} has no evaluation protocol (it predates the evaluation of both "
                            "protocols); rerun its job (snakemake --forcerun train_evaluate) or "
                            "delete the file.")
        if configured and own != configured:
            raise DataError(f"{f} was evaluated with {own} as its configured protocol, but the "
                            f"config asks for {configured} (evaluation.filter_seen); rerun its "
                            "job (snakemake --forcerun train_evaluate).")
        blocks = {own: values}
        if both:
            blocks[other_protocol(own)] = values[other_protocol(own)]
        for protocol, block in blocks.items():
            extra = {"protocol": protocol, "configured": protocol == own} if both else {}
            for metric in METRICS:
                rows.append({**key, **extra, "metric": metric, "value": float(block[metric])})
    columns = ["dataset", "model", "seed", *(["protocol", "configured"] if both else []),
               "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def summarise(long: pd.DataFrame, paper_names: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (dataset, metric, model): mean and CI half-width in %, seeds, the paper's
    value and its ± (``paper_pm_pct``, 0 where the paper gives none). With ``protocol`` in
    ``long`` (collect(both=True)), one row per (dataset, protocol, metric, model)."""
    paper = published("table2.csv")
    paper_names = paper_names or {}
    keys = ["dataset", "protocol", "metric", "model"] if "protocol" in long else [
        "dataset", "metric", "model"]
    rows = []
    for values, g in long.groupby(keys, sort=False):
        row = dict(zip(keys, values))
        dataset, metric, model = row["dataset"], row["metric"], row["model"]
        if "configured" in long:
            row["configured"] = bool(g.configured.iloc[0])
        mean, ci = mean_ci(g["value"].to_numpy() * 100.0)
        ref = paper[(paper.dataset == paper_names.get(dataset)) & (paper.metric == PAPER_METRIC[metric])
                    & (paper.model == model)]
        pm = float(ref.plusminus_pct.iloc[0]) if len(ref) else math.nan
        rows.append({**row, "mean_pct": mean, "ci95_pct": ci, "n_seeds": len(g),
                     "paper_pct": float(ref.value_pct.iloc[0]) if len(ref) else math.nan,
                     "paper_pm_pct": 0.0 if len(ref) and math.isnan(pm) else pm})
    return pd.DataFrame(rows)


#: metrics with a per-user value (per_user.parquet), hence a paired test; coverage has none
PER_USER_METRICS = ("ndcg@10", "recall@10", "ndcg@100", "recall@100")


def significance(per_user_files: list[str | Path], reference: str, method: str = "ttest",
                 metrics: tuple[str, ...] = PER_USER_METRICS, configured: str | None = None,
                 correction: str = "holm") -> pd.DataFrame:
    """Paired test of every model against ``reference`` on the same test users, per dataset.

    Per-user values are averaged over the seeds of each model first (recbench.stats).
    Returns one row per (dataset, model, metric) with the raw ``p_value`` and ``p_adjusted``,
    corrected (``correction``: holm, bonferroni or none) across the models of each (dataset,
    metric) row of Table 2, the family of comparisons with the reference that row makes.
    ``configured`` (the per-user files' configured protocol, see recbench.evaluation): both
    protocols are tested, each its own family, with a ``protocol`` column.
    """
    tables: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for f in map(Path, per_user_files):
        tables.setdefault((f.parent.parent.parent.name, f.parent.parent.name), []).append(
            pd.read_parquet(f))
    rows = []
    for (dataset, model), frames in tables.items():
        ref = tables.get((dataset, reference))
        if model == reference or ref is None:
            continue
        protocols = {None: ""} if configured is None else {
            configured: "", other_protocol(configured): f"{other_protocol(configured)}/"}
        for protocol, prefix in protocols.items():
            for metric in metrics:
                a, b = paired_per_user(frames, ref, prefix + metric)
                test = paired_test(a, b, method)
                rows.append({"dataset": dataset, "protocol": protocol, "model": model,
                             "metric": metric, "reference": reference, "test": method,
                             "p_value": test.pvalue})
    out = pd.DataFrame(rows, columns=["dataset", "protocol", "model", "metric", "reference", "test",
                                      "p_value"])
    if configured is None:
        out = out.drop(columns="protocol")
    family = ["dataset", "metric"] + ([] if configured is None else ["protocol"])
    out["correction"] = correction
    out["p_adjusted"] = out.p_value
    for _, g in out.groupby(family, sort=False):
        out.loc[g.index, "p_adjusted"] = adjust_pvalues(g.p_value.to_numpy(), correction)
    return out


def add_significance(summary: pd.DataFrame, tests: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """``summary`` with p_value, p_adjusted, significant (adjusted p < alpha) and
    diff_from_paper_pct columns."""
    keys = [k for k in ("dataset", "protocol", "model", "metric") if k in tests and k in summary]
    out = summary.merge(tests, on=keys, how="left")
    if "p_adjusted" not in out:  # tests from an older significance(): no correction
        out["p_adjusted"] = out.p_value
    out["alpha"] = alpha
    out["significant"] = out.p_adjusted < alpha
    out["diff_from_paper_pct"] = out.mean_pct - out.paper_pct
    return out


def model_order(models: list[str]) -> list[str]:
    """The paper's column order first, then any other model in config order."""
    known = [m for m in PAPER_MODEL_ORDER if m in models]
    return known + [m for m in models if m not in known]


def _cell(row) -> str:
    text = f"{row.mean_pct:.2f}"
    if not math.isnan(row.ci95_pct):
        text += f" ± {row.ci95_pct:.2f}"
    if bool(row.get("significant", False)):
        text += "*"
    if not math.isnan(row.paper_pct):
        text += f" [{row.paper_pct:.2f}]"
    return text


def _mean(summary: pd.DataFrame, dataset: str, metric: str, model: str, column="mean_pct"):
    sub = summary[(summary.dataset == dataset) & (summary.metric == metric) & (summary.model == model)]
    return float(sub[column].iloc[0]) if len(sub) else math.nan


def gain_pct(summary: pd.DataFrame, dataset: str, metric: str, model: str = "CREATE",
             reference: str = "SASRec", column: str = "mean_pct") -> float:
    """Relative gain of ``model`` over ``reference`` in % (the paper's Gain column)."""
    ours, ref = (_mean(summary, dataset, metric, m, column) for m in (model, reference))
    return 100.0 * (ours - ref) / ref if ref else math.nan


def _gain_cell(summary, dataset, metric) -> str:
    ours, paper = (gain_pct(summary, dataset, metric, column=c) for c in ("mean_pct", "paper_pct"))
    if math.isnan(ours):
        return ""
    return f"{ours:+.0f}%" + ("" if math.isnan(paper) else f" [{paper:+.0f}%]")


PROTOCOL_TEXT = {
    "history_filtered": "history filtered (`evaluation.filter_seen: true`): each test user's own "
                        "history items are removed from the ranking before the top-K",
    "unfiltered": "unfiltered (`evaluation.filter_seen: false`): every catalog item is ranked, "
                  "the test user's history items included",
}
CORRECTION_TEXT = {"holm": "after Holm's correction", "bonferroni": "after Bonferroni's correction",
                   "none": "without correction for multiple comparisons"}


def configured_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configured protocol (all rows of a summary without protocols)."""
    return summary[summary.configured.astype(bool)] if "configured" in summary else summary


def render_table2(summary: pd.DataFrame, datasets: list[str], models: list[str]) -> str:
    """Table 2 in the configured protocol; its caption says which, and how `*` is corrected."""
    full = summary
    summary = configured_rows(summary)
    models = model_order([m for m in models if m in set(summary.model)])
    with_gain = {"CREATE", "SASRec"} <= set(models)
    lines = ["# Table 2: model comparison (values in %)", ""]
    seeds = sorted(set(summary.n_seeds))
    lines.append(
        "Each cell: mean ± 95% confidence half-width over seeds (Student t; "
        f"seeds per cell: {', '.join(map(str, seeds))}), then the paper's published value in "
        "[brackets] where the dataset is one of the paper's. NDCG and Recall use one target per "
        "test user; Coverage@K = distinct items in all top-K lists / catalog size."
        + (" Gain: CREATE over SASRec, relative difference of the means (the paper's in brackets)."
           if with_gain else "")
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
            tabulate(table, headers=["Dataset", "Metric", *models], tablefmt="github")]


def _paper_cell(mean: float, ci: float, paper: float) -> str:
    if math.isnan(mean):
        return ""
    return _cell(pd.Series({"mean_pct": mean, "ci95_pct": ci, "paper_pct": paper}))


def _stat(summary, dataset, metric, model) -> tuple[float, float]:
    return (_mean(summary, dataset, metric, model, "mean_pct"),
            _mean(summary, dataset, metric, model, "ci95_pct"))


TABLE4_METRICS = ("ndcg@10", "coverage@10", "ndcg@100", "coverage@100")
TABLE5_METRICS = ("ndcg@10", "recall@10")


def _header(title: str, summary: pd.DataFrame) -> list[str]:
    seeds = ", ".join(map(str, sorted(set(summary.n_seeds)))) or "-"
    return [f"# {title}", "",
            "Each cell: mean ± 95% confidence half-width over seeds (Student t; seeds per cell: "
            f"{seeds}), then the paper's published value in [brackets] where one exists.", ""]


def render_table4(summary: pd.DataFrame, points: dict[str, list], paper_names: dict) -> str:
    """Alignment ablation: sequential only, then each graph encoder x alignment (Table 4).

    ``points``: dataset -> [(label, values)] from the study, values holding ``graph_backbone``
    and ``alignment`` for the CREATE variants and nothing for the sequential-only row.
    """
    paper = published("table4_alignment.csv")
    lines = _header("Table 4: alignment ablation (values in %)", summary)
    table = []
    for dataset, pts in points.items():
        for label, values in pts:
            graph = values.get("graph_backbone", "Sequential")
            align = values.get("alignment", "-")
            ref = paper[(paper.dataset == paper_names.get(dataset)) & (paper.graph_encoder == graph)
                        & (paper.alignment.str.lower() == str(align).lower())]
            row = [dataset, graph if values else f"Sequential ({label})",
                   "-" if not values else align]
            for metric in TABLE4_METRICS:
                paper_value = float(ref[PAPER_METRIC[metric]].iloc[0]) if len(ref) else math.nan
                row.append(_paper_cell(*_stat(summary, dataset, metric, label), paper_value))
            row.append(f"`{label}`")
            table.append(row)
    headers = ["Dataset", "Graph encoder", "Alignment", "NDCG@10", "Cov@10", "NDCG@100",
               "Cov@100", "Job label"]
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines += ["", "Published numbers: arXiv 2602.23471, Table 4 (Sports and Clothing; "
              "recbench/published/table4_alignment.csv)."]
    return "\n".join(lines) + "\n"


def render_table5(summary: pd.DataFrame, points: dict[str, list]) -> str:
    """Backbone grid: {SASRec, BERT4Rec} rows x {LightGCN, UltraGCN} columns (Table 5)."""
    paper = published("table5_backbones.csv")
    lines = _header("Table 5: sequential x graph backbones (values in %)", summary)
    lines[-2] += (" The paper does not name the dataset of its Table 5, so its values are "
                  "repeated beside every dataset here.")
    table, graphs = [], []
    for dataset, pts in points.items():
        grid = {(v["sequential_backbone"], v["graph_backbone"]): label for label, v in pts}
        graphs = list(dict.fromkeys(g for _, g in grid))
        for seq in dict.fromkeys(s for s, _ in grid):
            for metric in TABLE5_METRICS:
                ref = paper[(paper.sequential_backbone == seq) & (paper.metric == PAPER_METRIC[metric])]
                row = [dataset, seq, PAPER_METRIC[metric]]
                for graph in graphs:
                    paper_value = float(ref[graph].iloc[0]) if len(ref) and graph in ref else math.nan
                    label = grid.get((seq, graph))
                    row.append(_paper_cell(*_stat(summary, dataset, metric, label), paper_value)
                               if label else "")
                table.append(row)
    lines.append(tabulate(table, headers=["Dataset", "Sequential", "Metric", *graphs],
                          tablefmt="github"))
    lines += ["", "Published numbers: arXiv 2602.23471, Table 5 "
              "(recbench/published/table5_backbones.csv)."]
    return "\n".join(lines) + "\n"


TABLE3_METRICS = {"recall@10": "HR@10", "ndcg@10": "NDCG@10"}  # HR@10 = Recall@10: one target
QUOTED = ("GSAU", "Self-GNN", "LOOM")


def render_table3(summary: pd.DataFrame, datasets: dict[str, str], bridge: dict[str, str],
                  models: list[str]) -> str:
    """Table 3: our SASRec and CREATE in the LOOM protocol beside GSAU, Self-GNN and LOOM, which
    are quoted from the paper (not run here); SASRec in our own protocol as the bridge.

    ``datasets``: the paper's dataset name -> our LOOM-protocol dataset; ``bridge``: that
    dataset -> the same data in the paper's own protocol.
    """
    paper = published("table3_loom_setup.csv")
    table2 = published("table2.csv")
    lines = ["# Table 3: the LOOM evaluation setup (values in %)", "",
             "Computed here (mean ± 95% CI over seeds, the paper's value in [brackets]): "
             + ", ".join(models) + " in the LOOM protocol (leave-one-out, 5-core, full ranking; "
             "see the README, \"Table 3: the LOOM protocol\"). Quoted from the paper, not run "
             "here: " + ", ".join(f"{m} (quoted)" for m in QUOTED) + ". The bridge column is "
             "SASRec in the paper's own protocol (global temporal split, Table 2) on the same data.",
             ""]
    headers = ["Dataset", "Metric", *(f"{m} (quoted)" for m in QUOTED),
               *(f"{m} (ours, LOOM setup)" for m in models), "SASRec (ours, own setup)"]
    table = []
    for paper_name, dataset in datasets.items():
        for metric, label in TABLE3_METRICS.items():
            row = [f"{paper_name} ({dataset})", label]
            ref = paper[(paper.dataset == paper_name) & (paper.metric == label)].set_index("model")
            row += [f"{ref.value_pct[m]:.2f} (quoted)" if m in ref.index else "n/a" for m in QUOTED]
            for model in models:
                paper_value = float(ref.value_pct[model]) if model in ref.index else math.nan
                row.append(_paper_cell(*_stat(summary, dataset, metric, model), paper_value))
            own = bridge.get(dataset)
            if own:
                t2 = table2[(table2.dataset == paper_name) & (table2.model == "SASRec")
                            & (table2.metric == PAPER_METRIC[metric])]
                row.append(_paper_cell(*_stat(summary, own, metric, "SASRec"),
                                       float(t2.value_pct.iloc[0]) if len(t2) else math.nan))
            else:
                row.append("")
            table.append(row)
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines += ["", "HR@10 is Recall@10 here (one held-out item per user). Published numbers: "
              "arXiv 2602.23471, Table 3 (recbench/published/table3_loom_setup.csv) and, for the "
              "bridge, Table 2."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Reproduction verdict: is the paper's Table 2 value inside our interval?
# ---------------------------------------------------------------------------------------------


def reproduction_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """Every Table 2 cell (summary row) that has a published value, with the verdict.

    A cell is reproduced when the paper's value lies inside our 95% interval widened by the
    paper's own ±: |ours − paper| <= ci95_pct + paper_pm_pct (the paper gives ± for SASRec and
    CREATE only; 0 elsewhere). With one seed there is no interval and the verdict is None.
    Adds diff_pct (ours − paper, percentage points), tolerance_pct and reproduced.
    """
    cells = summary[summary.paper_pct.notna()].copy()
    pm = cells.paper_pm_pct.fillna(0.0) if "paper_pm_pct" in cells else 0.0
    cells["diff_pct"] = cells.mean_pct - cells.paper_pct
    cells["tolerance_pct"] = cells.ci95_pct + pm
    inside = cells.diff_pct.abs() <= cells.tolerance_pct
    cells["reproduced"] = [None if math.isnan(t) else bool(i)
                           for t, i in zip(cells.tolerance_pct, inside)]
    return cells


def reproduction_counts(cells: pd.DataFrame) -> pd.DataFrame:
    """Per dataset (and protocol, where the cells have one): cells, reproduced, not reproduced,
    undetermined (no interval)."""
    keys = ["dataset", "protocol"] if "protocol" in cells else ["dataset"]
    rows = []
    for values, g in cells.groupby(keys, sort=False):
        verdict = g.reproduced
        rows.append({**dict(zip(keys, values if isinstance(values, tuple) else (values,))),
                     "cells": len(g), "reproduced": int((verdict == True).sum()),  # noqa: E712
                     "not_reproduced": int((verdict == False).sum()),  # noqa: E712
                     "undetermined": int(verdict.isna().sum())})
    return pd.DataFrame(rows, columns=[*keys, "cells", "reproduced", "not_reproduced",
                                       "undetermined"])


def _count_text(row) -> str:
    text = f"{row.reproduced} of {row.cells} cells reproduced"
    if row.undetermined:
        text += f" ({row.undetermined} undetermined: one seed, no interval)"
    return text


def render_reproduction(summary: pd.DataFrame, datasets: list[str], models: list[str]) -> str:
    """results/reproduction.md: every Table 2 cell beside the paper's, and the verdict.

    ``summary``: Table 2's (table2.csv). The cells are the configured protocol's; the summary
    line of each dataset also counts the other protocol's cells, computed from the same scores.
    """
    lines = ["# Reproduction of the paper's Table 2", ""]
    cells = reproduction_cells(summary[summary.dataset.isin(datasets)])
    if cells.empty:
        names = ", ".join(datasets) or "none"
        lines += [f"Nothing to compare: none of Table 2's datasets ({names}) is one of the "
                  "paper's, so no published number stands beside ours. A dataset whose "
                  "`paper_name:` in the config names one of the paper's (ML-1M, Beauty, Sports, "
                  "Clothing, Yambda-50M) is compared here cell by cell."]
        return "\n".join(lines) + "\n"
    shown = configured_rows(cells)
    protocol = shown.protocol.iloc[0] if "protocol" in shown and len(shown) else None
    lines.append(
        "A cell is **reproduced** when the paper's value lies inside our 95% interval widened "
        "by the paper's own ±: |ours − paper| ≤ our 95% confidence half-width over seeds "
        "(Student t) + the paper's ± (given for SASRec and CREATE only, 0 elsewhere). Values in "
        "%, differences in percentage points."
        + (f" Protocol: {PROTOCOL_TEXT[protocol]}." if protocol else ""))
    lines += ["", "## Summary", ""]
    counts = reproduction_counts(cells)
    for dataset in datasets:
        rows = counts[counts.dataset == dataset]
        if rows.empty:
            continue
        if protocol is None:
            lines.append(f"- **{dataset}**: {_count_text(rows.iloc[0])}.")
            continue
        own = rows[rows.protocol == protocol]
        text = f"- **{dataset}**: {_count_text(own.iloc[0])} ({protocol}, the configured protocol)"
        for _, other in rows[rows.protocol != protocol].iterrows():
            text += f"; {_count_text(other)} in the {other.protocol} protocol (same scores)"
        lines.append(text + ".")
    lines += ["", f"## Cells{f' ({protocol})' if protocol else ''}", ""]
    order = {m: i for i, m in enumerate(model_order(list(dict.fromkeys([*models, *shown.model]))))}
    table = []
    for dataset in datasets:
        for metric in METRICS:
            sub = shown[(shown.dataset == dataset) & (shown.metric == metric)]
            for _, c in sub.sort_values("model", key=lambda m: m.map(order)).iterrows():
                pm = c.get("paper_pm_pct", 0.0)
                verdict = {True: "yes", False: "no"}.get(c.reproduced, "n/a (one seed)")
                table.append([dataset, PAPER_METRIC[metric], c.model,
                              f"{c.mean_pct:.2f}" + ("" if math.isnan(c.ci95_pct)
                                                     else f" ± {c.ci95_pct:.2f}"),
                              f"{c.paper_pct:.2f}" + (f" ± {pm:.2f}" if pm else ""),
                              f"{c.diff_pct:+.2f}",
                              "" if math.isnan(c.tolerance_pct) else f"{c.tolerance_pct:.2f}",
                              verdict])
    lines.append(tabulate(table, headers=["Dataset", "Metric", "Model", "Ours", "Paper",
                                          "Ours − paper", "Tolerance", "Reproduced"],
                          tablefmt="github", disable_numparse=True))
    lines += ["", "Published numbers: arXiv 2602.23471, Table 2 (recbench/published/table2.csv); "
              "ours: results/table2.csv."]
    return "\n".join(lines) + "\n"
