"""Aggregate per-seed metrics and render Table 2 beside the paper's published numbers.

Layout as in the paper: (dataset, metric) rows, model columns, values in %. Each cell is
"mean ± 95% CI" over seeds (Student t), followed by the paper's value in brackets where the
dataset is one of the paper's. A model without results is absent: never a placeholder number.

Every run is evaluated in both protocols (recbench.evaluation: history items filtered or not);
table2.csv holds both, one ``protocol`` per row and ``configured`` true for the configured one
(``evaluation.filter_seen``), which table2.md shows. table2.csv also carries each cell's
test-user spread and its verdict against the paper (recbench/verdicts.py); results/reproduction.md
lists the verdicts, tests the paper's claims and says what a run needs to detect the paper's
Gain. Tables 3-5 give the same verdicts where the paper has a number.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from recbench.canonical import model_order
from recbench.errors import DataError
from recbench.evaluation import PROTOCOLS, other_protocol
from recbench.reading_selection import describe as describe_choice
from recbench.stats import (adjust_pvalues, mean_ci, paired_per_user, paired_test,
                            per_user_mean)
from recbench.verdicts import (VERDICTS, Rules, beats, cell_verdict, gain_power, matches_gain,
                               paired_gain, seed_var_of_mean)

METRICS = ("ndcg@10", "recall@10", "coverage@10", "ndcg@100", "recall@100", "coverage@100")
PAPER_METRIC = {"ndcg@10": "NDCG@10", "recall@10": "Recall@10", "coverage@10": "Coverage@10",
                "ndcg@100": "NDCG@100", "recall@100": "Recall@100", "coverage@100": "Coverage@100"}
#: the paper's claims about Table 2 (Section 4.4), by the model names of its tables: ``model``
#: beats ``baseline`` by the Gain column, and beats every graph-only model of ``graph``
PAPER_CLAIMS = {"model": "CREATE", "baseline": "SASRec", "graph": ("LightGCN", "UltraGCN")}


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
                            "protocols); rerun its job (snakemake --forcerun evaluate) or "
                            "delete the file.")
        if configured and own != configured:
            raise DataError(f"{f} was evaluated with {own} as its configured protocol, but the "
                            f"config asks for {configured} (evaluation.filter_seen); rerun its "
                            "job (snakemake --forcerun evaluate).")
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


def summarise(long: pd.DataFrame, paper_names: dict[str, str] | None = None,
              spread: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (dataset, metric, model): mean and CI half-width in %, seeds, the paper's
    value and its ± (``paper_pm_pct``, 0 where the paper gives none). With ``protocol`` in
    ``long`` (collect(both=True)), one row per (dataset, protocol, metric, model). ``spread``
    (per_user_spread of the same runs) adds ``n_users`` and ``user_sd_pct``, the test-user
    noise of the cells that have per-user values (NaN for coverage)."""
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
    out = pd.DataFrame(rows)
    if spread is not None:
        on = [k for k in ("dataset", "protocol", "metric", "model") if k in out]
        out = out.merge(spread[[*on, "n_users", "user_sd_pct"]], on=on, how="left")
    return out


#: metrics with a per-user value (per_user.parquet), hence a paired test; coverage has none
PER_USER_METRICS = ("ndcg@10", "recall@10", "ndcg@100", "recall@100")


def _per_user_tables(per_user_files, models=None) -> dict[tuple[str, str], list[pd.DataFrame]]:
    """(dataset, model) -> the per_user.parquet tables of its seeds (``models``: only these)."""
    tables: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for f in map(Path, per_user_files):
        key = (f.parent.parent.parent.name, f.parent.parent.name)
        if models is None or key[1] in models:
            tables.setdefault(key, []).append(pd.read_parquet(f))
    return tables


def _protocol_prefixes(configured: str | None) -> dict[str | None, str]:
    """protocol -> its column prefix in per_user.parquet ({None: ""} without protocols)."""
    if configured is None:
        return {None: ""}
    return {configured: "", other_protocol(configured): f"{other_protocol(configured)}/"}


