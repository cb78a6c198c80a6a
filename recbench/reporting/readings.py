"""The readings report: a study of named variants beside its reference and its default.

``results/readings.md``, ``results/readings.csv`` and ``results/figures/readings.png`` (rule
``readings``) from the ``readings`` study (recbench/protocol/studies.py, ``variants:``): the study's base
(the point named ``default``) and each variant, a named set of overrides of it, beside the
reference model (``significance.reference``, one of the study's ``include:`` labels).

Every row is an ordinary study point with its own jobs: one tuning trial of the base's tuned
parameters plus the overrides (early stopping on the validation split of the configured
protocol), then one final fit per seed on the whole training part for that trial's best epoch,
tested. The default and the reference are Table 2's own jobs (their tuning studies search).
So every row has the budget its parameters give (``epochs``, ``patience``), stated per row and
flagged where it differs from the reference's.

Per (dataset, row), values in %:

- ``valid_ndcg@10_pct``: validation NDCG@10 of the row's tuning (best_params.json); the one
  number readings are chosen on, never the test numbers;
- test NDCG@10 and Recall@10, mean and 95% half-width over seeds (``stats.mean_ci``);
- per metric, against the reference and against the default: the difference of the means
  (percentage points), the paired test's p on the per-user values of the same test users
  averaged over seeds (``stats.paired_per_user``, ``stats.paired_test``) and that p corrected
  (``stats.adjust_pvalues``) across the rows of the dataset that make the comparison;
- the budget: ``epochs`` and ``patience`` of the tuning trial, its best epoch, the epochs the
  final fits trained (mean over seeds of their history.csv rows, CREATE's warm-up rows not
  counted: the unit of ``epochs``) and their mean seconds per
  epoch (history.csv ``seconds``); blank for a model without a history.

A row whose label is an earlier row's (a variant equal to the default) is the same job: it is
shown with the numbers of that job and tested with nothing (``same_as``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from recbench.errors import DataError
from recbench.reporting.common import PROTOCOL_TEXT, published_value, reading_lines
from recbench.protocol.stats import adjust_pvalues, mean_ci, paired_per_user, paired_test, per_user_mean
from recbench.protocol.verdicts import Rules, cell_verdict
from recbench.protocol.studies import DEFAULT, format_value


METRICS = ("ndcg@10", "recall@10")
#: the comparisons of every row: with the reference model, with the default point
VERSUS = ("reference", "default")


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"{path} is missing: the readings report needs every point's tuning and "
                        "training outputs; run `snakemake results/readings.md`, which makes them.")
    return json.loads(path.read_text())


def _runs(root: Path, dataset: str, label: str, seeds: list[int], protocol: str) -> dict:
    """A point's files: best_params.json, and per seed metrics.json, per_user.parquet and the
    final fit's history.csv (absent for a model without epochs)."""
    folder = root / dataset / label
    best = _read_json(folder / "best_params.json")
    metrics, per_user, histories = [], [], []
    for seed in seeds:
        m = _read_json(folder / f"seed{seed}" / "metrics.json")
        if m.get("protocol") != protocol:
            raise DataError(f"{folder}/seed{seed}/metrics.json was evaluated with "
                            f"{m.get('protocol')} as its configured protocol, but the config asks "
                            f"for {protocol} (evaluation.filter_seen); rerun its job "
                            "(snakemake --forcerun evaluate).")
        metrics.append(m)
        per_user.append(pd.read_parquet(folder / f"seed{seed}" / "per_user.parquet"))
        history = folder / f"seed{seed}" / "training" / "history.csv"
        if history.exists():
            histories.append(pd.read_csv(history))
    return {"best": best, "metrics": metrics, "per_user": per_user, "histories": histories}


def _overrides_text(overrides: dict) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in overrides.items())


def _joint_epochs(history: pd.DataFrame) -> int:
    """The rows of a history.csv that count toward ``epochs`` (CREATE's warm-up rows do not)."""
    return len(history) - (int((history["phase"] == "warmup").sum()) if "phase" in history else 0)


def _row(dataset: str, point: dict, role: str, runs: dict, protocol: str) -> dict:
    best, histories = runs["best"], runs["histories"]
    users = per_user_mean(runs["per_user"], "ndcg@10", "user", f"{dataset}/{point['label']}")
    row = {"dataset": dataset, "name": point["name"], "role": role, "label": point["label"],
           "overrides": _overrides_text(point.get("overrides") or {}), "same_as": "",
           "n_seeds": len(runs["metrics"]), "n_users": len(users),
           "ndcg@10_user_sd_pct": 100.0 * float(users.std(ddof=1)),
           "valid_ndcg@10_pct": 100.0 * best["valid_ndcg@10"]}
    for metric in METRICS:
        mean, ci = mean_ci([100.0 * m[metric] for m in runs["metrics"]])
        row[f"{metric}_mean_pct"], row[f"{metric}_ci95_pct"] = mean, ci
    params = best.get("params") or {}
    row.update({
        "epochs": params.get("epochs"), "patience": params.get("patience"),
        "best_epoch": best.get("best_epoch"),
        # joint epochs, the unit of `epochs` (CREATE's warm-up rows come before them)
        "epochs_trained": (sum(_joint_epochs(h) for h in histories) / len(histories))
        if histories else math.nan,
        "seconds_per_epoch": float(pd.concat(histories).seconds.mean()) if histories
        else math.nan,
    })
    return row


