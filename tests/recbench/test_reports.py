"""Reports: Table 2's Gain column, Tables 4 and 5 beside the paper, Figures 2-5 and their CSVs."""

import pandas as pd
import pytest

from recbench import figures
from recbench.reports import METRICS, render_table2, render_table4, render_table5, summarise


def long_frame(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """(dataset, model) -> per-seed NDCG@10; every other metric gets the same numbers."""
    rows = [{"dataset": d, "model": m, "seed": s, "metric": metric, "value": v}
            for (d, m), seeds in values.items() for s, v in enumerate(seeds) for metric in METRICS]
    return pd.DataFrame(rows)


def test_table2_gain_is_create_over_sasrec_beside_the_papers():
    long = long_frame({("sp", "SASRec"): [0.010, 0.012], ("sp", "CREATE"): [0.0132, 0.0132]})
    text = render_table2(summarise(long, {"sp": "Sports"}), ["sp"], ["SASRec", "CREATE"])
    header = [line for line in text.splitlines() if line.startswith("| Dataset")][0]
    assert header.rstrip(" |").endswith("Gain")
    ndcg = [line for line in text.splitlines() if "| NDCG@10 " in line][0]
    # ours: 1.32 / 1.10 - 1 = +20%; the paper's Sports NDCG@10: 1.58 / 1.48 - 1 = +7%
    assert "+20% [+7%]" in ndcg


def test_no_gain_column_without_both_models():
    long = long_frame({("sp", "SASRec"): [0.01, 0.02]})
    assert "Gain" not in render_table2(summarise(long), ["sp"], ["SASRec"])


def test_table4_rows_and_paper_values():
    pts = {"sp": [("SASRec", {}), ("CREATE~alignment=none", {"graph_backbone": "LightGCN",
                                                             "alignment": "none"}),
                  ("CREATE", {"graph_backbone": "UltraGCN", "alignment": "barlow"})]}
    long = long_frame({("sp", "SASRec"): [0.01, 0.01], ("sp", "CREATE~alignment=none"): [0.02, 0.02],
                       ("sp", "CREATE"): [0.03, 0.03]})
    text = render_table4(summarise(long), pts, {"sp": "Sports"})
    rows = {line.split("|")[2].strip() + "/" + line.split("|")[3].strip(): line
            for line in text.splitlines() if line.startswith("| sp")}
    assert "1.00 ± 0.00 [1.48]" in rows["Sequential (SASRec)/-"]
    assert "2.00 ± 0.00 [1.37]" in rows["LightGCN/none"]  # Sports, LightGCN, None: 1.37
    assert "3.00 ± 0.00 [1.58]" in rows["UltraGCN/barlow"]  # Sports, UltraGCN, Barlow: 1.58
    assert "[96.33]" in rows["UltraGCN/barlow"]  # its Cov@100


def test_table5_grid_with_the_papers_unnamed_dataset():
    grid = [("SASRec", "LightGCN", "a"), ("SASRec", "UltraGCN", "b"),
            ("BERT4Rec", "LightGCN", "c"), ("BERT4Rec", "UltraGCN", "d")]
    pts = {"x": [(label, {"sequential_backbone": s, "graph_backbone": g}) for s, g, label in grid]}
    long = long_frame({("x", label): [0.01 * (i + 1)] * 2 for i, (_, _, label) in enumerate(grid)})
    text = render_table5(summarise(long), pts)
    assert "does not name the dataset" in text
    line = [l for l in text.splitlines() if "| BERT4Rec " in l and "NDCG@10" in l][0]
    assert "3.00 ± 0.00 [1.39]" in line and "4.00 ± 0.00 [1.43]" in line


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("figure, key, column", [
    ("fig3_graph_size", "graph.graph_last_fraction", "mean_ndcg@10"),
    ("fig4_warmup", "warmup_epochs", "best_ndcg@10"),
    ("fig5_barlow_weight", "w_align", "mean_ndcg@10"),
])
def test_sweep_figures_plot_the_aggregate_over_seeds(tmp_path, figure, key, column):
    pts = {"b": [("p1", {key: 1}), ("p0", {key: 0})]}
    long = long_frame({("b", "p0"): [0.1, 0.3], ("b", "p1"): [0.2, 0.6]})
    png, csv = tmp_path / "f.png", tmp_path / "f.csv"
    figures.sweep(figure, long, pts, {"b": "Beauty"}, png, csv)
    assert _is_png(png)
    data = pd.read_csv(csv)
    assert list(data[key]) == [0, 1]  # sorted by the swept value
    expected = [0.3, 0.6] if column == "best_ndcg@10" else [0.2, 0.4]
    assert list(data[column]) == pytest.approx(expected)


def test_training_curves_average_seeds_and_write_csv(tmp_path, monkeypatch):
    h = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.0],
                      "val_ndcg@10": [None, 0.1, 0.2], "phase": ["warmup", "joint", "joint"]})
    h2 = h.assign(train_loss=h.train_loss + 1, **{"val_ndcg@10": [None, 0.3, 0.4]})
    png, csv = tmp_path / "f.png", tmp_path / "f.csv"
    boundaries = []
    monkeypatch.setattr(figures.plt.Axes, "axvline",
                        lambda self, x, *a, **kw: boundaries.append(x))
    figures.training_curves({"b": [h, h2]}, {"b": "Beauty"}, png, csv)
    assert _is_png(png)
    assert boundaries == [1.5]  # after the history's last warm-up epoch
    data = pd.read_csv(csv)
    assert list(data.train_loss) == [3.5, 2.5, 1.5]
    assert list(data["val_ndcg@10"].iloc[1:]) == pytest.approx([0.2, 0.3])
    figures.training_curves({"b": [h.drop(columns="phase")]}, {"b": None}, png, csv)
    assert boundaries == [1.5]  # a model without phases: no boundary


