"""recbench.params: pydantic validates every model's Params; each refusal names the key as a
config path, the value, what is allowed and the fix; CREATE's backbones are built once."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest
import yaml

from baselines.params import LightGCNParams, SASRecParams, SVDParams
from create_model.params import CREATEParams
from recbench.canonical import canonical
from recbench.errors import ConfigError
from recbench.params import GraphParams, ParamsError, TrainConfig, make_params
from recbench.protocol import config as cfg
from recbench.registry import declarations

ROOT = Path(__file__).resolve().parents[2]


def refusal(params_cls, params, label="") -> str:
    with pytest.raises(ParamsError) as info:
        make_params(params_cls, params, label)
    assert isinstance(info.value, ConfigError)
    return str(info.value)


def test_a_wrong_type_names_the_key_what_is_allowed_and_the_fix():
    assert refusal(SASRecParams, {"dim": "64"}) == (
        "models.SASRec.dim must be an integer >= 1, got '64' (str). Fix the value in the config.")
    # a bool is no int; the config key (label) names the entry, not the class
    assert refusal(SVDParams, {"rank": True}, "SVD-big") == (
        "models.SVD-big.rank must be an integer >= 1, got True (bool). Fix the value in the "
        "config.")
    assert refusal(SASRecParams, {"progress": "yes"}) == (
        "models.SASRec.progress must be true, false or null, got 'yes' (str). Fix the value in "
        "the config.")


def test_an_int_is_a_valid_float_and_nothing_else_is_converted():
    p = make_params(SASRecParams, {"lr": 1, "weight_decay": 0})
    assert p.lr == 1.0 and isinstance(p.lr, float) and isinstance(p.weight_decay, float)
    assert "got 2.0 (float)" in refusal(SASRecParams, {"epochs": 2.0})
    assert "got '0.1' (str)" in refusal(SASRecParams, {"lr": "0.1"})


def test_a_value_out_of_range_names_the_range():
    assert refusal(SASRecParams, {"dropout": 1.0}) == (
        "models.SASRec.dropout must lie in [0, 1), got 1.0 (float). Fix the value in the config.")
    assert refusal(LightGCNParams, {"patience": 0}) == (
        "models.LightGCN.patience must be >= 1 or null, got 0 (int). Fix the value in the "
        "config.")
    assert refusal(SASRecParams, {"loss": "bce"}) == (
        "models.SASRec.loss must be 'ce' or 'sce', got 'bce' (str). Fix the value in the config.")


def test_every_bad_key_is_named_at_once():
    lines = refusal(SASRecParams, {"dim": 0, "lr": -1.0}).splitlines()
    assert sorted(line.split(" must ")[0] for line in lines) == ["models.SASRec.dim",
                                                                 "models.SASRec.lr"]


def test_an_unknown_key_lists_the_accepted_ones():
    accepted = sorted(f.name for f in dataclasses.fields(SVDParams))
    assert refusal(SVDParams, {"rnk": 3, "rank": 8}) == (
        f"models.SVD: unknown parameter(s) ['rnk']; SVD accepts {accepted}. Fix the key's name, "
        "or remove it.")


def test_a_rule_over_several_keys_names_the_key_to_change():
    assert refusal(SASRecParams, {"dim": 10, "n_heads": 3}).startswith(
        "models.SASRec.dim must be divisible by n_heads (3), got 10")
    assert refusal(GraphParams, {"graph_last_n": 5, "graph_last_fraction": 0.5}, "G") == (
        "models.G: set graph_last_n or graph_last_fraction, not both (null for the other).")


@pytest.mark.parametrize("params, message", [
    ({"graph": {"LightGCN": {"n_layers": -1}}},
     "models.CREATE.graph.LightGCN.n_layers must be >= 0, got -1 (int). Fix the value in the "
     "config."),
    ({"graph": {"n_layers": "3"}},
     "models.CREATE.graph.n_layers must be an integer >= 0, got '3' (str). Fix the value in the "
     "config."),
    ({"sequential": {"dim": 10, "n_heads": 3}},
     "models.CREATE.sequential.dim must be divisible by n_heads (3), got 10"),
    ({"sequential_backbone": "BERT4Rec", "sequential": {"BERT4Rec": {"mask_prob": 0.0}}},
     "models.CREATE.sequential.BERT4Rec.mask_prob must lie in (0, 1], got 0.0 (float)"),
    ({"sequential": {"dmi": 3}}, "models.CREATE.sequential: unknown parameter(s) ['dmi']; SASRec "
                                 "accepts ["),
    ({"graph": {"LightGCN": {"dim": 32}}},
     "models.CREATE.graph.LightGCN.dim is set by CREATE: the graph backbone shares the item "
     "table, so its dim is sequential.dim; remove graph.LightGCN.dim."),
    ({"graph_backbone": "SASRec"},
     "models.CREATE.graph_backbone must name a graph model (Params subclassing GraphParams): one "
     "of ['LightGCN', 'UltraGCN'], got 'SASRec', not a graph model."),
])
def test_a_nested_create_key_is_named_where_it_was_set(params, message):
    assert refusal(CREATEParams, params).startswith(message)


def test_another_backbones_sub_dict_is_not_this_ones():
    p = make_params(CREATEParams, {"graph": {"UltraGCN": {"negative_num": 0}}})
    assert type(p.backbone_params()[1]) is LightGCNParams


def test_direct_construction_and_assignment_are_validated_alike():
    with pytest.raises(ParamsError, match=r"^TrainConfig\.lr must be > 0, got 0 \(int\)"):
        TrainConfig(lr=0)
    with pytest.raises(ParamsError, match=r"^models\.SASRec\.dim must be divisible by n_heads"):
        SASRecParams(dim=10, n_heads=3)
    p = SASRecParams()
    with pytest.raises(ParamsError, match=r"^models\.SASRec\.epochs must be >= 1, got 0"):
        p.epochs = 0
    assert p.epochs == 100
    with pytest.raises(ParamsError, match=r"^models\.SASRec\.n_heads must be >= 1"):
        dataclasses.replace(p, n_heads=0)
    error = pickle.loads(pickle.dumps(ParamsError([("dim", "must be >= 1")], "models.X")))
    assert str(error) == "models.X.dim must be >= 1"


def test_a_plain_dataclass_is_validated_by_its_annotations():
    @dataclasses.dataclass
    class Plain:
        k: int = 3
        w: float = 1.0

    p = make_params(Plain, {"k": 4, "w": 2}, "Toy")
    assert type(p) is Plain and (p.k, p.w) == (4, 2.0)
    with pytest.raises(ParamsError, match=r"^models\.Toy\.k must be an integer, got 'x' \(str\)"):
        make_params(Plain, {"k": "x"}, "Toy")

    @dataclasses.dataclass
    class Neural(TrainConfig):  # a model's own Params on the training loop's (training.py)
        dim: int = 8

    assert Neural(dim=3).dim == 3  # built unchecked, as a plain dataclass is
    with pytest.raises(ParamsError, match=r"^models\.MyModel\.lr must be > 0, got 0 \(int\)"):
        make_params(Neural, {"lr": 0}, "MyModel")


def test_a_redeclared_key_keeps_its_parents_range():
    """A subclass that changes a key's default must declare it with the parent's type (its
    range): LightGCN's `epochs: Count = 40`, never `epochs: int = 40`."""
    for name, params_cls in declarations().items():
        own = params_cls.__pydantic_fields__
        for base in params_cls.__mro__[1:]:
            for key, info in vars(base).get("__pydantic_fields__", {}).items():
                assert (own[key].annotation, own[key].metadata) == (info.annotation,
                                                                    info.metadata), (name, key)