def readings_table(points: dict[str, list[dict]], root: str | Path, seeds: list[int], *,
                   reference: str, protocol: str, test: str = "ttest",
                   correction: str = "holm") -> pd.DataFrame:
    """One row per (dataset, point) of a variants study, in the study's order.

    ``points``: dataset -> [{"name", "label", "overrides"}] (the study's points: its include
    labels, ``default``, the variants); ``root``: the results folder holding
    ``<dataset>/<label>/best_params.json`` and ``seed<s>/{metrics.json, per_user.parquet,
    training/history.csv}``; ``reference``: the label the rows are compared with (an include);
    ``protocol``: the configured evaluation protocol (recbench.evaluation.protocol_name), whose
    per-user columns are tested. See the module docstring for the columns.
    """
    root = Path(root)
    rows = []
    for dataset, pts in points.items():
        names = [p["name"] for p in pts]
        if reference not in names or DEFAULT not in names:
            raise DataError(f"readings on {dataset}: the study's points {names} need the "
                            f"reference {reference!r} (an include:) and {DEFAULT!r}.")
        runs = {p["label"]: _runs(root, dataset, p["label"], seeds, protocol) for p in pts}
        first: dict[str, str] = {}  # label -> name of its first row
        table = []
        for i, p in enumerate(pts):  # the include labels, then default, then the variants
            role = ("reference" if p["name"] == reference else "default" if p["name"] == DEFAULT
                    else "include" if i < names.index(DEFAULT) else "variant")
            row = _row(dataset, p, role, runs[p["label"]], protocol)
            row["same_as"] = first.setdefault(p["label"], p["name"])
            row["same_as"] = "" if row["same_as"] == p["name"] else row["same_as"]
            table.append(row)
        by_name = {r["name"]: r for r in table}
        against = {"reference": by_name[reference], "default": by_name[DEFAULT]}
        for versus, ref in against.items():
            for metric in METRICS:
                tested = [r for r in table if not r["same_as"] and r["label"] != ref["label"]
                          and r["role"] != "reference"
                          and (versus == "reference" or r["role"] == "variant")]
                prefix = f"{metric}_vs_{versus}"
                for r in table:
                    r[f"{prefix}_diff_pct"] = r[f"{metric}_mean_pct"] - ref[f"{metric}_mean_pct"]
                    r[f"{prefix}_p"] = r[f"{prefix}_p_adjusted"] = math.nan
                for r in tested:
                    a, b = paired_per_user(runs[r["label"]]["per_user"],
                                           runs[ref["label"]]["per_user"], metric)
                    r[f"{prefix}_p"] = paired_test(a, b, test).pvalue
                adjusted = adjust_pvalues([r[f"{prefix}_p"] for r in tested], correction)
                for r, p_adj in zip(tested, adjusted):
                    r[f"{prefix}_p_adjusted"] = float(p_adj)
        budget = (against["reference"]["epochs"], against["reference"]["patience"])
        default_valid = against["default"]["valid_ndcg@10_pct"]
        for r in table:
            r["budget_differs"] = (r["epochs"], r["patience"]) != budget
            r["validation_prefers"] = (r["role"] == "variant" and not r["same_as"]
                                       and r["valid_ndcg@10_pct"] > default_valid)
        rows += table
    return pd.DataFrame(rows).assign(test=test, correction=correction)


def paper_verdict(row, paper_name: str | None, model: str = "CREATE",
                  rules: Rules = Rules()) -> str | None:
    """A sentence setting the default row's test NDCG@10 against the paper's Table 2 number for
    ``model`` on ``paper_name``, by the verdict every report uses (recbench.protocol.verdicts, seed and
    test-user noise together); None where the dataset is not the paper's."""
    paper, pm = published_value(paper_name, "ndcg@10", model) if paper_name else (math.nan, 0.0)
    if math.isnan(paper):
        return None
    v = cell_verdict(row["dataset"], model, row["ndcg@10_mean_pct"], row["ndcg@10_ci95_pct"],
                     int(row["n_seeds"]), paper, pm, user_sd=row["ndcg@10_user_sd_pct"],
                     n_users=int(row["n_users"]), rules=rules)
    why = f" ({v.reason})" if v.reason else ""
    return (f"Against the paper: the default's test NDCG@10 {row['ndcg@10_mean_pct']:.2f} % "
            f"against {model}'s {paper:.2f} % in the paper's Table 2 on {paper_name}: "
            f"*{v.verdict}*{why} (ours − paper {v.diff:+.2f}, 90% interval "
            f"[{v.diff_low:+.2f}, {v.diff_high:+.2f}], margin ±{v.margin:.2f}). "
            + rules.describe())


def _num(value, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        f"{value:.{digits}f}")


def _interval(row, metric: str) -> str:
    mean, ci = row[f"{metric}_mean_pct"], row[f"{metric}_ci95_pct"]
    return _num(mean) + ("" if math.isnan(ci) else f" ± {ci:.2f}")


