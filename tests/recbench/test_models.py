"""The registry: a new model is a class with @register; configs find it by name."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from _shared import TOY_MODULE

from recbench import registry
from recbench.errors import ConfigError
from recbench.models import Recommender, build_model, register
from recbench.registry import declarations, declare, discover, params_class
from recbench.protocol.runner import RunOptions, train_and_evaluate

ROOT = Path(__file__).resolve().parents[2]


def test_discover_finds_every_baseline():
    assert {"Random", "PopRnd", "SVD", "iALS", "EASE"} <= set(discover())


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(ConfigError, match="unknown model 'NoSuchModel'.*registered models"):
        build_model("NoSuchModel")


def test_toy_model_end_to_end(small_split, tmp_path):
    exec(TOY_MODULE, {})  # the module a researcher adds to baselines/ (its @register runs)
    try:
        metrics = train_and_evaluate(small_split, "ToyPop", {"smoothing": 0.5}, RunOptions(),
                                     outdir=tmp_path)
        assert (tmp_path / "metrics.json").exists() and (tmp_path / "per_user.parquet").exists()
        # popularity ranks the same top list for everyone: coverage@10 is exactly 10 items
        assert metrics["coverage@10"] == pytest.approx(10 / small_split.n_items)
    finally:
        registry.remove("ToyPop")


def test_every_shipped_model_uses_its_torch_free_declaration():
    """The workflow checks configs by the declarations (recbench.registry): they must be the
    classes' own Params, and every model shipped in the packages has one."""
    shipped = {n: c for n, c in discover().items()
               if c.__module__.split(".")[0] in ("baselines", "create_model")}
    assert set(shipped) == set(declarations())
    for name, cls in shipped.items():
        assert cls.Params is declarations()[name] is params_class(name)


def test_a_declared_model_is_found_without_importing_the_others():
    """Planning reads and validates Params without torch (pydantic imports none); building a
    declared model imports its module only."""
    code = ("import sys; from recbench.registry import params_class, model_class; "
            "from recbench.params import make_params; "
            "make_params(params_class('CREATE'), {'graph_backbone': 'UltraGCN'}); "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "model_class('SVD'); loaded = {m for m in sys.modules if m.startswith('baselines.')}; "
            "assert loaded == {'baselines.params', 'baselines.svd'}, loaded")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-1500:]


def test_a_declaration_whose_module_registers_nothing_is_named():
    @declare("Ghost", "baselines.random:Ghost")
    @dataclass
    class GhostParams:
        pass

    try:
        with pytest.raises(ConfigError, match="'Ghost' is declared as baselines.random:Ghost.*"
                                              "@register\\('Ghost'\\)"):
            build_model("Ghost")
    finally:
        registry.remove("Ghost")


def test_register_refuses_params_other_than_the_declared_ones():
    @declare("DeclaredToy", "nowhere:DeclaredToy")
    @dataclass
    class DeclaredToyParams:
        k: int = 3

    try:
        with pytest.raises(TypeError, match="DeclaredToy.*must be the Params declared.*"
                                            "set `Params = .*DeclaredToyParams`"):
            @register("DeclaredToy")
            class DeclaredToy(Recommender):  # forgot `Params = DeclaredToyParams`
                pass
        assert registry.ENTRIES["DeclaredToy"].cls is None
    finally:
        registry.remove("DeclaredToy")


def test_an_undeclared_model_keeps_its_params_in_its_class():
    @register("Undeclared")
    class Undeclared(Recommender):
        @dataclass
        class Params:
            k: int = 3

    try:
        assert params_class("Undeclared") is Undeclared.Params
        with pytest.raises(ConfigError, match=r"^models\.Undeclared\.k must be an integer, "
                                                   r"got 'three' \(str\)\. Fix the value"):
            build_model("Undeclared", {"k": "three"})
    finally:
        registry.remove("Undeclared")


def test_register_twice_is_refused():
    @register("Twice")
    class A(Recommender):
        pass

    try:
        with pytest.raises(ConfigError, match="registered twice"):
            @register("Twice")
            class B(Recommender):
                pass
    finally:
        registry.remove("Twice")


@pytest.mark.parametrize("filter_seen", [False, True])
def test_runner_fits_and_writes_the_configured_protocol(small_split, tmp_path, filter_seen):
    """Tuning trials and final fits hand evaluation.filter_seen to the model's fit (early
    stopping) and write it as metrics.json's protocol, the other protocol beside it."""
    import json

    from recbench.protocol.runner import validate_params

    @register("ToyRecorder")
    class ToyRecorder(Recommender):
        @dataclass
        class Params:
            pass

        fitted_with = []

        def fit(self, train, valid=None):
            ToyRecorder.fitted_with.append(self.eval_filter_seen)
            self.pop = torch.from_numpy(train.popularity()).float()

        def score(self, batch):
            return self.pop.expand(len(batch.lengths), -1)

    try:
        options = RunOptions(filter_seen=filter_seen)
        value, facts = validate_params(small_split, "ToyRecorder", {}, options)
        train_and_evaluate(small_split, "ToyRecorder", {}, options, outdir=tmp_path)
        assert ToyRecorder.fitted_with == [filter_seen, filter_seen]
        configured, other = (("history_filtered", "unfiltered") if filter_seen
                             else ("unfiltered", "history_filtered"))
        assert value == facts["valid_metrics"]["ndcg@10"]
        assert facts["valid_metrics"]["protocol"] == configured
        written = json.loads((tmp_path / "metrics.json").read_text())
        assert written["protocol"] == configured and written[other]["ndcg@10"] >= 0
        # popularity re-recommends what users saw: the filter changes the lists
        assert written["coverage@100"] != written[other]["coverage@100"]
    finally:
        registry.remove("ToyRecorder")
