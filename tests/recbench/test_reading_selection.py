"""CREATE's reading chosen on validation (recbench/protocol/reading_selection.py): the rule that picks,
the config it reads, the split it may see, and the reports that name the choice."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recbench.protocol import config as cfg
from recbench.protocol import reading_selection as rs
from recbench.data.dataset import load_split
from recbench.errors import ConfigError, DataError, TrainingError
from recbench.reporting.reading_selection import render_selection, selection_frame

from report_fixture import render_all

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"


def record(name, value, recall=0.5, error=None):
    return {"candidate": name, "overrides": {"graph_backbone": name}, "params": {"lr": 0.1},
            "value": value, "error": error, "seconds": 12.0,
            "facts": {"valid_metrics": {"ndcg@10": value, "recall@10": recall},
                      "best_epoch": 4, "epochs_trained": 7}}


def test_the_best_validation_score_wins_and_ties_go_to_the_first():
    assert rs.pick([record("a", 0.20), record("b", 0.31), record("c", 0.25)])["candidate"] == "b"
    assert rs.pick([record("a", 0.30), record("b", 0.30)])["candidate"] == "a"
    assert rs.pick([record("b", 0.30), record("a", 0.30)])["candidate"] == "b"
    # a failed candidate cannot win; all failed is an error naming them
    assert rs.pick([record("a", None, error="NaN loss"), record("b", 0.01)])["candidate"] == "b"
    with pytest.raises(TrainingError, match="a: NaN loss"):
        rs.pick([record("a", None, error="NaN loss")])


def test_the_choice_record_keeps_every_candidate_and_ignores_anything_else():
    # the records are all the selection sees: a test score planted in a record's facts is never
    # read (the candidate jobs cannot write one: they never load the test file)
    records = [record("a", 0.20), record("b", 0.31)]
    records[0]["facts"]["test_metrics"] = {"ndcg@10": 0.99}
    choice = rs.choice_record("ds", "CREATE", records, "unfiltered")
    assert choice["chosen"] == "b" and choice["n_candidates"] == 2
    assert [c["chosen"] for c in choice["candidates"]] == [False, True]
    assert choice["candidates"][1]["recall@10"] == 0.5 and choice["overrides"] == {
        "graph_backbone": "b"}
    frame = selection_frame([choice])
    assert frame["valid_ndcg@10_pct"].tolist() == pytest.approx([20.0, 31.0])
    text = render_selection([choice])
    assert "| **b**" in text and "+11.00 points" in text and "`a`" in text
    assert "read no test file" in text
    assert rs.describe(choice) == ("`b` (validation NDCG@10 31.00 %, best of 2 candidates; "
                                   "next: a 20.00 %)")


def test_the_tuning_param_names_the_choice(tmp_path):
    choice = rs.choice_record("ds", "CREATE", [record("a", 0.2)], "unfiltered")
    rs.write_choice(tmp_path / "reading", choice, _winner_files(tmp_path))
    param = rs.choice_param(tmp_path / "reading")
    assert param == {"chosen": "a", "overrides": {"graph_backbone": "a"}, "value": 0.2}
    assert (tmp_path / "reading" / rs.WINNER / "history.csv").exists()
    assert not (tmp_path / "reading" / rs.WINNER / rs.RECORD).exists()
    with pytest.raises(TrainingError, match="select_reading"):
        rs.read_choice(tmp_path / "missing")


def _winner_files(tmp_path):
    folder = tmp_path / "cand"
    folder.mkdir()
    (folder / "history.csv").write_text("epoch,train_loss\n1,2.0\n")
    (folder / rs.RECORD).write_text("{}")
    return folder


def test_same_params_compares_as_json_stores_them():
    assert rs.same_params({"a": (1, 2), "b": {"c": 1.5}}, {"b": {"c": 1.5}, "a": [1, 2]})
    assert not rs.same_params({"a": 1}, {"a": 1.0000001})


def default_config():
    return cfg.load_validated(ROOT / "config/config.yaml", ROOT / "config/schema.yaml")


def test_shipped_configs_select_among_the_configured_and_predecessor_readings():
    from create_model.readings import PREDECESSOR

    for path in ("config/config.yaml", "config/paper.yaml"):
        config = cfg.load_validated(ROOT / path, ROOT / "config/schema.yaml")
        candidates = rs.selection(config, "CREATE")
        assert len(candidates) >= 4, path
        params = config["models"]["CREATE"]["params"]
        backbones = {c.get("graph_backbone") for c in candidates.values()}
        assert backbones == {"LightGCN", "UltraGCN"}, path
        # the configured reading: the params as written, on each backbone
        plain = [n for n, c in candidates.items() if set(c) == {"graph_backbone"}]
        assert {candidates[n]["graph_backbone"] for n in plain} == backbones, path
        assert candidates[plain[0]]["graph_backbone"] == params["graph_backbone"], path
        # the predecessor's bundle, on each backbone
        bundles = [c for c in candidates.values()
                   if {k: v for k, v in c.items() if k != "graph_backbone"} == PREDECESSOR]
        assert {c["graph_backbone"] for c in bundles} == backbones, path
        assert rs.selection(config, "SASRec") is None
        assert rs.selection(config, "CREATE~w_align=0.0") is None  # a variant: already chosen


def test_select_none_and_bad_entries():
    config = default_config()
    config["models"]["CREATE"]["readings"]["select"] = "none"
    assert rs.selection(config, "CREATE") is None
    cfg.check(config)
    bad = default_config()
    bad["models"]["CREATE"]["readings"] = {"select": "validation", "candidates": {}}
    with pytest.raises(ConfigError, match="at least one candidate"):
        cfg.check(bad)
    bad = default_config()
    bad["models"]["CREATE"]["readings"]["candidates"]["oops"] = {"graph_backbone": "GAT"}
    with pytest.raises(ConfigError, match="candidates.oops"):
        cfg.check(bad)
    bad = default_config()
    bad["models"]["CREATE"]["readings"]["candidates"]["oops"] = {"no_such_param": 1}
    with pytest.raises(ConfigError, match="no_such_param"):
        cfg.check(bad)
    bad = default_config()
    bad["models"]["CREATE"]["readings"]["candidates"]["slow"] = {"warmup_epochs": 7}  # not searched
    with pytest.raises(ConfigError, match="candidates.slow.warmup_epochs"):
        cfg.check(bad)


def test_schema_refuses_a_bad_select_or_name(tmp_path):
    for patch, message in [({"select": "test"}, "is not one of"),
                           ({"candidates": {"a b": {}}}, "does not match")]:
        config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
        config["models"]["CREATE"]["readings"].update(patch)
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(config))
        with pytest.raises(ConfigError, match=message):
            cfg.load_validated(path, ROOT / "config/schema.yaml")


def test_a_study_point_keeps_a_key_the_selection_may_change():
    config = default_config()
    labels = [p.label for p in cfg.study_points(config, "table4", "synthetic")]
    # graph_backbone: LightGCN is the config's value, but the chosen reading may be UltraGCN's
    assert "CREATE~graph_backbone=LightGCN" in labels and "CREATE" not in labels
    config["models"]["CREATE"]["readings"]["select"] = "none"
    labels = [p.label for p in cfg.study_points(config, "table4", "synthetic")]
    assert "CREATE" in labels  # without selection the base point is Table 2's CREATE


def test_a_candidate_job_reads_no_test_file(tmp_path):
    from recbench.data.dataset import save_split
    from recbench.data.split import GlobalTemporalSplit, index_split
    from recbench.data.synthetic import SyntheticConfig, generate

    folder = tmp_path / "split"
    log = generate(SyntheticConfig(n_users=200, n_items=100, n_communities=4, seed=3))
    save_split(index_split(GlobalTemporalSplit().split(log)), folder)
    (folder / "test.parquet").unlink()
    with pytest.raises(DataError, match="test.parquet"):
        load_split(folder)
    data = load_split(folder, test=False)
    assert data.test is None and len(data.for_tuning().test) > 0


def test_without_selection_the_reports_are_byte_identical_to_before(tmp_path):
    """The golden reports were rendered before reading selection existed."""
    for i, readings in enumerate(({}, {"readings": None}, {"readings": {}})):
        out = render_all(tmp_path / str(i), **readings)
        for name, text in out.items():
            assert text == (GOLDEN / name).read_text(), name


def test_with_selection_every_report_names_the_choice(tmp_path):
    choice = rs.choice_record("ml", "CREATE", [record("configured_UltraGCN", 0.05),
                                               record("predecessor_LightGCN", 0.07)], "unfiltered")
    loom = {**copy.deepcopy(choice), "dataset": "ml-loom"}
    readings = {"ml": {"CREATE": choice}, "ml-loom": {"CREATE": loom}}
    out = render_all(tmp_path / "x", readings=readings)
    phrase = "`predecessor_LightGCN` (validation NDCG@10 7.00 %, best of 2 candidates"
    for name in ("table2.md", "reproduction.md", "table3.md", "table4.md"):
        assert phrase in out[name], name
        assert "never on test" in out[name], name
    assert "(CREATE: `predecessor_LightGCN`, chosen on validation among 2 readings)" in out[
        "reproduction.md"]
    assert "every point of this study starts from it" in out["table4.md"]
    # the rest of each report is as before
    golden = (GOLDEN / "table2.md").read_text().splitlines()
    assert [line for line in out["table2.md"].splitlines() if line not in golden] == [
        "", next(line for line in out["table2.md"].splitlines() if phrase in line)][-1:]
    from recbench.reporting.common import add_readings

    csv = pd.read_csv(GOLDEN / "table2.csv")
    with_reading = add_readings(csv, readings)
    assert set(with_reading[with_reading.model == "CREATE"].query("dataset == 'ml'").reading) == {
        "predecessor_LightGCN"}
    assert set(with_reading[with_reading.model != "CREATE"].reading) == {""}
