"""recbench.canonical: the text Snakemake records of a param does not depend on key order."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from _shared import reversed_keys

from recbench.canonical import canonical, model_order
from recbench.registry import params_class
from recbench.protocol.tuning import search_order

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_config_reads_the_same_in_any_key_order():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    reordered = reversed_keys(config)
    assert repr(reordered) != repr(config)  # what Snakemake compared before
    assert repr(canonical(reordered)) == repr(canonical(config))
    assert canonical(config) == config  # the same values


def test_order_of_lists_and_types_are_kept():
    value = {"ks": [100, 10], "spec": ("SVD", {"rank": 4, "scaling": 1.0}), 3: "int key",
             "b": None}
    out = canonical(value)
    assert list(out) == [3, "b", "ks", "spec"]  # ints before strings: by type name, then value
    assert out["ks"] == [100, 10] and out["spec"] == ("SVD", {"rank": 4, "scaling": 1.0})
    assert type(out["spec"]) is tuple and type(out["spec"][1]["scaling"]) is float


def test_a_params_function_is_wrapped_with_its_signature():
    def spec(wildcards, threads):
        return {"z": wildcards, "a": threads}

    wrapped = canonical(spec)
    # Snakemake passes what the signature names
    assert list(inspect.signature(wrapped).parameters) == ["wildcards", "threads"]
    assert list(wrapped("w", threads=2)) == ["a", "z"]


def test_a_set_is_refused():
    with pytest.raises(TypeError, match="sorted list"):
        canonical({"models": {"SVD", "EASE"}})


def test_report_model_order_is_the_papers_then_the_configs():
    assert model_order(["iALS", "SVD", "EASE", "SASRec"]) == ["SASRec", "SVD", "iALS", "EASE"]


def test_a_study_draws_in_the_models_parameter_order():
    """The sorted search space is put back in the order the model declares its parameters."""
    assert list(search_order({"alpha": {}, "regularization": {}}, params_class("iALS"))) == [
        "regularization", "alpha"]
    assert list(search_order({"n_layers": {}, "lr": {}}, params_class("LightGCN"))) == [
        "lr", "n_layers"]
    assert search_order(None, params_class("SVD")) == {}