def test_significance_marks_and_p_values_match_scipy(tmp_path):
    import numpy as np
    from scipy import stats

    from recbench.reports import add_significance, collect, significance

    rng = np.random.default_rng(0)
    users = np.arange(200)
    files, metric_files = [], []
    base = rng.random(200)
    for model, shift in [("SASRec", 0.0), ("CREATE", 0.2), ("PopRnd", 0.001)]:
        for seed in (0, 1):
            d = tmp_path / "ds" / model / f"seed{seed}"
            d.mkdir(parents=True)
            ndcg = np.clip(base + shift + rng.normal(0, 0.01, 200), 0, 1)
            frame = pd.DataFrame({"user": users, "target": users, "rank": 0, "ndcg@10": ndcg,
                                  "recall@10": ndcg, "ndcg@100": ndcg, "recall@100": ndcg})
            frame.to_parquet(d / "per_user.parquet")
            files.append(d / "per_user.parquet")
            (d / "metrics.json").write_text(pd.Series(
                {m: float(ndcg.mean()) for m in METRICS}).to_json())
            metric_files.append(d / "metrics.json")
    tests = significance(files, "SASRec")
    per_seed = {m: [pd.read_parquet(tmp_path / "ds" / m / f"seed{s}" / "per_user.parquet")["ndcg@10"]
                    for s in (0, 1)] for m in ("SASRec", "CREATE")}
    expected = stats.ttest_rel(sum(per_seed["CREATE"]) / 2, sum(per_seed["SASRec"]) / 2).pvalue
    got = tests[(tests.model == "CREATE") & (tests.metric == "ndcg@10")].p_value.iloc[0]
    assert got == pytest.approx(expected)
    summary = add_significance(summarise(collect(metric_files)), tests)
    text = render_table2(summary, ["ds"], ["SASRec", "CREATE", "PopRnd"])
    header = [c.strip() for c in text.splitlines()[4].split("|")]
    ndcg = [l for l in text.splitlines() if "| NDCG@10 " in l][0]
    cells = dict(zip(header, [c.strip() for c in ndcg.split("|")]))
    assert cells["CREATE"].endswith("*")  # far above SASRec
    assert "*" not in cells["SASRec"]  # the reference itself
    cov = dict(zip(header, [c.strip() for c in
                            [l for l in text.splitlines() if "| Coverage@10 " in l][0].split("|")]))
    assert "*" not in cov["CREATE"]  # no per-user coverage, no test
    assert "paired t-test" in text


