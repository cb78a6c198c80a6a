"""Figures 2-5 of the paper from per-seed results, each with the numbers it plots beside it,
and the readings report's figure.

Every figure is a PNG plus a CSV of exactly the plotted values (so a reader can check a point
without reading pixels; the readings figure's CSV is results/readings.csv). The paper has these
figures only as images; its captions give rough values, printed under each panel as "paper: ..."
(PAPER_NOTES). Where a caption gives a number (PAPER_VALUES), the note adds our verdict against
it, the same as the tables' (recbench.protocol.verdicts.cell_verdict), and the CSV the paper's value and
the verdict per point.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from recbench.io import atomic_path, write_csv  # noqa: E402
from recbench.protocol.stats import mean_ci  # noqa: E402
from recbench.protocol.verdicts import VERDICTS, Rules, cell_verdict  # noqa: E402


#: what the paper's captions and Section 5 say, per figure and paper dataset name
PAPER_NOTES = {
    "fig2_training_curves": {
        "Beauty": "validation NDCG@10 reaches ~0.018, stable after ~50-100 epochs",
        "Sports": "validation NDCG@10 reaches ~0.020, stable after ~50-100 epochs",
    },
    "fig3_graph_size": {
        "ML-1M": "best for graphs with n > 40% (4 seeds, mean)",
        "Beauty": "optimum around n = 40% (4 seeds, mean)",
    },
    "fig4_warmup": {
        "Beauty": "peak at 50 warm-up epochs (best of 3 seeds)",
        "Sports": "peak at 10 warm-up epochs (best of 3 seeds)",
    },
    "fig5_barlow_weight": {
        "Beauty": "sharp rise 0.0 -> 0.1, then stable ~0.0215 up to 1.0",
        "Sports": "sharp rise 0.0 -> 0.1, peak ~0.0165 at 0.2, ~0.0155 at 1.0",
    },
}


#: the numbers of those notes, NDCG@10 in %: Figure 2 the plateau of the validation curve (ours:
#: its highest point), the sweeps [(lowest x, highest x, value)] over the swept parameter
PAPER_VALUES = {
    "fig2_training_curves": {"Beauty": 1.8, "Sports": 2.0},
    "fig5_barlow_weight": {"Beauty": [(0.1, 1.0, 2.15)],
                           "Sports": [(0.2, 0.2, 1.65), (1.0, 1.0, 1.55)]},
}


#: the swept parameter, its axis label and the seed aggregate of each sweep figure
SWEEPS = {
    "fig3_graph_size": ("graph.graph_last_fraction", "graph size n, % of each user's last "
                        "interactions", "mean", 100.0),
    # warm-up epochs come before CREATE's `epochs` joint ones: every point has the same joint budget
    "fig4_warmup": ("warmup_epochs", "graph warm-up epochs (before the same joint epochs)", "max",
                    1.0),
    "fig5_barlow_weight": ("w_align", "Barlow Twins weight", "mean", 1.0),
}


def _note(figure: str, paper_name: str | None, verdicts: list[str] = ()) -> str:
    note = PAPER_NOTES.get(figure, {}).get(paper_name or "")
    if not note:
        return "paper: (not one of the paper's datasets for this figure)"
    if verdicts:
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in VERDICTS if verdicts.count(v))
        note += f"\nours against it: {counts} (of {len(verdicts)})"
    return f"paper: {note}"


def _sweep_value(figure: str, paper_name: str | None, x) -> float:
    """The paper's NDCG@10 (%) at swept value x, NaN where its caption gives none."""
    for low, high, value in PAPER_VALUES.get(figure, {}).get(paper_name or "", []):
        if x is not None and low - 1e-9 <= x <= high + 1e-9:
            return value
    return math.nan


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _panels(n: int):
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.8), squeeze=False)
    return fig, axes[0]


#: CREATE's loss terms in history.csv and their line styles in Figure 2
TERMS = {"L_local": ":", "L_global": "--", "L_align": "-."}


