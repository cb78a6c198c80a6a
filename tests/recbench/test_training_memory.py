"""The whole-training memory estimate (``memory_budget`` / ``memory_need`` of each model family),
the job that stops at its start when it cannot fit, and the dry check that prints it before any
job (``python -m recbench.protocol.memory_check``)."""

import json

import numpy as np
import pytest
import yaml

from recbench import memory
from recbench.data.dataset import Interactions
from recbench.errors import ResourceError
from recbench.memory import GiB, Sizes
from recbench.models import build_model
from recbench.nn.losses import full_ce_bytes, sce_bytes
from recbench.params import make_params
from recbench.protocol import memory_check
from recbench.registry import model_class

SCALE = {"SASRec": {"dim": 64, "max_len": 200, "loss": "sce", "batch_size": 256},
         "CREATE": {"sequential_backbone": "SASRec", "graph_backbone": "LightGCN",
                    "batch_size": 256, "sequential": {"dim": 64, "max_len": 200, "loss": "sce"},
                    "graph": {"graph_last_fraction": 1.0}},
         "LightGCN": {}, "UltraGCN": {}, "MRGSRec": {}, "BERT4Rec": {"loss": "sce"}}
YAMBDA_500M = Sizes(100_000, 3_000_000, 9_030_000)


def params(name, **kw):
    return make_params(model_class(name).Params, {**SCALE[name], **kw}, name)


def held(budget, prefix):
    return sum(v for k, v in budget.held.items() if k.startswith(prefix))


@pytest.mark.parametrize("name", ["SASRec", "LightGCN", "UltraGCN", "BERT4Rec"])
def test_the_item_table_costs_weights_gradient_and_adams_two_moments(name):
    cls, p = model_class(name), params(name)
    for items in (10_000, 20_000):
        b = cls.memory_budget(p, Sizes(1_000, items, 50_000))
        assert held(b, "item table") == items * p.dim * 4 * (1 + 1 + 2)


@pytest.mark.parametrize("name", list(SCALE))
def test_the_estimate_grows_with_every_size(name):
    """Each size grown alone (the item pairs held, as the users' degrees make them: more users
    over the same interactions share fewer items, so UltraGCN's R^T R shrinks)."""
    cls, p = model_class(name), params(name)
    pairs = 10**8
    base = cls.memory_need(p, Sizes(10_000, 100_000, 1_000_000, pairs), available=10**15).nbytes
    for bigger in (Sizes(20_000, 100_000, 1_000_000, pairs),
                   Sizes(10_000, 200_000, 1_000_000, pairs),
                   Sizes(10_000, 100_000, 2_000_000, pairs),
                   Sizes(10_000, 100_000, 1_000_000, 2 * pairs)):
        assert cls.memory_need(p, bigger, available=10**15).nbytes >= base, bigger
    assert cls.memory_need(p, Sizes(10_000, 200_000, 1_000_000, pairs)).nbytes > base
    if name == "UltraGCN":
        assert cls.memory_need(p, Sizes(10_000, 100_000, 1_000_000, 2 * pairs)).nbytes > base
    assert cls.memory_budget(p, YAMBDA_500M, dim=128).nbytes > cls.memory_budget(
        p, YAMBDA_500M, dim=64).nbytes


def test_graph_models_pay_for_their_user_table_and_adjacency():
    p = params("LightGCN")
    small = model_class("LightGCN").memory_budget(p, Sizes(1_000, 5_000, 100_000))
    big = model_class("LightGCN").memory_budget(p, Sizes(1_000, 5_000, 200_000))
    assert held(small, "user table") == 1_000 * p.dim * 16
    # 2 CSR entries per edge (float32 value, int64 column)
    grown = held(big, "normalised adjacency") - held(small, "normalised adjacency")
    assert grown >= 12 * 2 * 100_000
    assert big.phases["graph construction"] and big.phases["training step"]


def test_sce_costs_far_less_than_full_ce_at_a_large_catalogue():
    cls = model_class("SASRec")
    ce = cls.memory_budget(params("SASRec", loss="ce"), YAMBDA_500M)
    sce = cls.memory_budget(params("SASRec"), YAMBDA_500M)
    positions = 256 * 200
    assert sce.nbytes < ce.nbytes / 10
    assert sce_bytes(positions, 3_000_000, 64, 256, 256, 256) < full_ce_bytes(
        positions, 3_000_000, 64) / 100
    step = sce.phases["training step"]
    assert step[f"catalogue loss (sce) over {positions:,} positions"] == sce_bytes(
        positions, 3_000_000, 64, 256, 256, 256)