def _p(p: float) -> str:
    return "" if math.isnan(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def _versus(row, versus: str, alpha: float) -> tuple[str, str]:
    prefix = f"ndcg@10_vs_{versus}"
    if row["role"] == "reference" or (versus == "default" and row["role"] != "variant"):
        return "", ""
    diff = f"{row[f'{prefix}_diff_pct']:+.2f}"
    if row["same_as"]:
        return diff, f"same job as `{row['same_as']}`"
    p, adjusted = row[f"{prefix}_p"], row[f"{prefix}_p_adjusted"]
    if math.isnan(p):
        return diff, ""
    return diff, f"{_p(p)} ({_p(adjusted)}{'*' if adjusted < alpha else ''})"


def _budget(row, reference: str) -> str:
    def text(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
    cell = f"{text(row['epochs'])} / {text(row['patience'])} / {text(row['epochs_trained'])}"
    return cell + (f" (budget ≠ {reference}'s)" if row["budget_differs"] else "")


def render_readings(table: pd.DataFrame, *, base: str, reference: str, protocol: str,
                    alpha: float = 0.05, paper_names: dict | None = None,
                    rules: Rules = Rules(), readings: dict | None = None) -> str:
    """results/readings.md from ``readings_table``'s frame; ``readings``: the choices of a base
    that selects its reading on validation (recbench/protocol/reading_selection.py), which `default` is."""
    paper_names = paper_names or {}
    test, correction = table.test.iloc[0], table.correction.iloc[0]
    seeds = ", ".join(str(n) for n in sorted(set(table.n_seeds)))
    lines = [
        f"# Readings of {base}: one reading at a time, beside {reference} and the default "
        "(values in %)", "",
        f"Every row is its own set of jobs: `default` is {base} as configured (Table 2's jobs); "
        f"each other {base} row is the default's tuned parameters plus the row's overrides, "
        "fitted once on the validation split with early stopping on validation NDCG@10, then "
        "retrained per seed on the whole training part for that fit's best epoch and tested. "
        f"{reference} is its Table 2 jobs. Protocol: {PROTOCOL_TEXT[protocol]}.", "",
        f"Val NDCG@10: the row's tuning (for {reference} and `default`, the best trial of their "
        "search). Test NDCG@10 and Recall@10: mean ± 95% confidence half-width over seeds "
        f"(Student t; seeds per row: {seeds}). Δ: difference of the test NDCG@10 means in "
        f"percentage points; p: paired {test} on the per-user NDCG@10 of the same test users "
        f"(averaged over seeds), then in brackets {correction}-corrected across the rows of the "
        f"dataset, `*` below {alpha:g}. Epochs: the most the budget allows / patience (early "
        "stopping on validation) / epochs the final fits trained (mean over seeds); a budget "
        f"unlike {reference}'s is flagged. Recall@10's differences and p-values, and every job "
        "label: results/readings.csv.", "",
        "**Defaults are chosen on validation, never on test**: a reading validation prefers "
        "(higher Val NDCG@10 than `default`) is named under its dataset; the test columns "
        "measure the readings, they do not choose among them.",
        *reading_lines(readings, list(dict.fromkeys(table.dataset)),
                       " (`default` is that reading; every other row changes it)"),
    ]
    headers = ["Reading", "Overrides", "Val NDCG@10", "Test NDCG@10", "Test Recall@10",
               f"Δ vs {reference}", "p (adjusted)", "Δ vs default", "p (adjusted)",
               "s / epoch", "Epochs: max / patience / trained"]
    for dataset, rows in table.groupby("dataset", sort=False):
        paper = paper_names.get(dataset)
        lines += ["", f"## {dataset}" + (f" ({paper})" if paper else ""), ""]
        body = []
        for _, r in rows.iterrows():
            name = f"**{r['name']}**" if r["role"] == "default" else r["name"]
            body.append([name, r["overrides"], _num(r["valid_ndcg@10_pct"]),
                         _interval(r, "ndcg@10"), _interval(r, "recall@10"),
                         *_versus(r, "reference", alpha), *_versus(r, "default", alpha),
                         _num(r["seconds_per_epoch"], 1), _budget(r, reference)])
        lines.append(tabulate(body, headers=headers, tablefmt="github", disable_numparse=True))
        default = rows[rows.role == "default"].iloc[0]
        preferred = rows[rows.validation_prefers]
        lines.append("")
        if preferred.empty:
            lines.append(f"Validation prefers no reading over the default "
                         f"(Val NDCG@10 {default['valid_ndcg@10_pct']:.2f}).")
        else:
            lines.append("Validation prefers over the default (Val NDCG@10 "
                         f"{default['valid_ndcg@10_pct']:.2f}): " + ", ".join(
                             f"`{r['name']}` ({r['valid_ndcg@10_pct']:.2f})"
                             for _, r in preferred.iterrows()) + ".")
        verdict = paper_verdict(default, paper, base, rules)
        if verdict:
            lines += ["", verdict]
    return "\n".join(lines) + "\n"