def training_curves(histories: dict[str, list[pd.DataFrame]],
                    paper_names: dict[str, str | None], png, csv,
                    rules: Rules = Rules()) -> pd.DataFrame:
    """Figure 2: training loss (left axis) and validation NDCG@10 (right axis) per epoch.

    ``histories``: dataset -> history.csv frames (the pipeline passes the best tuning trial's, the
    run that validates every epoch); curves are their mean per epoch, validation points where
    validation ran. The x axis counts every epoch, warm-up first; the warm-up boundary (the last
    epoch whose ``phase`` is ``warmup``, the run's own, tuned or not) is a dashed line, and
    ``epochs`` of CREATE counts the joint epochs after it. CREATE's loss terms (``L_local``,
    ``L_global``, ``L_align``, weighted as in Eq. 5 they sum to the training loss) are thin lines
    on the loss axis, and its graph branch's validation NDCG@10 at the end of warm-up a marker.
    Where the paper's caption gives the curve's plateau, the note judges the highest point of
    ours against it (over the runs: one run, as the pipeline passes, is undecided).
    """
    rows = []
    fig, axes = _panels(len(histories))
    for ax, (dataset, frames) in zip(axes, histories.items()):
        frame = pd.concat(frames)
        warm = frame.epoch[frame.phase == "warmup"] if "phase" in frame else frame.epoch[:0]
        warmup = int(warm.max()) if len(warm) else 0
        cols = ["train_loss", *[c for c in TERMS if c in frame], "val_ndcg@10",
                *[c for c in ("graph_val_ndcg@10",) if c in frame]]
        h = frame.groupby("epoch", as_index=False)[cols].mean()
        h.insert(0, "dataset", dataset)
        rows.append(h)
        ax.plot(h.epoch, h.train_loss, color="tab:red", label="training loss")
        for term, style in TERMS.items():
            if term in h and h[term].notna().any():
                ax.plot(h.epoch, h[term], color="tab:red", linewidth=0.8, linestyle=style,
                        label=term)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss", color="tab:red")
        right = ax.twinx()
        val = h.dropna(subset=["val_ndcg@10"])
        right.plot(val.epoch, val["val_ndcg@10"], color="tab:blue", marker=".",
                   label="validation NDCG@10")
        if "graph_val_ndcg@10" in h:
            g = h.dropna(subset=["graph_val_ndcg@10"])
            right.plot(g.epoch, g["graph_val_ndcg@10"], color="tab:green", marker="s",
                       linestyle="none", label="graph branch alone, val NDCG@10")
        right.set_ylabel("validation NDCG@10", color="tab:blue")
        if len(TERMS.keys() & set(h.columns)) or "graph_val_ndcg@10" in h:
            lines = ax.get_legend_handles_labels()
            more = right.get_legend_handles_labels()
            ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="center right")
        if warmup:
            ax.axvline(warmup + 0.5, color="grey", linestyle="--", linewidth=1)
            ax.text(warmup + 0.5, ax.get_ylim()[1], " warm-up ends", color="grey", va="top",
                    fontsize=8)
        runs = f"{len(frames)} runs" if len(frames) > 1 else "best tuning trial"
        paper = PAPER_VALUES["fig2_training_curves"].get(paper_names.get(dataset) or "")
        verdicts = []
        if paper is not None:
            peak, ci = mean_ci([100 * f["val_ndcg@10"].max() for f in frames])
            verdict = cell_verdict(dataset, "validation", peak, ci, len(frames), paper,
                                   rules=rules).verdict
            verdicts.append(verdict)
            h["paper_val_ndcg@10"] = paper / 100
            h["verdict_peak"] = verdict
        note = _note("fig2_training_curves", paper_names.get(dataset), verdicts)
        ax.set_title(f"{dataset} ({runs})\n{note}", fontsize=9)
    fig.suptitle("Figure 2: CREATE training curves", y=1.06)
    _save(fig, png)
    data = pd.concat(rows, ignore_index=True)
    write_csv(data, csv)
    return data


