"""What every report shares: per-seed metrics collected and summarised, the per-user spread
and paired significance, the verdicts against the paper, and the reading lines.

Layout as in the paper: (dataset, metric) rows, model columns, values in %. Each cell is
"mean ± 95% CI" over seeds (Student t), followed by the paper's value in brackets where the
dataset is one of the paper's. A model without results is absent: never a placeholder number.

Every run is evaluated in both protocols (recbench.evaluation: history items filtered or not);
table2.csv holds both, one ``protocol`` per row and ``configured`` true for the configured one
(``evaluation.filter_seen``), which table2.md shows. table2.csv also carries each cell's
test-user spread and its verdict against the paper (recbench/protocol/verdicts.py). Each report
has its own module beside this one: ``table2``, ``reproduction``, ``table3``, ``studies``
(Tables 4-5), ``readings``, ``reading_selection``, ``figures``, and ``compare`` (committed
reports against a rerun's).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pandas as pd

from recbench.errors import DataError
from recbench.evaluation import PROTOCOLS, other_protocol
from recbench.protocol.reading_selection import describe as describe_choice
from recbench.protocol.stats import (adjust_pvalues, mean_ci, paired_per_user, paired_test,
                            per_user_mean)
from recbench.protocol.verdicts import (VERDICTS, Rules, cell_verdict)


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


def per_user_tables(per_user_files, models=None) -> dict[tuple[str, str], list[pd.DataFrame]]:
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
    averaged over the seeds, in % (recbench/protocol/verdicts.py combines it with the seed noise).
    ``configured``: the files' configured protocol, both protocols then get rows."""
    rows = []
    for (dataset, model), frames in per_user_tables(per_user_files).items():
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

    Per-user values are averaged over the seeds of each model first (recbench.protocol.stats).
    Returns one row per (dataset, model, metric) with the raw ``p_value`` and ``p_adjusted``,
    corrected (``correction``: holm, bonferroni or none) across the models of each (dataset,
    metric) row of Table 2, the family of comparisons with the reference that row makes.
    ``configured`` (the per-user files' configured protocol, see recbench.evaluation): both
    protocols are tested, each its own family, with a ``protocol`` column.
    """
    tables = per_user_tables(per_user_files)
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


def summary_mean(summary: pd.DataFrame, dataset: str, metric: str, model: str, column="mean_pct"):
    sub = summary[(summary.dataset == dataset) & (summary.metric == metric) & (summary.model == model)]
    return float(sub[column].iloc[0]) if len(sub) else math.nan


def gain_pct(summary: pd.DataFrame, dataset: str, metric: str, model: str | None = None,
             reference: str | None = None, column: str = "mean_pct") -> float:
    """Relative gain of ``model`` over ``reference`` in % (default the paper's Gain column:
    PAPER_CLAIMS' model over its baseline)."""
    model, reference = model or PAPER_CLAIMS["model"], reference or PAPER_CLAIMS["baseline"]
    ours, ref = (summary_mean(summary, dataset, metric, m, column) for m in (model, reference))
    return 100.0 * (ours - ref) / ref if ref else math.nan


PROTOCOL_TEXT = {
    "history_filtered": "history filtered (`evaluation.filter_seen: true`): each test user's own "
                        "history items are removed from the ranking before the top-K",
    "unfiltered": "unfiltered (`evaluation.filter_seen: false`): every catalog item is ranked, "
                  "the test user's history items included",
}


def configured_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configured protocol (all rows of a summary without protocols)."""
    return summary[summary.configured.astype(bool)] if "configured" in summary else summary


def reading_lines(readings: dict | None, datasets, what: str = "") -> list[str]:
    """The paragraph a report adds where a model's reading was chosen on validation
    (``readings``: dataset -> model -> the selection record, recbench/protocol/reading_selection.py);
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


def summary_row(summary: pd.DataFrame, dataset: str, metric: str, model: str):
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


def compared(summary: pd.DataFrame, dataset: str, metric: str, model: str, paper: float,
              verdicts: list | None, paper_pm: float = 0.0, rules: Rules = Rules()) -> str:
    """Our cell beside the paper's value: "mean ± CI [paper, verdict]"; ``verdicts`` (a list,
    collecting them for the caption) None: the paper's value without a verdict."""
    row = summary_row(summary, dataset, metric, model)
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


def verdict_lines(verdicts: list[str], rules: Rules) -> list[str]:
    if not verdicts:
        return []
    return ["", f"Verdicts against the paper's values ({_verdict_count(verdicts)} of "
            f"{len(verdicts)} cells). " + rules.describe()]


VERDICT_COLUMNS = ["margin_pct", "diff_low_pct", "diff_high_pct", "se_pct", "df", "p_equivalent",
                   "verdict", "verdict_reason"]


def add_verdicts(summary: pd.DataFrame, rules: Rules = Rules()) -> pd.DataFrame:
    """``summary`` (summarise, with per_user_spread's columns where it has them) with each
    published cell's verdict (recbench.protocol.verdicts.cell_verdict): ``margin_pct``, the (1 - 2 alpha)
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


def published_value(dataset: str | None, metric: str, model: str) -> tuple[float, float]:
    """(value, ±) of the paper's Table 2 in % (NaN, 0 where it has none)."""
    paper = published("table2.csv")
    ref = paper[(paper.dataset == dataset) & (paper.metric == PAPER_METRIC[metric])
                & (paper.model == model)]
    if not len(ref):
        return math.nan, 0.0
    pm = float(ref.plusminus_pct.iloc[0])
    return float(ref.value_pct.iloc[0]), 0.0 if math.isnan(pm) else pm