def test_table3_has_computed_and_quoted_rows():
    from recbench.reports import render_table3

    long = long_frame({("b-loom", "SASRec"): [0.010, 0.012], ("b-loom", "CREATE"): [0.02, 0.02],
                       ("b", "SASRec"): [0.03, 0.03]})
    text = render_table3(summarise(long), {"Beauty": "b-loom"}, {"b-loom": "b"}, ["SASRec", "CREATE"])
    header = [c.strip() for c in text.splitlines()[4].split("|")]
    hr = dict(zip(header, [c.strip() for c in [l for l in text.splitlines()
                                                if "| HR@10 " in l][0].split("|")]))
    assert hr["LOOM (quoted)"] == "1.43 (quoted)" and hr["GSAU (quoted)"] == "1.35 (quoted)"
    assert hr["SASRec (ours, LOOM setup)"].startswith("1.10 ± ") and hr[
        "SASRec (ours, LOOM setup)"].endswith("[1.19]")
    assert hr["CREATE (ours, LOOM setup)"] == "2.00 ± 0.00 [1.49]"
    assert hr["SASRec (ours, own setup)"] == "3.00 ± 0.00 [3.83]"  # Table 2's Beauty Recall@10


def write_run(root, dataset, model, seed, configured, values, per_user):
    """A metrics.json and per_user.parquet as recbench.runner writes them: the configured
    protocol's metrics at the top level and plain columns, the other's under its name."""
    import json

    other = "unfiltered" if configured == "history_filtered" else "history_filtered"
    d = root / dataset / model / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(
        {**{m: values[configured] for m in METRICS}, "protocol": configured,
         other: {m: values[other] for m in METRICS}}))
    frame = pd.DataFrame({"user": range(len(per_user[configured])), "target": 0, "rank": 0})
    for protocol, prefix in ((configured, ""), (other, f"{other}/")):
        for m in ("ndcg@10", "recall@10", "ndcg@100", "recall@100"):
            frame[prefix + m] = per_user[protocol]
    frame.to_parquet(d / "per_user.parquet")
    return d / "metrics.json", d / "per_user.parquet"


def test_table2_has_both_protocols_and_holm_corrected_p_values(tmp_path):
    import numpy as np
    from scipy import stats

    from recbench.errors import DataError
    from recbench.reports import add_significance, collect, significance
    from recbench.stats import adjust_pvalues

    rng = np.random.default_rng(1)
    base = rng.random(100)
    shifts = {"SASRec": 0.0, "CREATE": 0.05, "PopRnd": -0.01, "SVD": 0.002}
    metric_files, per_user_files = [], []
    for model, shift in shifts.items():
        for seed in (0, 1):
            filtered = np.clip(base + shift + rng.normal(0, 0.05, 100), 0, 1)
            unfiltered = filtered / 2  # the history crowds the lists
            m, p = write_run(tmp_path, "ds", model, seed, "history_filtered",
                             {"history_filtered": filtered.mean(), "unfiltered": unfiltered.mean()},
                             {"history_filtered": filtered, "unfiltered": unfiltered})
            metric_files.append(m)
            per_user_files.append(p)
    long = collect(metric_files, both=True, configured="history_filtered")
    assert set(long.protocol) == {"history_filtered", "unfiltered"}
    assert set(long[long.configured].protocol) == {"history_filtered"}
    assert collect(metric_files).value.tolist() == long[long.configured].value.tolist()
    with pytest.raises(DataError, match="filter_seen"):
        collect(metric_files, both=True, configured="unfiltered")

    tests = significance(per_user_files, "SASRec", configured="history_filtered")
    assert set(tests.protocol) == {"history_filtered", "unfiltered"} and (tests.correction == "holm").all()
    # the family: the models of one (dataset, protocol, metric) row
    for (_, metric), row in tests.groupby(["protocol", "metric"]):
        assert len(row) == 3
        np.testing.assert_allclose(row.p_adjusted, adjust_pvalues(row.p_value.to_numpy(), "holm"))
    assert (tests.p_adjusted >= tests.p_value).all() and (tests.p_adjusted > tests.p_value).any()
    frames = {m: [pd.read_parquet(f) for f in per_user_files if f.parent.parent.name == m]
              for m in ("CREATE", "SASRec")}
    raw = stats.ttest_rel(*[sum(f["unfiltered/ndcg@10"] for f in frames[m]) / 2
                            for m in ("CREATE", "SASRec")]).pvalue
    got = tests[(tests.model == "CREATE") & (tests.protocol == "unfiltered")
                & (tests.metric == "ndcg@10")].p_value.iloc[0]
    assert got == pytest.approx(raw)

    summary = add_significance(summarise(long), tests)
    assert {"p_value", "p_adjusted", "protocol", "configured"} <= set(summary.columns)
    assert len(summary) == 2 * len(METRICS) * len(shifts)
    text = render_table2(summary, ["ds"], list(shifts))
    assert "Protocol: history filtered (`evaluation.filter_seen: true`)" in text
    assert "Holm's correction across the models of each (dataset, metric) row" in text
    assert "also holds the unfiltered protocol's numbers" in text
    ndcg = [line for line in text.splitlines() if "| NDCG@10 " in line]
    assert len(ndcg) == 1  # one protocol shown
    filtered_mean = 100 * np.mean([f["ndcg@10"].mean() for f in frames["SASRec"]])
    assert f"{filtered_mean:.2f} ± " in ndcg[0]