def sweep(figure: str, long: pd.DataFrame, points: dict[str, list], paper_names: dict,
          png, csv, spread: pd.DataFrame | None = None, rules: Rules = Rules()) -> pd.DataFrame:
    """Figures 3-5: test NDCG@10 against the swept parameter, one panel per dataset.

    ``long``: per-seed metrics (reports.collect); ``points``: dataset -> [(label, values)].
    Figure 3 and 5 plot the mean with its 95% CI over seeds, Figure 4 the best seed, as the paper.
    A point where the paper's caption gives a value (PAPER_VALUES) gets its verdict, with the
    test-user noise of ``spread`` (reports.per_user_spread) where given.
    """
    key, xlabel, aggregate, scale = SWEEPS[figure]
    ndcg = long[long.metric == "ndcg@10"]
    rows = []
    for dataset, pts in points.items():
        for label, values in pts:
            seeds = ndcg[(ndcg.dataset == dataset) & (ndcg.model == label)]
            if seeds.empty:
                raise ValueError(f"{figure}: no results for {dataset}/{label}")
            mean, ci = mean_ci(seeds.value)
            x = values[key]
            row = {"dataset": dataset, key: x, "x": (0.0 if x is None else x) * scale,
                   "label": label, "n_seeds": len(seeds), "mean_ndcg@10": mean,
                   "ci95_ndcg@10": ci, "best_ndcg@10": float(seeds.value.max())}
            paper = _sweep_value(figure, paper_names.get(dataset), x)
            if not math.isnan(paper):
                users = (spread[(spread.dataset == dataset) & (spread.model == label)
                                & (spread.metric == "ndcg@10")] if spread is not None else [])
                row["paper_ndcg@10"] = paper / 100
                row["verdict"] = cell_verdict(
                    dataset, label, 100 * mean, 100 * ci, len(seeds), paper,
                    user_sd=float(users.user_sd_pct.iloc[0]) if len(users) else math.nan,
                    n_users=int(users.n_users.iloc[0]) if len(users) else 0, rules=rules).verdict
            rows.append(row)
    data = pd.DataFrame(rows).sort_values(["dataset", "x"], kind="stable")
    fig, axes = _panels(len(points))
    for ax, dataset in zip(axes, points):
        d = data[data.dataset == dataset]
        if aggregate == "max":
            ax.plot(d.x, d["best_ndcg@10"], marker="o")
            ylabel = f"test NDCG@10 (best of {d.n_seeds.max()} seeds)"
        else:
            err = d["ci95_ndcg@10"].where(d["ci95_ndcg@10"].map(math.isfinite))
            ax.errorbar(d.x, d["mean_ndcg@10"], yerr=err, marker="o", capsize=3)
            ylabel = f"test NDCG@10 (mean ± 95% CI, {d.n_seeds.max()} seeds)"
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        verdicts = list(d.verdict.dropna()) if "verdict" in d else []
        ax.set_title(f"{dataset}\n{_note(figure, paper_names.get(dataset), verdicts)}",
                     fontsize=9)
        ax.grid(alpha=0.3)
    titles = {"fig3_graph_size": "Figure 3: graph size", "fig4_warmup": "Figure 4: GCN warm-up",
              "fig5_barlow_weight": "Figure 5: Barlow Twins weight"}
    fig.suptitle(titles[figure], y=1.06)
    _save(fig, png)
    write_csv(data, csv)
    return data


def readings(table: pd.DataFrame, png) -> None:
    """results/figures/readings.png: one panel per dataset, one point per reading (test NDCG@10,
    mean ± 95% CI over seeds), the reference and the default as horizontal lines.

    ``table``: recbench.reporting.readings.readings_table's frame; the plotted values are its
    ``ndcg@10_mean_pct`` and ``ndcg@10_ci95_pct`` columns (results/readings.csv).
    """
    datasets = list(dict.fromkeys(table.dataset))
    fig, axes = _panels(len(datasets))
    for ax, dataset in zip(axes, datasets):
        d = table[table.dataset == dataset]
        ref = d[d.role == "reference"].iloc[0]
        default = d[d.role == "default"].iloc[0]
        shown = d[d.role != "reference"].reset_index(drop=True)
        err = shown["ndcg@10_ci95_pct"].where(shown["ndcg@10_ci95_pct"].map(math.isfinite))
        colors = ["tab:orange" if r == "default" else "tab:blue" for r in shown.role]
        ax.errorbar(shown.index, shown["ndcg@10_mean_pct"], yerr=err, fmt="none",
                    ecolor="grey", capsize=3)
        ax.scatter(shown.index, shown["ndcg@10_mean_pct"], c=colors, zorder=3)
        ax.axhline(ref["ndcg@10_mean_pct"], color="tab:red", linewidth=1,
                   label=f"{ref['name']} (reference)")
        ax.axhline(default["ndcg@10_mean_pct"], color="tab:orange", linestyle="--",
                   linewidth=1, label="default")
        ax.set_xticks(shown.index, shown.name, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(f"test NDCG@10, % (mean ± 95% CI, {d.n_seeds.max()} seeds)")
        ax.set_title(dataset, fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Readings: test NDCG@10 of each reading", y=1.02)
    _save(fig, png)