def test_create_counts_its_shared_item_table_once_and_both_branches():
    p = params("CREATE")
    create = model_class("CREATE").memory_budget(p, YAMBDA_500M)
    sasrec = model_class("SASRec").memory_budget(params("SASRec"), YAMBDA_500M)
    assert held(create, "item table") == held(sasrec, "item table") == 3_000_000 * 64 * 16
    assert held(create, "user table") == 100_000 * 64 * 16
    assert held(create, "normalised adjacency") > 0
    assert create.nbytes > sasrec.nbytes


def test_the_fix_names_sce_and_the_largest_dim_that_fits():
    cls = model_class("SASRec")
    p = params("SASRec", loss="ce", eval_batch_size=64)
    need = cls.memory_need(p, YAMBDA_500M, available=8 * GiB)
    assert need.nbytes > 100 * GiB and "`loss: sce`" in need.fix
    sce = params("SASRec", eval_batch_size=64)
    need = cls.memory_need(sce, YAMBDA_500M, available=6 * GiB)
    dim = int(need.fix.split("`dim: ")[1].split("`")[0])
    assert 0 < dim < 64 and dim % 2 == 0
    assert cls.memory_budget(sce, YAMBDA_500M, dim).nbytes <= 6 * GiB
    assert cls.memory_budget(sce, YAMBDA_500M, dim + 2).nbytes > 6 * GiB
    assert "GPU" in need.fix
    fits = cls.memory_need(sce, Sizes(100, 1_000, 1_000), available=8 * GiB)
    assert fits.nbytes < 8 * GiB


# ----------------------------------------------------------------------------- the job


def log(n_users=300, length=20, n_items=20_000):
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), length)
    return Interactions(users, rng.integers(0, n_items, len(users)), np.arange(len(users)),
                        n_users, n_items)


def never(*_args, **_kwargs):
    raise AssertionError("built the model: the job should have stopped at its start")


@pytest.mark.parametrize("name, kw", [
    ("SASRec", {"loss": "sce", "max_len": 20}),
    ("CREATE", {"warmup_epochs": 0, "sequential": {"loss": "sce", "max_len": 20}}),
    ("LightGCN", {}),
])
def test_a_job_that_cannot_fit_stops_at_its_start(name, kw, monkeypatch):
    monkeypatch.delenv(memory.SKIP_ENV, raising=False)
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 16 * 2**20)  # 16 MiB
    model = build_model(name, {**kw, "epochs": 1, "progress": False}, seed=0)
    monkeypatch.setattr(type(model), "build", never)
    with pytest.raises(ResourceError) as err:
        model.fit(log())
    msg = str(err.value)
    assert msg.startswith(name) and "needs about" in msg and "0.02 GiB is available" in msg
    assert "item table" in msg  # what it needs, by part
    assert "What would fit in 0.02 GiB" in msg or "Use a GPU" in msg, msg
    assert "GPU" in msg


def test_a_job_that_fits_trains():
    model = build_model("SASRec", {"loss": "sce", "sce_n_buckets": 8, "dim": 16, "max_len": 10,
                                   "epochs": 1, "progress": False}, seed=0)
    model.fit(log(n_users=40, length=12, n_items=500))
    assert model.epochs_trained == 1
    assert model.training_memory().nbytes > 500 * 16 * 16


# ----------------------------------------------------------------------------- the dry check


@pytest.fixture
def small_config(tmp_path):
    config = yaml.safe_load(open("config/config.yaml"))
    config["datasets"] = {"synthetic": config["datasets"]["synthetic"],
                          "yambda-500m-likes": {"source": "yambda", "size_variant": "500m",
                                                "event": "likes"}}
    config["models"] = {"PopRnd": {}, "SASRec": {"params": {"loss": "sce", "max_len": 50}},
                        "LightGCN": {},
                        "CREATE": {"params": {"sequential_backbone": "SASRec",
                                              "graph_backbone": "LightGCN",
                                              "sequential": {"loss": "sce"}}}}
    for key in ("studies", "table3", "readings"):
        config.pop(key, None)
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    results = tmp_path / "results"
    (results / "synthetic").mkdir(parents=True)
    (results / "synthetic/split_summary.json").write_text(json.dumps(
        {"train_users": 1_000, "train_items": 1_000, "train_interactions": 40_000}))
    return path, results


def check(args, capsys):
    status = memory_check.main(args)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    return status, {tuple(c.strip() for c in r.strip("|").split("|")[:2]): r for r in rows}


def test_the_dry_check_prints_a_row_per_dataset_and_model(small_config, capsys):
    path, results = small_config
    status, rows = check(["--config", str(path), "--device", "cpu", "--available-gib", "1000",
                          "--results", str(results)], capsys)
    assert status == 0
    for dataset in ("synthetic", "yambda-500m-likes"):
        for model in ("PopRnd", "SASRec", "LightGCN", "CREATE"):
            assert (dataset, model) in rows, (dataset, model, list(rows))
    assert "| fits |" in rows[("synthetic", "SASRec")]
    assert "split_summary.json" in rows[("synthetic", "SASRec")]
    assert "| 3,000,000 |" in rows[("yambda-500m-likes", "CREATE")]  # the release's counts
    assert "Yambda-500m likes, as released" in rows[("yambda-500m-likes", "CREATE")]
    assert "not estimated" in rows[("synthetic", "PopRnd")]


