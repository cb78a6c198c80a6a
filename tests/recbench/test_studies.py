"""Ablation studies: variant labels, their parameters, the points of a sweep, config errors."""

import copy
from pathlib import Path

import pytest
import yaml

from recbench.protocol import config as cfg
from recbench.protocol import studies
from recbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = {"warmup_epochs": 3, "graph": {"graph_last_n": 50, "LightGCN": {"n_layers": 3}}}


@pytest.fixture(scope="module")
def default_config():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_label_round_trip_with_yaml_values():
    label = studies.variant_label("CREATE", {"warmup_epochs": 10, "graph.graph_last_n": None,
                                             "graph.graph_last_fraction": 0.4,
                                             "graph_backbone": "UltraGCN"}, BASE)
    assert label == ("CREATE~graph.graph_last_fraction=0.4~graph.graph_last_n=null"
                     "~graph_backbone=UltraGCN~warmup_epochs=10")
    assert studies.parse_label(label) == ("CREATE", {"graph.graph_last_fraction": 0.4,
                                                     "graph.graph_last_n": None,
                                                     "graph_backbone": "UltraGCN",
                                                     "warmup_epochs": 10})
    assert studies.parse_label("SASRec") == ("SASRec", {})
    with pytest.raises(ConfigError, match="key=value"):
        studies.parse_label("CREATE~warmup")


def test_overrides_equal_to_the_base_are_dropped():
    """The point that is the base configuration shares the base's jobs."""
    assert studies.variant_label("CREATE", {"warmup_epochs": 3}, BASE) == "CREATE"
    assert studies.variant_label("CREATE", {"graph.graph_last_n": 50, "warmup_epochs": 0},
                                 BASE) == "CREATE~warmup_epochs=0"


def test_nested_overrides_never_touch_the_base():
    out = studies.apply_overrides(BASE, {"graph.LightGCN.n_layers": 1, "graph.graph_last_n": None})
    assert out["graph"] == {"graph_last_n": None, "LightGCN": {"n_layers": 1}}
    assert BASE["graph"] == {"graph_last_n": 50, "LightGCN": {"n_layers": 3}}
    with pytest.raises(ConfigError, match="not a dict"):
        studies.apply_overrides(BASE, {"warmup_epochs.x": 1}, "CREATE~warmup_epochs.x=1")


def test_variant_spec_is_the_base_spec_with_overrides(default_config):
    cls, base = cfg.model_spec(default_config, "synthetic", "CREATE")
    cls2, params = cfg.model_spec(default_config, "synthetic",
                                  "CREATE~graph.graph_last_fraction=0.2~graph.graph_last_n=null")
    assert cls == cls2 == "CREATE"
    assert params["graph"]["graph_last_fraction"] == 0.2 and params["graph"]["graph_last_n"] is None
    assert params["graph"]["LightGCN"] == base["graph"]["LightGCN"]
    assert {k: v for k, v in params.items() if k != "graph"} == {k: v for k, v in base.items()
                                                                  if k != "graph"}


def test_dataset_model_params_merge_nested_dicts(default_config):
    config = copy.deepcopy(default_config)
    config["datasets"]["synthetic"]["model_params"] = {"CREATE": {"graph": {"graph_last_n": 7}}}
    params = cfg.model_spec(config, "synthetic", "CREATE")[1]
    assert params["graph"]["graph_last_n"] == 7
    assert params["graph"]["LightGCN"] == default_config["models"]["CREATE"]["params"]["graph"]["LightGCN"]


