"""recbench.protocol.config: --config values typed by the schema, validation errors that name their key in
a few lines, the default run told from any other, a custom file that must exist."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from recbench.protocol import config as cfg
from recbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "config" / "schema.yaml"
DEFAULT = ROOT / "config" / "config.yaml"


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


@pytest.fixture()
def default() -> dict:
    return yaml.safe_load(DEFAULT.read_text())


# What Snakemake 9.27's command line gives the workflow for --config key=value (YAML's base
# loader inside lists and mappings, text for a scalar that is not a number), typed by the schema.
@pytest.mark.parametrize("given, expected", [
    ({"seeds": ["0"]}, {"seeds": [0]}),                               # seeds=[0]
    ({"tuning": {"trials": "5"}}, {"tuning": {"trials": 5}}),         # "tuning={trials: 5}"
    ({"evaluation": {"filter_seen": "true"}}, {"evaluation": {"filter_seen": True}}),
    ({"split": {"valid_quantile": "null", "quantile": "1e-1"}},
     {"split": {"valid_quantile": None, "quantile": 0.1}}),
    ({"device": "cpu", "threads": 2}, {"device": "cpu", "threads": 2}),
    ({"datasets": {"x": {"revision": "0123", "size": "10"}}},         # text stays text
     {"datasets": {"x": {"revision": "0123", "size": 10}}}),
    ({"models": {"SASRec": {"params": {"epochs": "2", "lr": "0.01", "loss": "ce"}}}},
     {"models": {"SASRec": {"params": {"epochs": 2, "lr": 0.01, "loss": "ce"}}}}),  # untyped: YAML
    ({"models": {"Random": "null"}}, {"models": {"Random": None}}),
    ({"tuning": {"trials": "five"}}, {"tuning": {"trials": "five"}}),  # left for validation
])
def test_config_values_are_typed_by_the_schema(schema, given, expected):
    assert cfg.typed(given, schema) == expected


def test_typed_overrides_validate_and_layer_on_the_config(default):
    cfg.validate(default, {"seeds": ["0"], "tuning": {"trials": "5"},
                           "evaluation": {"filter_seen": "true"}}, SCHEMA)
    assert default["seeds"] == [0] and default["tuning"]["trials"] == 5
    assert default["tuning"]["startup_trials"] == 5  # the rest of the section stays
    assert default["evaluation"] == {"batch_size": 1024, "ks": [10, 100], "filter_seen": True}


@pytest.mark.parametrize("override, names", [
    ({"tuning": {"trials": "five"}}, ["tuning.trials: 'five' is not of type 'integer'"]),
    ({"seedz": ["0"]}, ["(top level): unknown key(s) ['seedz']", "'seeds'"]),
    ({"evaluation": {"filter_seen": "maybe"}},
     ["evaluation.filter_seen: 'maybe' is not of type 'boolean'"]),
    ({"datasets": {"synthetic": {"on_invalid": "skip"}}},
     ["datasets.synthetic.on_invalid: 'skip' is not one of ['error', 'drop']"]),
    ({"models": {"SASRec": {"trials": "0"}}}, ["models.SASRec.trials: 0 is less than"]),
])
def test_a_wrong_value_names_its_key_in_a_few_lines(default, override, names):
    with pytest.raises(ConfigError) as info:
        cfg.validate(default, override, SCHEMA)
    msg = str(info.value)
    for name in names:
        assert name in msg, msg
    assert len(msg.splitlines()) <= 5 and "$schema" not in msg and "description" not in msg


def test_many_errors_show_the_first_few(default):
    with pytest.raises(ConfigError) as info:
        cfg.validate(default, {"seeds": ["a", "b", "c", "d", "e"]}, SCHEMA)
    msg = str(info.value)
    assert "5 problems" in msg and "seeds.0:" in msg and "... and 2 more" in msg
    assert "seeds.4" not in msg and len(msg.splitlines()) <= 6


def test_validate_fills_the_schema_defaults(default):
    del default["evaluation"], default["tuning"]
    cfg.validate(default, None, SCHEMA)
    assert default["evaluation"] == {"batch_size": 1024, "ks": [10, 100], "filter_seen": False}
    assert default["tuning"] == {"trials": 2, "seed": 0, "startup_trials": 5}


def test_the_default_run_and_named_runs():
    base = cfg.load_validated(DEFAULT, SCHEMA)
    same = copy.deepcopy(base)
    assert cfg.run_name(same, base, [], DEFAULT) is None
    assert cfg.run_name(same, base, [DEFAULT], DEFAULT) is None  # --configfile config/config.yaml
    changed = {**copy.deepcopy(base), "seeds": [0]}
    assert cfg.run_name(changed, base, [], DEFAULT) == "custom"  # --config on the default file
    assert cfg.run_name(changed, base, [DEFAULT], DEFAULT) == "custom"
    assert cfg.run_name(changed, base, ["config/paper.yaml"], DEFAULT) == "paper"
    named = {**changed, "run": "quick"}
    assert cfg.run_name(named, base, ["config/paper.yaml"], DEFAULT) == "quick"
    # a `run:` name alone makes another run, even on the default settings
    assert cfg.run_name({**copy.deepcopy(base), "run": "again"}, base, [], DEFAULT) == "again"
    with pytest.raises(ConfigError, match="run: <name>"):
        cfg.run_name(changed, base, ["my config.yaml"], DEFAULT)


def test_a_custom_file_must_exist(tmp_path):
    config = {"datasets": {"mine": {"path": str(tmp_path / "absent.csv")}}}
    with pytest.raises(ConfigError, match=r"datasets\.mine\.path: .*absent\.csv does not exist"):
        cfg.custom_file(config, "mine")
    (tmp_path / "absent.csv").write_text("u,i,t\n")
    assert cfg.custom_file(config, "mine") == str(tmp_path / "absent.csv")


def test_a_model_parameter_out_of_range_names_the_model(default):
    default["models"]["SASRec"]["params"]["epochs"] = -2
    with pytest.raises(ConfigError, match=r"^models\.SASRec\.epochs must be >= 1, got -2 \(int\)"):
        cfg.check(default)


def test_a_bad_batching_is_refused_before_any_job(default):
    default["models"]["SASRec"]["params"]["batching"] = "sorted"
    with pytest.raises(ConfigError, match=r"^models\.SASRec\.batching must be 'random' or "
                                          r"'length' \(.*\), got 'sorted' \(str\)"):
        cfg.check(default)
    default["models"]["SASRec"]["params"]["batching"] = "length"
    default["models"]["CREATE"]["params"]["sequential"]["batching"] = "by_length"
    with pytest.raises(ConfigError, match=r"^models\.CREATE\.sequential\.batching must be "
                                          r"'random' or 'length' \(.*\), got 'by_length'"):
        cfg.check(default)


def test_metric_cutoffs_keep_the_papers(default):
    """evaluation.ks may add cut-offs; the reports read @10 and @100, so both must stay."""
    default["evaluation"]["ks"] = [5, 10, 20, 100]
    cfg.check(default)
    default["evaluation"]["ks"] = [5, 20]
    with pytest.raises(ConfigError, match=r"evaluation.ks is \[5, 20\]: it must include 10 and 100"):
        cfg.check(default)


def test_a_dataset_override_out_of_range_names_the_dataset(default):
    default["datasets"]["synthetic"]["model_params"] = {"SASRec": {"dropout": 1.5}}
    with pytest.raises(ConfigError) as info:
        cfg.check(default)
    assert "models.SASRec" in str(info.value)
    assert "datasets.synthetic.model_params.SASRec" in str(info.value)


@pytest.mark.parametrize("name", cfg.RESERVED_NAMES)
def test_report_folders_are_no_dataset_names(default, name):
    default["datasets"][name] = default["datasets"].pop("synthetic-loom")
    default["table3"]["datasets"] = {"Embedded": name}
    default["table3"]["bridge"] = {}
    with pytest.raises(ConfigError, match=f"datasets.{name}: the name is reserved"):
        cfg.check(default)