def test_the_dry_check_fails_when_a_model_cannot_fit(small_config, capsys):
    path, results = small_config
    status, rows = check(["--config", str(path), "--device", "cpu", "--available-gib", "10",
                          "--results", str(results)], capsys)
    assert status == 1
    assert "| REFUSED |" in rows[("yambda-500m-likes", "CREATE")]
    assert "What would fit in 10.0 GiB" in rows[("yambda-500m-likes", "CREATE")]
    assert "| fits |" in rows[("synthetic", "CREATE")]


def test_an_unprepared_dataset_is_unknown(small_config, capsys, tmp_path):
    path, _ = small_config
    status, rows = check(["--config", str(path), "--available-gib", "1000", "--results",
                          str(tmp_path / "nothing")], capsys)
    assert status == 0
    assert "unknown until prepared" in rows[("synthetic", "SASRec")]


def test_the_workflow_stops_before_jobs_when_one_cannot_fit(small_config, monkeypatch):
    path, _ = small_config
    from recbench.protocol import config as cfg

    config = cfg.load_validated(path, memory_check.SCHEMA)
    monkeypatch.delenv(memory.SKIP_ENV, raising=False)
    monkeypatch.setattr(memory_check, "available_bytes", lambda device=None: 4 * GiB)
    lines = []

    class Log:
        def info(self, msg):
            lines.append(msg)

    with pytest.raises(ResourceError, match="stopping before any job: yambda-500m-likes/"):
        memory_check.before_jobs(config, Log())
    assert "| REFUSED |" in lines[0]
    memory_check.before_jobs(config, Log(), local=False)  # a cluster: printed, not stopped


def test_the_dry_check_costs_the_larger_evaluation_batch(small_config, capsys, tmp_path):
    path, results = small_config
    config = yaml.safe_load(path.read_text())
    estimates = []
    for batch in (256, 4096):
        config["evaluation"] = {**(config.get("evaluation") or {}), "batch_size": batch}
        path.write_text(yaml.safe_dump(config))
        _, rows = check(["--config", str(path), "--available-gib", "1000", "--results",
                         str(results)], capsys)
        estimates.append(rows[("yambda-500m-likes", "SASRec")].split("|")[7].strip())
    # SASRec's own eval_batch_size is 1,024: 256 changes nothing, 4,096 costs four times the block
    assert estimates[0] != estimates[1], estimates


# ----------------------------------------------------------------------------- UltraGCN's R^T R


def test_sizes_count_each_users_distinct_items_squared():
    users = np.array([0, 0, 0, 1, 1, 2])
    items = np.array([5, 5, 7, 1, 2, 9])  # user 0: items {5, 7} (5 twice)
    sizes = Sizes.of(Interactions(users, items, np.arange(6), 4, 10))
    assert sizes.n_pairs == 2 ** 2 + 2 ** 2 + 1 ** 2 + 0
    assert sizes.pairs_bound() == (9, True) and sizes.pairs_bound(1) == (4, True)
    assert Sizes(4, 10, 6).pairs_bound() == (4 * 1.5 ** 2, False)  # without the log: the least
    assert Sizes(4, 2, 6).pairs_bound()[0] == 4  # never above items squared


def test_ultragcn_costs_the_co_occurrence_its_neighbours_are_found_on():
    """The estimate of building the graph covers ``item_neighbours``' measured peak (numpy's
    allocations, traced) on a heavy-tailed log, and stays within 3x of it."""
    import tracemalloc

    from recbench.graph import item_neighbours

    rng = np.random.default_rng(1)
    degree = np.minimum(rng.zipf(1.6, 800) * 10, 600)
    users = np.repeat(np.arange(800), degree)
    train = Interactions(users, (rng.zipf(1.3, len(users)) - 1) % 5_000, np.arange(len(users)),
                         800, 5_000)
    p = params("UltraGCN")
    build = model_class("UltraGCN").memory_budget(p, Sizes.of(train)).phases["graph construction"]
    estimate = sum(v for k, v in build.items() if k.startswith("item co-occurrence"))
    R = train.csr(binary=True)
    tracemalloc.start()
    try:
        item_neighbours(R, p.n_neighbours)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= estimate <= 3 * peak, (peak, estimate)
    # at Yambda-50M likes' sizes the pairs alone, at least, reach several GiB
    yambda_50m = model_class("UltraGCN").memory_budget(p, Sizes(10_000, 934_057, 881_456))
    part = [k for k in yambda_50m.phases["graph construction"] if "R^T R" in k]
    assert part and "at least" in part[0]