def test_every_declared_params_is_a_params_dataclass():
    for name, params_cls in declarations().items():
        assert "__pydantic_validator__" in vars(params_cls), name
        make_params(params_cls, {})  # the defaults are valid


def test_create_builds_its_backbones_once_and_again_when_changed(monkeypatch):
    import create_model.params as create_params

    built = []
    monkeypatch.setattr(create_params, "make_params",
                        lambda cls, *a, **k: built.append(cls) or make_params(cls, *a, **k))
    p = make_params(CREATEParams, {"sequential": {"dim": 32}, "graph": {"n_layers": 2}})
    assert built == [SASRecParams, LightGCNParams]
    seq, graph = p.backbone_params()
    assert p.backbone_params()[0] is seq and (seq.dim, graph.dim, graph.n_layers) == (32, 32, 2)
    assert len(built) == 2  # asked again: nothing rebuilt
    p.graph = {"n_layers": 1}  # an assignment revalidates, so the backbones follow it
    assert p.backbone_params()[1].n_layers == 1 and len(built) == 4
    assert "_backbones" not in dataclasses.asdict(p)


def test_the_config_check_builds_each_mapping_once(monkeypatch):
    """Planning builds a model's Params once per distinct mapping, by make_params, as the job
    will: a study point equal to its base, asked for again by the rules, builds nothing more."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    builds = []

    def counted(params_cls, params, label=""):
        builds.append((params_cls, repr(canonical(params))))
        return make_params(params_cls, params, label)

    monkeypatch.setattr(cfg, "_BUILT", {})
    monkeypatch.setattr(cfg, "make_params", counted)
    cfg.check(config)
    n = len(builds)
    assert n and len(set(builds)) == n, "a mapping was built twice"
    for name in config["studies"]:
        for dataset in config["studies"][name]["datasets"]:
            cfg.study_points(config, name, dataset)
    assert len(builds) == n


def test_the_config_check_says_where_a_refused_mapping_came_from():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["models"]["SASRec"]["search"]["dropout"] = {"low": 0.1, "high": 1.0}
    with pytest.raises(ConfigError, match=r"^models\.SASRec\.dropout must lie in \[0, 1\), got "
                                          r"1\.0 \(float\)\. .* \(1\.0 is an end of "
                                          r"models\.SASRec\.search\.dropout: narrow the search\)$"):
        cfg.check(config)
