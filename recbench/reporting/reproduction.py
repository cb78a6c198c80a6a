"""results/reproduction.md: every Table 2 cell's verdict against the paper, the paper's claims
(CREATE beats SASRec and the graph models) tested on the per-user metrics, and what a run needs
to detect the paper's Gain."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from recbench.canonical import model_order
from recbench.protocol.stats import paired_per_user
from recbench.protocol.verdicts import (VERDICTS, Rules, beats, gain_power, matches_gain, paired_gain,
                               seed_var_of_mean)
from recbench.reporting.common import (METRICS, PAPER_CLAIMS, PAPER_METRIC, PER_USER_METRICS,
                                       PROTOCOL_TEXT, configured_rows, per_user_tables, published,
                                       published_value, reading_lines, summary_mean, summary_row,
                                       verdict_counts)


def _paper_gain(dataset: str | None, metric: str, model: str, reference: str) -> dict:
    """The paper's gain of model over reference on a dataset (a fraction); on data that is not
    the paper's, the smallest gain the paper reports for the metric over its datasets
    (``source`` names which)."""
    if dataset is not None:
        a, b = (published_value(dataset, metric, m)[0] for m in (model, reference))
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
    detect the paper's gain (recbench.protocol.verdicts). Empty without the models."""
    rows = []
    model, baseline = PAPER_CLAIMS["model"], PAPER_CLAIMS["baseline"]
    summary = configured_rows(summary)
    protocol = summary.protocol.iloc[0] if "protocol" in summary and len(summary) else None
    tables = per_user_tables(per_user_files, {model, baseline, *PAPER_CLAIMS["graph"]})
    for dataset in dict.fromkeys(summary.dataset):
        if (dataset, model) not in tables:
            continue
        paper_name = paper_names.get(dataset)
        for metric in PER_USER_METRICS:
            graphs = {g: summary_mean(summary, dataset, metric, g) for g in PAPER_CLAIMS["graph"]
                      if (dataset, g) in tables}
            rivals = [(baseline, f"{model} > {baseline}")] if (dataset, baseline) in tables else []
            if graphs:
                best = max(graphs, key=graphs.get)
                rivals.append((best, f"{model} > best graph model ({best})"))
            for rival, claim in rivals:
                a, b = paired_per_user(tables[dataset, model], tables[dataset, rival], metric)
                rows_of = (summary_row(summary, dataset, metric, m) for m in (model, rival))
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
             "seeds' alone. The assumptions in full: recbench/protocol/verdicts.py. Values in %, "
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