def test_points_of_the_default_studies(default_config):
    t4 = cfg.study_points(default_config, "table4", "synthetic")
    # CREATE selects its reading on validation, which may set graph_backbone: every point names
    # its backbone, the LightGCN + barlow point too (its own jobs, not Table 2's CREATE)
    assert [p.label for p in t4][:2] == ["SASRec", "CREATE~alignment=none~graph_backbone=LightGCN"]
    assert len(t4) == 1 + 2 * 3 and len({p.label for p in t4}) == 7
    assert "CREATE~graph_backbone=LightGCN" in [p.label for p in t4]
    plain = copy.deepcopy(default_config)
    plain["models"]["CREATE"]["readings"]["select"] = "none"
    t4 = cfg.study_points(plain, "table4", "synthetic")
    assert [p.label for p in t4][:2] == ["SASRec", "CREATE~alignment=none"]
    assert "CREATE" in [p.label for p in t4]  # LightGCN + barlow is the base CREATE
    f4 = cfg.study_points(default_config, "fig4_warmup", "synthetic")
    assert [p.values["warmup_epochs"] for p in f4] == [0, 10]
    # a point names its resolved top-level parameters beside its swept ones (Table 4's rows read
    # the backbones and alignment): the swept value wins, nested dicts stay out, include is bare
    assert t4[0].values == {}
    lightgcn_none = next(p for p in t4 if p.label == "CREATE~alignment=none")
    assert lightgcn_none.values["graph_backbone"] == "LightGCN"
    assert lightgcn_none.values["alignment"] == "none"
    assert lightgcn_none.values["sequential_backbone"] == "SASRec"
    assert not any(isinstance(v, dict) for v in lightgcn_none.values.values())
    assert studies.study_seeds(default_config, "fig3_graph_size") == [0]


@pytest.mark.parametrize("patch, message", [
    ({"nosuch": {"base": "CREATE", "datasets": ["synthetic"]}}, "unknown study"),
    ({"table4": {"base": "NoModel", "datasets": ["synthetic"]}}, "'NoModel'"),
    ({"table4": {"base": "CREATE", "datasets": ["nowhere"]}}, "'nowhere'"),
    ({"table4": {"base": "CREATE", "datasets": ["synthetic"],
                 "grid": {"alignment": ["barlow", "cosine"]}}}, "alignment"),
])
def test_bad_studies_are_named(default_config, patch, message):
    with pytest.raises(ConfigError, match=message):
        cfg.check({**default_config, "studies": patch})


def test_a_missing_study_says_where_to_add_it(default_config):
    with pytest.raises(ConfigError, match="studies: table5"):
        studies.study({**default_config, "studies": {}}, "table5")


def test_paper_config_studies_are_valid():
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    cfg.check(paper)
    f3 = cfg.study_points(paper, "fig3_graph_size", "ml-1m")
    assert [p.values["graph.graph_last_fraction"] for p in f3] == [i / 10 for i in range(1, 11)]
    assert studies.study_seeds(paper, "fig3_graph_size") == [0, 1, 2, 3]
    assert studies.study_datasets(paper, "table4") == ["sports", "clothing"]


def test_a_tuned_key_is_never_dropped_from_a_label(default_config):
    """The base's tuned warm-up may differ from the config's, so warm-up 3 must be explicit."""
    assert "warmup_epochs" in default_config["models"]["CREATE"]["search"]
    labels = [p.label for p in cfg.study_points(default_config, "fig4_warmup", "synthetic")]
    assert labels == ["CREATE~warmup_epochs=0", "CREATE~warmup_epochs=10"]


def readings_config(default_config, variants, **spec):
    return {**default_config, "studies": {"readings": {
        "base": "CREATE", "datasets": ["synthetic"], "include": ["SASRec"],
        "variants": variants, **spec}}}


def test_named_variants_are_points_beside_the_default(default_config):
    config = readings_config(default_config, {
        "contrastive": {"alignment": "contrastive"},
        "two": {"barlow_scale": "sum", "graph.graph_last_n": None},
        "as_configured": {"alignment": "barlow"},  # the base's own value: the base's jobs
    })
    cfg.check(config)
    pts = cfg.study_points(config, "readings", "synthetic")
    assert [(p.name, p.label) for p in pts] == [
        ("SASRec", "SASRec"), ("default", "CREATE"),
        ("contrastive", "CREATE~alignment=contrastive"),
        ("two", "CREATE~barlow_scale=sum~graph.graph_last_n=null"),
        ("as_configured", "CREATE")]
    assert pts[3].values == {"barlow_scale": "sum", "graph.graph_last_n": None}
    assert pts[4].overrides == {}  # nothing left to override
    params = cfg.model_spec(config, "synthetic", pts[3].label)[1]
    assert params["barlow_scale"] == "sum" and params["graph"]["graph_last_n"] is None