def per_user_spread(per_user_files: list[str | Path], configured: str | None = None
                    ) -> pd.DataFrame:
    """The test-user noise of each cell: per (dataset, [protocol,] model, metric), ``n_users``
    and ``user_sd_pct``, the standard deviation over the test users of each user's value
    averaged over the seeds, in % (recbench/verdicts.py combines it with the seed noise).
    ``configured``: the files' configured protocol, both protocols then get rows."""
    rows = []
    for (dataset, model), frames in _per_user_tables(per_user_files).items():
        for protocol, prefix in _protocol_prefixes(configured).items():
            for metric in PER_USER_METRICS:
                values = per_user_mean(frames, prefix + metric, "user", f"{dataset}/{model}")
                rows.append({"dataset": dataset, "protocol": protocol, "model": model,
                             "metric": metric, "n_users": len(values),
                             "user_sd_pct": 100.0 * float(values.std(ddof=1))})
    out = pd.DataFrame(rows, columns=["dataset", "protocol", "model", "metric", "n_users",
                                      "user_sd_pct"])
    return out.drop(columns="protocol") if configured is None else out


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
    tables = _per_user_tables(per_user_files)
    rows = []
    for (dataset, model), frames in tables.items():
        ref = tables.get((dataset, reference))
        if model == reference or ref is None:
            continue
        for protocol, prefix in _protocol_prefixes(configured).items():
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


def gain_pct(summary: pd.DataFrame, dataset: str, metric: str, model: str | None = None,
             reference: str | None = None, column: str = "mean_pct") -> float:
    """Relative gain of ``model`` over ``reference`` in % (default the paper's Gain column:
    PAPER_CLAIMS' model over its baseline)."""
    model, reference = model or PAPER_CLAIMS["model"], reference or PAPER_CLAIMS["baseline"]
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


def reading_lines(readings: dict | None, datasets, what: str = "") -> list[str]:
    """The paragraph a report adds where a model's reading was chosen on validation
    (``readings``: dataset -> model -> the selection record, recbench/reading_selection.py);
    none without selection, so such a report reads as it always did. ``what`` ends the first
    sentence (e.g. how a study's points relate to the choice)."""
    chosen = [(d, m, r) for d in datasets for m, r in (readings or {}).get(d, {}).items()]
    if not chosen:
        return []
    models = ", ".join(dict.fromkeys(m for _, m, _ in chosen))
    return ["", f"{models}'s reading of the paper's open points (create_model/readings.py) was "
            "chosen on each dataset's own validation split before tuning, by the best validation "
            "NDCG@10 of one fit per candidate, never on test (results/reading_selection.md lists "
            f"every candidate){what}: "
            + "; ".join(f"{d}{'' if len(chosen) == len(set(c[0] for c in chosen)) else f' {m}'}: "
                        f"{describe_choice(r)}" for d, m, r in chosen) + "."]


def add_readings(summary: pd.DataFrame, readings: dict | None) -> pd.DataFrame:
    """``summary`` with a ``reading`` column naming each chosen reading (table2.csv); unchanged
    without selection."""
    if not readings:
        return summary
    names = {(d, m): r["chosen"] for d, models in readings.items() for m, r in models.items()}
    return summary.assign(reading=[names.get((d, m), "") for d, m in zip(summary.dataset,
                                                                         summary.model)])


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


def _summary_row(summary: pd.DataFrame, dataset: str, metric: str, model: str):
    sub = summary[(summary.dataset == dataset) & (summary.metric == metric)
                  & (summary.model == model)]
    return sub.iloc[0] if len(sub) else None


def row_verdict(row, paper: float, paper_pm: float = 0.0, rules: Rules = Rules()):
    """cell_verdict of a summary row (summarise's columns; its n_users and user_sd_pct where it
    has them) against a paper value in %."""
    users = row.get("n_users", math.nan)
    return cell_verdict(row.dataset, row.model, row.mean_pct, row.ci95_pct, int(row.n_seeds),
                        paper, paper_pm, user_sd=float(row.get("user_sd_pct", math.nan)),
                        n_users=0 if pd.isna(users) else int(users), rules=rules)


def _compared(summary: pd.DataFrame, dataset: str, metric: str, model: str, paper: float,
              verdicts: list | None, paper_pm: float = 0.0, rules: Rules = Rules()) -> str:
    """Our cell beside the paper's value: "mean ± CI [paper, verdict]"; ``verdicts`` (a list,
    collecting them for the caption) None: the paper's value without a verdict."""
    row = _summary_row(summary, dataset, metric, model)
    if row is None:
        return ""
    text = f"{row.mean_pct:.2f}" + ("" if math.isnan(row.ci95_pct) else f" ± {row.ci95_pct:.2f}")
    if math.isnan(paper):
        return text
    if verdicts is None:
        return text + f" [{paper:.2f}]"
    verdict = row_verdict(row, paper, paper_pm, rules).verdict
    verdicts.append(verdict)
    return text + f" [{paper:.2f}, {verdict}]"


def _verdict_count(verdicts: list[str]) -> str:
    return ", ".join(f"{verdicts.count(v)} {v}" for v in VERDICTS)


def _verdict_lines(verdicts: list[str], rules: Rules) -> list[str]:
    if not verdicts:
        return []
    return ["", f"Verdicts against the paper's values ({_verdict_count(verdicts)} of "
            f"{len(verdicts)} cells). " + rules.describe()]