def reproduction_summary():
    """A hand-made Table 2 summary: one paper dataset in both protocols, one of our own."""
    nan = float("nan")
    rows = [
        # protocol, model, mean, ci, paper, paper's ±
        ("history_filtered", "SASRec", 7.90, 0.10, 7.96, 0.66),  # |-0.06| <= 0.76: yes
        ("history_filtered", "SVD", 3.28, 0.05, 2.78, 0.0),  # 0.50 > 0.05: no
        ("history_filtered", "Random", 0.12, nan, 0.12, 0.0),  # one seed: undetermined
        ("history_filtered", "iALS", 3.42, 0.10, nan, nan),  # not in the paper: no cell
        ("history_filtered", "CREATE", 9.60, 0.20, 8.99, 0.26),  # 0.61 > 0.46: no
        ("unfiltered", "SASRec", 5.14, 0.10, 7.96, 0.66),  # no
        ("unfiltered", "SVD", 0.28, 0.05, 2.78, 0.0),  # no
        ("unfiltered", "Random", 0.13, 0.02, 0.12, 0.0),  # 0.01 <= 0.02: yes
        ("unfiltered", "iALS", 0.87, 0.10, nan, nan),
        ("unfiltered", "CREATE", 6.00, 0.20, 8.99, 0.26),  # no
    ]
    frame = pd.DataFrame(
        [{"dataset": "ml", "protocol": p, "configured": p == "history_filtered", "metric": "ndcg@10",
          "model": m, "mean_pct": mean, "ci95_pct": ci, "n_seeds": 3, "paper_pct": paper,
          "paper_pm_pct": pm} for p, m, mean, ci, paper, pm in rows])
    own = frame.assign(dataset="syn", paper_pct=nan, paper_pm_pct=nan)
    return pd.concat([frame, own], ignore_index=True)


def test_reproduction_counts_cells_inside_the_widened_interval():
    from recbench.reports import render_reproduction, reproduction_cells, reproduction_counts

    counts = reproduction_counts(reproduction_cells(reproduction_summary())).set_index("protocol")
    assert list(counts.dataset.unique()) == ["ml"]  # our own dataset has nothing to compare
    assert counts.loc["history_filtered", ["cells", "reproduced", "not_reproduced",
                                           "undetermined"]].tolist() == [4, 1, 2, 1]
    assert counts.loc["unfiltered", ["cells", "reproduced", "not_reproduced",
                                     "undetermined"]].tolist() == [4, 1, 3, 0]
    text = render_reproduction(reproduction_summary(), ["ml", "syn"],
                               ["SVD", "iALS", "Random", "SASRec", "CREATE"])
    assert ("- **ml**: 1 of 4 cells reproduced (1 undetermined: one seed, no interval) "
            "(history_filtered, the configured protocol); 1 of 4 cells reproduced in the "
            "unfiltered protocol (same scores).") in text
    assert "**syn**" not in text
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ml")]
    assert [r[2] for r in rows] == ["SASRec", "SVD", "Random", "CREATE"]  # the paper's order
    assert rows[0][3:] == ["7.90 ± 0.10", "7.96 ± 0.66", "-0.06", "0.76", "yes"]
    assert rows[1][3:] == ["3.28 ± 0.05", "2.78", "+0.50", "0.05", "no"]
    assert rows[2][-1] == "n/a (one seed)"


def test_reproduction_on_data_not_in_the_paper_says_nothing_to_compare():
    from recbench.reports import render_reproduction

    summary = reproduction_summary()
    text = render_reproduction(summary[summary.dataset == "syn"], ["syn"], ["SASRec"])
    assert "Nothing to compare" in text and "syn" in text and "|" not in text