def test_a_searched_key_stays_in_a_variant_label(default_config):
    """warmup_epochs is tuned, so the variant with the config's value is its own point."""
    config = readings_config(default_config, {"warm3": {"warmup_epochs": 3}})
    assert cfg.study_points(config, "readings", "synthetic")[2].label == "CREATE~warmup_epochs=3"


def test_many_overrides_get_a_digest_label_that_resolves(default_config):
    many = {f"sequential.{k}": v for k, v in {"dim": 32, "n_layers": 1, "n_heads": 1,
                                               "dropout": 0.3, "max_len": 20}.items()}
    many.update({"barlow_scale": "sum", "barlow_lambda": 0.02, "w_global": 0.2,
                 "graph.LightGCN.n_layers": 1, "graph.LightGCN.reg": 0.001,
                 "graph.graph_last_n": 10, "alignment": "contrastive", "temperature": 0.5})
    config = readings_config(default_config, {"bundle": many})
    cfg.check(config)
    point = cfg.study_points(config, "readings", "synthetic")[2]
    assert point.label.startswith("CREATE~overrides=") and len(point.label) < 40
    params = cfg.model_spec(config, "synthetic", point.label)[1]
    assert params["sequential"]["dim"] == 32 and params["graph"]["LightGCN"]["n_layers"] == 1
    assert params["temperature"] == 0.5
    assert cfg.variant_overrides(config, "synthetic", point.label) == many
    with pytest.raises(ConfigError, match="digest"):
        cfg.model_spec(default_config, "synthetic", point.label)


@pytest.mark.parametrize("variants, spec, message", [
    ({"default": {"alignment": "none"}}, {}, "base's own point"),
    ({"x": {"alignment": "none"}}, {"grid": {"w_align": [0.0]}}, "not both"),
    ({"x": {"alignment": "none"}}, {"include": []}, "significance.reference"),
    ({"x": {"alignment": "cosine"}}, {}, "alignment"),
])
def test_bad_variant_studies_are_named(default_config, variants, spec, message):
    with pytest.raises(ConfigError, match=message):
        cfg.check(readings_config(default_config, variants, **spec))


def test_the_readings_report_needs_variants(default_config):
    config = {**default_config, "studies": {"readings": {
        "base": "CREATE", "datasets": ["synthetic"], "include": ["SASRec"],
        "grid": {"w_align": [0.0]}}}}
    with pytest.raises(ConfigError, match="needs `variants:`"):
        cfg.check(config)


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_create_and_sasrec_have_equal_budgets(name):
    """The readings report compares CREATE's readings with SASRec at equal epochs and patience."""
    models = yaml.safe_load((ROOT / "config" / name).read_text())["models"]
    for key in ("epochs", "patience"):
        assert models["CREATE"]["params"][key] == models["SASRec"]["params"][key]


def test_paper_config_searches_what_the_paper_varies():
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    search = paper["models"]["CREATE"]["search"]
    assert search["warmup_epochs"] == [0, 10, 20, 50, 100]
    assert search["graph.graph_last_fraction"] == {"low": 0.1, "high": 1.0}
    assert search["w_align"] == {"low": 0.0, "high": 1.0}
    assert {"w_global", "barlow_lambda"} <= set(search)
    for dataset in paper["datasets"]:  # the searched fraction is the graph size everywhere
        assert cfg.model_spec(paper, dataset, "CREATE")[1]["graph"]["graph_last_n"] is None
    assert [p.name for p in cfg.study_points(paper, "readings", "ml-1m")][:2] == ["SASRec",
                                                                                  "default"]