TABLE4_METRICS = ("ndcg@10", "coverage@10", "ndcg@100", "coverage@100")
TABLE5_METRICS = ("ndcg@10", "recall@10")


def _header(title: str, summary: pd.DataFrame) -> list[str]:
    seeds = ", ".join(map(str, sorted(set(summary.n_seeds)))) or "-"
    return [f"# {title}", "",
            "Each cell: mean ± 95% confidence half-width over seeds (Student t; seeds per cell: "
            f"{seeds}), then the paper's published value in [brackets] where one exists, with "
            "the verdict against it.", ""]


STUDY_READING = (", and every point of this study starts from it (the chosen reading's tuned "
                 "parameters, with the point's own keys set)")


def render_table4(summary: pd.DataFrame, points: dict[str, list], paper_names: dict,
                  rules: Rules = Rules(), readings: dict | None = None) -> str:
    """Alignment ablation: sequential only, then each graph encoder x alignment (Table 4).

    ``points``: dataset -> [(label, values)] from the study, values holding ``graph_backbone``
    and ``alignment`` for the CREATE variants and nothing for the sequential-only row.
    """
    paper = published("table4_alignment.csv")
    lines = _header("Table 4: alignment ablation (values in %)", summary)
    lines[-1:-1] = reading_lines(readings, points, STUDY_READING)
    table, verdicts = [], []
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
                row.append(_compared(summary, dataset, metric, label, paper_value, verdicts,
                                     rules=rules))
            row.append(f"`{label}`")
            table.append(row)
    headers = ["Dataset", "Graph encoder", "Alignment", "NDCG@10", "Cov@10", "NDCG@100",
               "Cov@100", "Job label"]
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines += _verdict_lines(verdicts, rules)
    lines += ["", "Published numbers: arXiv 2602.23471, Table 4 (Sports and Clothing; "
              "recbench/published/table4_alignment.csv)."]
    return "\n".join(lines) + "\n"


def render_table5(summary: pd.DataFrame, points: dict[str, list], paper_names: dict | None = None,
                  rules: Rules = Rules(), readings: dict | None = None) -> str:
    """Backbone grid: {SASRec, BERT4Rec} rows x {LightGCN, UltraGCN} columns (Table 5).

    The paper does not name Table 5's dataset: its values stand beside every dataset, and a
    verdict is given beside each of the paper's datasets (``paper_names``) only, as if it were
    Table 5's."""
    paper = published("table5_backbones.csv")
    paper_names = paper_names or {}
    lines = _header("Table 5: sequential x graph backbones (values in %)", summary)
    lines[-2] += (" The paper does not name the dataset of its Table 5, so its values are "
                  "repeated beside every dataset here; a verdict stands beside the paper's own "
                  "datasets only, and reads as if Table 5 were measured on that dataset.")
    lines[-1:-1] = reading_lines(readings, points, STUDY_READING)
    table, graphs, verdicts = [], [], []
    for dataset, pts in points.items():
        grid = {(v["sequential_backbone"], v["graph_backbone"]): label for label, v in pts}
        graphs = list(dict.fromkeys(g for _, g in grid))
        judged = verdicts if paper_names.get(dataset) else None
        for seq in dict.fromkeys(s for s, _ in grid):
            for metric in TABLE5_METRICS:
                ref = paper[(paper.sequential_backbone == seq) & (paper.metric == PAPER_METRIC[metric])]
                row = [dataset, seq, PAPER_METRIC[metric]]
                for graph in graphs:
                    paper_value = float(ref[graph].iloc[0]) if len(ref) and graph in ref else math.nan
                    label = grid.get((seq, graph))
                    row.append(_compared(summary, dataset, metric, label, paper_value, judged,
                                         rules=rules) if label else "")
                table.append(row)
    lines.append(tabulate(table, headers=["Dataset", "Sequential", "Metric", *graphs],
                          tablefmt="github"))
    lines += _verdict_lines(verdicts, rules)
    lines += ["", "Published numbers: arXiv 2602.23471, Table 5 "
              "(recbench/published/table5_backbones.csv)."]
    return "\n".join(lines) + "\n"


TABLE3_METRICS = {"recall@10": "HR@10", "ndcg@10": "NDCG@10"}  # HR@10 = Recall@10: one target
QUOTED = ("GSAU", "Self-GNN", "LOOM")


