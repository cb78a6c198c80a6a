"""The readings report on hand-made result files: every number of a row, the corrected p, flags."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recbench.reporting import figures
from recbench.reporting.readings import readings_table, render_readings

USERS = np.arange(40)
SEEDS = [0, 1]
#: name -> (label, shift of the per-user NDCG@10, best_params: valid NDCG@10, epochs, best epoch)
POINTS = {
    "SASRec": ("SASRec", 0.00, 0.300, 25, 9),
    "default": ("M", 0.03, 0.310, 25, 7),
    "better": ("M~a=1", 0.06, 0.320, 25, 6),
    "longer": ("M~a=2", 0.01, 0.290, 30, 12),
    "same": ("M", 0.03, 0.310, 25, 7),  # a variant equal to the default: the same job
}


def per_user_values(shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 * seed + int(100 * shift))
    base = np.linspace(0.0, 0.6, len(USERS))
    return np.clip(base + shift + rng.normal(0, 0.12, len(USERS)), 0, 1)


def write_results(root):
    """results/<dataset>/<label>/{best_params.json, seed<s>/...} as the pipeline writes them."""
    truth = {}
    for name, (label, shift, valid, epochs, best_epoch) in POINTS.items():
        folder = root / "d" / label
        truth[name] = {"ndcg": [], "recall": [], "per_user": [], "seconds": [], "rows": []}
        (folder).mkdir(parents=True, exist_ok=True)
        (folder / "best_params.json").write_text(json.dumps({
            "valid_ndcg@10": valid, "best_epoch": best_epoch,
            "params": {"epochs": epochs, "patience": 3, "lr": 0.001}}))
        for seed in SEEDS:
            ndcg = per_user_values(shift, seed)
            recall = np.minimum(1.0, 1.5 * ndcg)
            d = folder / f"seed{seed}"
            (d / "training").mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"user": USERS, "ndcg@10": ndcg, "recall@10": recall}).to_parquet(
                d / "per_user.parquet")
            (d / "metrics.json").write_text(json.dumps({
                "protocol": "unfiltered", "ndcg@10": float(ndcg.mean()),
                "recall@10": float(recall.mean())}))
            seconds = [1.0 + seed, 2.0, 3.0 + shift][: 2 + seed]  # 2 and 3 epochs
            pd.DataFrame({"epoch": range(1, len(seconds) + 1), "seconds": seconds}).to_csv(
                d / "training" / "history.csv", index=False)
            truth[name]["ndcg"].append(100 * float(ndcg.mean()))
            truth[name]["recall"].append(100 * float(recall.mean()))
            truth[name]["per_user"].append(ndcg)
            truth[name]["seconds"] += seconds
            truth[name]["rows"].append(len(seconds))
    return truth


def points():
    return {"d": [{"name": n, "label": label, "overrides": {} if n in ("SASRec", "default")
                   else {"a": 1} if n == "better" else {"a": 2} if n == "longer" else {}}
                  for n, (label, *_) in POINTS.items()]}


def t_interval(values):
    x = np.asarray(values)
    return x.mean(), stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))


def holm(p):
    order = np.argsort(p)
    out, running = np.empty(len(p)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


@pytest.fixture()
def table_and_truth(tmp_path):
    truth = write_results(tmp_path)
    table = readings_table(points(), tmp_path, SEEDS, reference="SASRec", protocol="unfiltered")
    return table, truth


def test_every_number_of_a_row(table_and_truth):
    table, truth = table_and_truth
    rows = table.set_index("name")
    assert list(table.name) == list(POINTS)
    assert list(table.role) == ["reference", "default", "variant", "variant", "variant"]
    for name in POINTS:
        mean, ci = t_interval(truth[name]["ndcg"])
        assert rows.loc[name, "ndcg@10_mean_pct"] == pytest.approx(mean)
        assert rows.loc[name, "ndcg@10_ci95_pct"] == pytest.approx(ci)
        assert rows.loc[name, "recall@10_mean_pct"] == pytest.approx(
            np.mean(truth[name]["recall"]))
        assert rows.loc[name, "valid_ndcg@10_pct"] == pytest.approx(100 * POINTS[name][2])
        assert rows.loc[name, "seconds_per_epoch"] == pytest.approx(np.mean(truth[name]["seconds"]))
        assert rows.loc[name, "epochs_trained"] == pytest.approx(2.5)
    assert rows.loc["better", "ndcg@10_vs_default_diff_pct"] == pytest.approx(
        np.mean(truth["better"]["ndcg"]) - np.mean(truth["default"]["ndcg"]))


def test_paired_p_values_and_holm_across_the_rows(table_and_truth):
    table, truth = table_and_truth
    rows = table.set_index("name")

    def seed_mean(name):
        return np.mean(truth[name]["per_user"], axis=0)

    # against SASRec: default, better, longer (the same job as default is not tested twice)
    family = ["default", "better", "longer"]
    raw = [stats.ttest_rel(seed_mean(n), seed_mean("SASRec")).pvalue for n in family]
    assert list(rows.loc[family, "ndcg@10_vs_reference_p"]) == pytest.approx(raw)
    assert list(rows.loc[family, "ndcg@10_vs_reference_p_adjusted"]) == pytest.approx(holm(raw))
    assert math.isnan(rows.loc["same", "ndcg@10_vs_reference_p"])
    assert math.isnan(rows.loc["SASRec", "ndcg@10_vs_reference_p"])
    # against the default: the variants only
    raw = [stats.ttest_rel(seed_mean(n), seed_mean("default")).pvalue for n in ("better", "longer")]
    assert list(rows.loc[["better", "longer"], "ndcg@10_vs_default_p_adjusted"]) == pytest.approx(
        holm(raw))
    assert math.isnan(rows.loc["default", "ndcg@10_vs_default_p"])
    assert rows.loc["same", "same_as"] == "default"


def test_budget_flags_and_what_validation_prefers(table_and_truth):
    table, _ = table_and_truth
    rows = table.set_index("name")
    assert list(rows.budget_differs) == [False, False, False, True, False]
    assert list(rows.index[rows.validation_prefers]) == ["better"]


def test_rendered_report(table_and_truth, tmp_path):
    table, truth = table_and_truth
    text = render_readings(table, base="M", reference="SASRec", protocol="unfiltered",
                           paper_names={"d": "ML-1M"})
    lines = {line.split("|")[1].strip(" *"): line for line in text.splitlines()
             if line.startswith("| ") and not line.startswith("| Reading")}
    rows = table.set_index("name")
    mean, ci = t_interval(truth["better"]["ndcg"])
    cells = [c.strip() for c in lines["better"].strip("|").split("|")]
    assert cells[1] == "a=1" and cells[2] == "32.00" and cells[3] == f"{mean:.2f} ± {ci:.2f}"
    assert cells[5] == f"{rows.loc['better', 'ndcg@10_vs_reference_diff_pct']:+.2f}"
    def fmt(p):
        return "<0.001" if p < 0.001 else f"{p:.3f}"

    for name in ("default", "better", "longer"):  # raw p, then Holm's in brackets
        p, adjusted = (rows.loc[name, f"ndcg@10_vs_reference_{k}"] for k in ("p", "p_adjusted"))
        cell = [c.strip() for c in lines[name].strip("|").split("|")][6]
        assert cell == f"{fmt(p)} ({fmt(adjusted)}{'*' if adjusted < 0.05 else ''})"
    # the correction shows: Holm raises the default's p (3 comparisons with SASRec)
    assert rows.loc["default", "ndcg@10_vs_reference_p_adjusted"] > 1.5 * rows.loc[
        "default", "ndcg@10_vs_reference_p"]
    assert "(budget ≠ SASRec's)" in lines["longer"] and "budget" not in lines["better"]
    assert lines["longer"].rstrip(" |").endswith("30 / 3 / 2.5 (budget ≠ SASRec's)")
    assert "same job as `default`" in lines["same"]
    assert "## d (ML-1M)" in text
    assert "Validation prefers over the default (Val NDCG@10 31.00): `better` (32.00)." in text
    assert "never on test" in text
    png = tmp_path / "readings.png"
    figures.readings(table, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_result_of_the_other_protocol_is_refused(tmp_path):
    from recbench.errors import DataError

    write_results(tmp_path)
    with pytest.raises(DataError, match="history_filtered"):
        readings_table(points(), tmp_path, SEEDS, reference="SASRec", protocol="history_filtered")


def test_the_default_is_judged_against_the_papers_number_on_a_paper_dataset(table_and_truth):
    """The verdict of every report: far above the paper's CREATE NDCG@10 on ML-1M (8.99 %) is
    'ours higher', equal to it with little noise 'reproduced', data not the paper's: nothing."""
    from recbench.reporting.readings import paper_verdict

    table, _ = table_and_truth
    text = render_readings(table, base="CREATE", reference="SASRec", protocol="unfiltered",
                           paper_names={"d": "ML-1M"})
    default = table.set_index("name").loc["default"]
    assert default["ndcg@10_mean_pct"] > 25  # the fixture's default, far above 8.99
    assert "against CREATE's 8.99 % in the paper's Table 2 on ML-1M: *ours higher*" in text
    close = {"dataset": "d", "ndcg@10_mean_pct": 8.99, "ndcg@10_ci95_pct": 0.05, "n_seeds": 5,
             "ndcg@10_user_sd_pct": 1.0, "n_users": 6000}
    assert "*reproduced*" in paper_verdict(close, "ML-1M")
    assert paper_verdict(close, None) is None
    assert "Against the paper" not in render_readings(
        table, base="CREATE", reference="SASRec", protocol="unfiltered", paper_names={})


def test_a_row_lists_every_override_of_its_point(tmp_path):
    """The readings table names each variant by all of its overrides (a candidate's cell in
    reading_selection.md shortens them; this report must not)."""
    write_results(tmp_path)
    many = {f"key{i}": i for i in range(6)}
    pts = points()
    pts["d"][2]["overrides"] = many
    table = readings_table(pts, tmp_path, SEEDS, reference="SASRec", protocol="unfiltered")
    text = table.set_index("name").loc[pts["d"][2]["name"], "overrides"]
    assert text == ", ".join(f"key{i}={i}" for i in range(6))
    assert table.set_index("name").loc["default", "overrides"] == ""