def render_table3(summary: pd.DataFrame, datasets: dict[str, str], bridge: dict[str, str],
                  models: list[str], rules: Rules = Rules(), readings: dict | None = None) -> str:
    """Table 3: our SASRec and CREATE in the LOOM protocol beside GSAU, Self-GNN and LOOM, which
    are quoted from the paper (not run here); SASRec in our own protocol as the bridge.

    ``datasets``: the paper's dataset name -> our LOOM-protocol dataset; ``bridge``: that
    dataset -> the same data in the paper's own protocol.
    """
    paper = published("table3_loom_setup.csv")
    table2 = published("table2.csv")
    baseline = PAPER_CLAIMS["baseline"]
    lines = ["# Table 3: the LOOM evaluation setup (values in %)", "",
             "Computed here (mean ± 95% CI over seeds, the paper's value in [brackets] with the "
             "verdict against it): "
             + ", ".join(models) + " in the LOOM protocol (leave-one-out, 5-core, full ranking; "
             "see the README, \"Table 3: the LOOM protocol\"). Quoted from the paper, not run "
             "here: " + ", ".join(f"{m} (quoted)" for m in QUOTED) + f". The bridge column is "
             f"{baseline} in the paper's own protocol (global temporal split, Table 2) on the "
             "same data."]
    lines += reading_lines(readings, datasets.values(), " (in the LOOM protocol its own validation "
                           "users: the held-out item before each test item)") + [""]
    headers = ["Dataset", "Metric", *(f"{m} (quoted)" for m in QUOTED),
               *(f"{m} (ours, LOOM setup)" for m in models), f"{baseline} (ours, own setup)"]
    table, verdicts = [], []
    # rows in the paper's order of its datasets, then by name: a mapping's key order is no value
    order = list(dict.fromkeys(paper.dataset))
    for paper_name, dataset in sorted(datasets.items(), key=lambda kv: (
            order.index(kv[0]) if kv[0] in order else len(order), kv[0])):
        for metric, label in TABLE3_METRICS.items():
            row = [f"{paper_name} ({dataset})", label]
            ref = paper[(paper.dataset == paper_name) & (paper.metric == label)].set_index("model")
            row += [f"{ref.value_pct[m]:.2f} (quoted)" if m in ref.index else "n/a" for m in QUOTED]
            for model in models:
                paper_value = float(ref.value_pct[model]) if model in ref.index else math.nan
                row.append(_compared(summary, dataset, metric, model, paper_value, verdicts,
                                     rules=rules))
            own = bridge.get(dataset)
            if own:
                t2 = table2[(table2.dataset == paper_name) & (table2.model == baseline)
                            & (table2.metric == PAPER_METRIC[metric])]
                value, pm = ((float(t2.value_pct.iloc[0]), float(t2.plusminus_pct.iloc[0]))
                             if len(t2) else (math.nan, 0.0))
                row.append(_compared(summary, own, metric, baseline, value, verdicts, pm, rules))
            else:
                row.append("")
            table.append(row)
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines += _verdict_lines(verdicts, rules)
    lines += ["", "HR@10 is Recall@10 here (one held-out item per user). Published numbers: "
              "arXiv 2602.23471, Table 3 (recbench/published/table3_loom_setup.csv) and, for the "
              "bridge, Table 2."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Reproduction: each Table 2 cell's verdict, the paper's claims, the power to detect its Gain
# ---------------------------------------------------------------------------------------------

VERDICT_COLUMNS = ["margin_pct", "diff_low_pct", "diff_high_pct", "se_pct", "df", "p_equivalent",
                   "verdict", "verdict_reason"]


def add_verdicts(summary: pd.DataFrame, rules: Rules = Rules()) -> pd.DataFrame:
    """``summary`` (summarise, with per_user_spread's columns where it has them) with each
    published cell's verdict (recbench.verdicts.cell_verdict): ``margin_pct``, the (1 - 2 alpha)
    interval of ours - paper (``diff_low_pct``, ``diff_high_pct``), ``se_pct``, ``df``,
    ``p_equivalent`` (TOST), ``verdict`` and ``verdict_reason``; empty where the paper has no
    number."""
    out = summary.copy()
    for column in VERDICT_COLUMNS:
        out[column] = "" if column.startswith("verdict") else math.nan
    for i, row in out[out.paper_pct.notna()].iterrows():
        v = row_verdict(row, row.paper_pct, row.get("paper_pm_pct", 0.0), rules)
        out.loc[i, VERDICT_COLUMNS] = [v.margin, v.diff_low, v.diff_high, v.se, v.df,
                                       v.p_equivalent, v.verdict, v.reason]
    return out


def verdict_counts(cells: pd.DataFrame) -> pd.DataFrame:
    """Per dataset (and protocol, where the cells have one): the number of published cells and of
    each verdict (columns named as VERDICTS)."""
    cells = cells[cells.paper_pct.notna()]
    keys = ["dataset", "protocol"] if "protocol" in cells else ["dataset"]
    rows = []
    for values, g in cells.groupby(keys, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        rows.append({**dict(zip(keys, values)), "cells": len(g),
                     **{v: int((g.verdict == v).sum()) for v in VERDICTS}})
    return pd.DataFrame(rows, columns=[*keys, "cells", *VERDICTS])


def _paper_value(dataset: str | None, metric: str, model: str) -> tuple[float, float]:
    """(value, ±) of the paper's Table 2 in % (NaN, 0 where it has none)."""
    paper = published("table2.csv")
    ref = paper[(paper.dataset == dataset) & (paper.metric == PAPER_METRIC[metric])
                & (paper.model == model)]
    if not len(ref):
        return math.nan, 0.0
    pm = float(ref.plusminus_pct.iloc[0])
    return float(ref.value_pct.iloc[0]), 0.0 if math.isnan(pm) else pm


def _paper_gain(dataset: str | None, metric: str, model: str, reference: str) -> dict:
    """The paper's gain of model over reference on a dataset (a fraction); on data that is not
    the paper's, the smallest gain the paper reports for the metric over its datasets
    (``source`` names which)."""
    if dataset is not None:
        a, b = (_paper_value(dataset, metric, m)[0] for m in (model, reference))
        return {"gain": a / b - 1 if b else math.nan, "source": dataset}
    gains = {d: _paper_gain(d, metric, model, reference)["gain"]
             for d in dict.fromkeys(published("table2.csv").dataset)}
    gains = {d: g for d, g in gains.items() if math.isfinite(g)}
    if not gains:
        return {"gain": math.nan, "source": ""}
    smallest = min(gains, key=gains.get)
    return {"gain": gains[smallest], "source": f"smallest of the paper's, {smallest}"}


CLAIM_COLUMNS = ["dataset", "protocol", "metric", "claim", "model", "reference", "gain_pct",
                 "gain_low_pct", "gain_high_pct", "paper_gain_pct", "paper_source",
                 "claim_low_pct", "claim_high_pct", "verdict", "direction", "p_value", "reason",
                 "effect_pct", "diff_sd_pct", "n_users", "n_seeds", "power", "users_needed",
                 "seeds_needed", "seed_noise_known"]


def reproduction_claims(per_user_files: list[str | Path], summary: pd.DataFrame,
                        paper_names: dict[str, str | None], rules: Rules = Rules()) -> pd.DataFrame:
    """The paper's claims (PAPER_CLAIMS) on each dataset of ``summary`` (Table 2's, the configured
    protocol), per metric with a per-user value: "<model> > <baseline>", "<model> > the best graph
    model" (the graph model of PAPER_CLAIMS with the highest mean of ours) and, on the paper's
    datasets, "the paper's Gain"; each with our gain, its verdict and the power of the run to
    detect the paper's gain (recbench.verdicts). Empty without the models."""
    rows = []
    model, baseline = PAPER_CLAIMS["model"], PAPER_CLAIMS["baseline"]
    summary = configured_rows(summary)
    protocol = summary.protocol.iloc[0] if "protocol" in summary and len(summary) else None
    tables = _per_user_tables(per_user_files, {model, baseline, *PAPER_CLAIMS["graph"]})
    for dataset in dict.fromkeys(summary.dataset):
        if (dataset, model) not in tables:
            continue
        paper_name = paper_names.get(dataset)
        for metric in PER_USER_METRICS:
            graphs = {g: _mean(summary, dataset, metric, g) for g in PAPER_CLAIMS["graph"]
                      if (dataset, g) in tables}
            rivals = [(baseline, f"{model} > {baseline}")] if (dataset, baseline) in tables else []
            if graphs:
                best = max(graphs, key=graphs.get)
                rivals.append((best, f"{model} > best graph model ({best})"))
            for rival, claim in rivals:
                a, b = paired_per_user(tables[dataset, model], tables[dataset, rival], metric)
                rows_of = (_summary_row(summary, dataset, metric, m) for m in (model, rival))
                seeds = [(seed_var_of_mean(r.ci95_pct, int(r.n_seeds)), int(r.n_seeds))
                         for r in rows_of]
                gain = paired_gain(100 * a, 100 * b, seeds[0][0], seeds[1][0], seeds[0][1],
                                   seeds[1][1])
                paper = _paper_gain(paper_name, metric, model, rival)
                power = gain_power(gain, paper["gain"], rules) if math.isfinite(
                    paper["gain"]) else None
                tests = [(claim, beats(gain, rules))]
                if rival == baseline and paper_name and math.isfinite(paper["gain"]):
                    tests.append(("the paper's Gain", matches_gain(gain, paper["gain"], rules)))
                for name, v in tests:
                    rows.append({
                        "dataset": dataset, "protocol": protocol, "metric": metric, "claim": name,
                        "model": model, "reference": rival, "gain_pct": 100 * gain.value,
                        "gain_low_pct": 100 * v.ci_low, "gain_high_pct": 100 * v.ci_high,
                        "paper_gain_pct": 100 * paper["gain"], "paper_source": paper["source"],
                        "claim_low_pct": 100 * v.low, "claim_high_pct": 100 * v.high,
                        "verdict": v.verdict, "direction": v.direction, "p_value": v.p_value,
                        "reason": v.reason,
                        "effect_pct": power.effect if power else math.nan,
                        "diff_sd_pct": gain.diff_sd, "n_users": gain.n_users,
                        "n_seeds": gain.n_seeds, "power": power.power if power else math.nan,
                        "users_needed": power.users_needed if power else None,
                        "seeds_needed": power.seeds_needed if power else None,
                        "seed_noise_known": power.seed_noise_known if power else False})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def _count_text(row) -> str:
    counts = ", ".join(f"{getattr(row, v.replace(' ', '_'))} {v}" for v in VERDICTS)
    return f"{row.cells} cells: {counts}"


def _pct(value: float, digits: int = 1) -> str:
    return "" if value is None or math.isnan(value) else f"{value:+.{digits}f}%"


def _gain_text(c) -> str:
    return f"{_pct(c.gain_pct)} [{_pct(c.gain_low_pct)}, {_pct(c.gain_high_pct)}]"


def _verdict_text(c) -> str:
    text = c.verdict + (f" ({c.direction})" if c.direction else "")
    return text + (f"; {c.reason}" if c.reason else "")


def _needed(value, unit: str) -> str:
    return "none suffices" if value is None or pd.isna(value) else f"{int(value):,} {unit}"


def _power_words(rows: pd.DataFrame) -> str:
    """In words, per dataset: which comparisons could detect the paper's gain, which could not
    and what they would need."""
    def what(c):
        return (f"{c.reference} on {PAPER_METRIC[c.metric]} ({_pct(c.paper_gain_pct)}"
                + (f", {c.paper_source}" if c.paper_source.startswith("smallest") else "") + ")")

    first = rows.iloc[0]
    strong = rows[rows.power >= 0.8]
    text = (f"- **{first.dataset}** ({first.n_users:,} test users, {first.n_seeds} seeds): ")
    parts = []
    if len(strong):
        parts.append("adequately powered (≥ 80%) for the paper's gain over "
                     + ", ".join(what(c) for c in strong.itertuples()))
    for c in rows[rows.power < 0.8].itertuples():
        users = ("no number of test users reaches it at these seeds" if pd.isna(c.users_needed)
                 else f"{int(c.users_needed):,} test users at these seeds would reach it")
        seeds = ("" if not c.seed_noise_known else
                 ", nor any number of seeds at these test users" if pd.isna(c.seeds_needed)
                 else f" (or {int(c.seeds_needed):,} seeds at these test users)")
        parts.append(f"**underpowered** for the gain over {what(c)}: {100 * c.power:.0f}% "
                     f"power; {users}{seeds}"
                     + ("" if c.seed_noise_known else " (one seed: the seed noise is unknown and "
                        "left out)"))
    return text + "; ".join(parts) + "."


def render_reproduction(summary: pd.DataFrame, datasets: list[str], models: list[str],
                        claims: pd.DataFrame | None = None, rules: Rules = Rules(),
                        readings: dict | None = None) -> str:
    """results/reproduction.md: every Table 2 cell beside the paper's with its verdict, the
    paper's claims tested as claims, and the power of the run to detect the paper's Gain.

    ``summary``: Table 2's (table2.csv, add_verdicts' columns); ``claims``:
    reproduction_claims. The cells and claims are the configured protocol's; the summary line
    of each dataset also counts the other protocol's cells, computed from the same scores.
    """
    lines = ["# Reproduction of the paper's Table 2", ""]
    summary = summary[summary.dataset.isin(datasets)]
    cells = summary[summary.paper_pct.notna()]
    claims = claims if claims is not None else pd.DataFrame(columns=CLAIM_COLUMNS)
    claims = claims[claims.dataset.isin(datasets)]
    shown = configured_rows(cells)
    configured = configured_rows(summary)
    protocol = configured.protocol.iloc[0] if "protocol" in configured and len(configured) else None
    intro = (rules.describe() + " Our noise is the test users' share, s_user² / n (s_user: the "
             "standard deviation over test users of each user's value averaged over the seeds), "
             "plus the seeds', s_seed² / S (s_seed: that of the S seed means), with "
             "Welch–Satterthwaite degrees of freedom; coverage has no per-user value and counts "
             "its seeds only; one seed leaves the seed noise unknown and the cell undecided. The "
             "paper's test users are taken to be ours (the same split), so its noise is its "
             "seeds' alone. The assumptions in full: recbench/verdicts.py. Values in %, "
             "differences in percentage points (`reproduction: {margin: "
             f"{rules.margin:g}, alpha: {rules.alpha:g}, power: {rules.power:g}, "
             f"paper_seed_noise: {rules.paper_seed_noise}}}`).")
    if protocol:
        intro += f" Protocol: {PROTOCOL_TEXT[protocol]}."
    lines.append(intro)
    lines += reading_lines(readings, datasets, ", and the claims below test that reading")
    if cells.empty:
        names = ", ".join(datasets) or "none"
        lines += ["", f"No published cell to compare: none of Table 2's datasets ({names}) is one "
                  "of the paper's, so no published number stands beside ours. A dataset whose "
                  "`paper_name:` in the config names one of the paper's (ML-1M, Beauty, Sports, "
                  "Clothing, Yambda-50M) is compared here cell by cell."]
    lines += ["", "## Summary", ""]
    counts = verdict_counts(cells).rename(columns=lambda c: c.replace(" ", "_"))
    for dataset in datasets:
        rows = counts[counts.dataset == dataset]
        if rows.empty:
            text = f"- **{dataset}**: no published cells (not one of the paper's datasets)"
        elif protocol is None:
            text = f"- **{dataset}**: {_count_text(rows.iloc[0])}"
        else:
            own = rows[rows.protocol == protocol]
            text = (f"- **{dataset}**: {_count_text(own.iloc[0])} ({protocol}, the configured "
                    "protocol)")
            for _, other in rows[rows.protocol != protocol].iterrows():
                text += f"; {_count_text(other)} in the {other.protocol} protocol (same scores)"
        mine = claims[(claims.dataset == dataset) & (claims.metric == "ndcg@10")]
        chosen = (readings or {}).get(dataset, {}).get(PAPER_CLAIMS["model"])
        if len(mine):
            text += (f". NDCG@10 ({PAPER_CLAIMS['model']}: `{chosen['chosen']}`, chosen on "
                     f"validation among {chosen['n_candidates']} readings)" if chosen else
                     ". NDCG@10") + ": " + "; ".join(
                f"the paper's Gain ({_pct(c.paper_gain_pct)}) {_verdict_text(c)}"
                if c.claim == "the paper's Gain" else
                f"{c.claim} {_verdict_text(c)} (ours {_pct(c.gain_pct)}"
                + (f", paper {_pct(c.paper_gain_pct)}" if not c.paper_source.startswith(
                    "smallest") else "") + ")" for c in mine.itertuples())
            weak = mine[(mine.power < 0.8) & (mine.claim != "the paper's Gain")]
            if len(weak):
                text += (f"; underpowered for the paper's gain ({', '.join(weak.reference)}: "
                         + ", ".join(f"{100 * p:.0f}%" for p in weak.power) + " power)")
        lines.append(text + ".")
    if not shown.empty:
        lines += ["", f"## Cells{f' ({protocol})' if protocol else ''}", ""]
        order = {m: i for i, m in enumerate(model_order(list(dict.fromkeys([*models,
                                                                            *shown.model]))))}
        level = f"{100 * (1 - 2 * rules.alpha):g}%"
        table = []
        for dataset in datasets:
            for metric in METRICS:
                sub = shown[(shown.dataset == dataset) & (shown.metric == metric)]
                for _, c in sub.sort_values("model", key=lambda m: m.map(order)).iterrows():
                    pm = c.get("paper_pm_pct", 0.0)
                    table.append([
                        dataset, PAPER_METRIC[metric], c.model,
                        f"{c.mean_pct:.2f}" + ("" if math.isnan(c.ci95_pct)
                                               else f" ± {c.ci95_pct:.2f}"),
                        f"{c.paper_pct:.2f}" + (f" ± {pm:.2f}" if pm else ""),
                        f"{c.mean_pct - c.paper_pct:+.2f}",
                        "" if math.isnan(c.diff_low_pct) else
                        f"[{c.diff_low_pct:+.2f}, {c.diff_high_pct:+.2f}]",
                        f"±{c.margin_pct:.2f}",
                        c.verdict + (f" ({c.verdict_reason})" if isinstance(
                            c.verdict_reason, str) and c.verdict_reason else "")])
        lines.append(tabulate(table, headers=["Dataset", "Metric", "Model", "Ours (95% CI, seeds)",
                                              "Paper", "Ours − paper", f"{level} interval",
                                              "Margin", "Verdict"],
                              tablefmt="github", disable_numparse=True))
    lines += _claim_lines(claims, protocol, rules)
    lines += ["", "Published numbers: arXiv 2602.23471, Table 2 (recbench/published/table2.csv); "
              "ours: results/table2.csv."]
    return "\n".join(lines) + "\n"


def _claim_lines(claims: pd.DataFrame, protocol: str | None, rules: Rules) -> list[str]:
    model, baseline = PAPER_CLAIMS["model"], PAPER_CLAIMS["baseline"]
    where = f" ({protocol})" if protocol else ""
    if claims.empty:
        return ["", f"## Claims{where}", "", f"No claim to test: the paper's claims compare "
                f"{model} with {baseline} and with the graph models "
                f"({', '.join(PAPER_CLAIMS['graph'])}), and this run lacks {model} or all of its "
                "rivals."]
    level = f"{100 * (1 - 2 * rules.alpha):g}%"
    lines = ["", f"## Claims{where}", "",
             f"The paper claims that {model} beats {baseline} on every dataset, by the Gain of "
             "its Table 2, and beats the graph-only models (Section 4.4). Each claim is tested "
             "on the paired per-user values of the same test users (each user's value averaged "
             f"over the seeds), as our Gain of {model} over the rival with its {level} interval "
             "(test-user and seed noise, delta method): "
             f"\"{model} > rival\" **holds** when the Gain is significantly above 0 (one-sided, "
             f"{100 * rules.alpha:g}%), is **refuted** when significantly below, else "
             "**undecided**; \"the paper's Gain\" **holds** when ours lies within the paper's "
             f"Gain ± {100 * rules.margin:g}% of the ratio {model} / {baseline} by two "
             "one-sided tests (the paper's Gain taken to be as noisy as our seed share of ours; "
             "its per-model ± say nothing of its Gain's noise), is **refuted** when "
             "significantly outside. The "
             "best graph model is the graph model with our highest mean. On data that is not the "
             "paper's there is no paper Gain to test; the power is then that to detect the "
             "smallest gain the paper reports for the metric.", ""]
    table = []
    for c in claims.itertuples():
        paper = ("" if c.paper_source.startswith("smallest") or math.isnan(c.paper_gain_pct)
                 else _pct(c.paper_gain_pct))
        if c.claim == "the paper's Gain":
            paper += f" (counts within [{_pct(c.claim_low_pct)}, {_pct(c.claim_high_pct)}])"
        table.append([c.dataset, PAPER_METRIC[c.metric], c.claim, _gain_text(c), paper,
                      _verdict_text(c)])
    lines.append(tabulate(table, headers=["Dataset", "Metric", "Claim",
                                          f"Our Gain [{level} interval]", "Paper's Gain",
                                          "Verdict"], tablefmt="github", disable_numparse=True))
    lines += ["", f"## Power to detect the paper's Gain{where}", "",
              "The effect is the paper's Gain on our scale (the Gain times our mean of the "
              "rival, in points); the noise is the per-user standard deviation of the paired "
              "difference (each user averaged over the seeds) and the seed noise of both models' "
              f"means. Power: a two-sided paired t-test at {100 * rules.alpha:g}% "
              "(statsmodels' TTestPower, the seed share added to the variance of the mean). "
              f"Needed for {100 * rules.power:g}% power: the test users at this run's seeds, and "
              "the seeds (of each model) at this run's test users; \"none suffices\" where the "
              "other noise alone keeps the power below it.", ""]
    table = []
    powered = claims[(claims.claim != "the paper's Gain") & claims.power.notna()]
    for c in powered.itertuples():
        table.append([c.dataset, PAPER_METRIC[c.metric], c.claim,
                      _pct(c.paper_gain_pct) + (f" ({c.paper_source})"
                                                if c.paper_source.startswith("smallest") else ""),
                      f"{c.effect_pct:.2f}", f"{c.diff_sd_pct:.2f}",
                      f"{c.n_users:,} × {c.n_seeds}", f"{100 * c.power:.0f}%",
                      _needed(c.users_needed, "users"),
                      _needed(c.seeds_needed, "seeds") if c.seed_noise_known
                      else "unknown (one seed)"])
    lines.append(tabulate(table, headers=["Dataset", "Metric", "Claim", "Paper's Gain",
                                          "Effect (points)", "Per-user SD of the difference",
                                          "Test users × seeds", "Power",
                                          "Test users needed", "Seeds needed"],
                          tablefmt="github", disable_numparse=True))
    words = [_power_words(g) for _, g in powered.groupby("dataset", sort=False)]
    return lines + ["", *words]
