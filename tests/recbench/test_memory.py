"""Memory refusal: a step that would not fit is refused up front with the GiB it needs.

``recbench.memory.available_bytes`` is patched to a small number, and every path must raise
ResourceError naming the GiB needed and available, before its big allocation happens (the
allocating function is patched to fail the test if it is ever reached).
"""

import re

import numpy as np
import polars as pl
import pytest
import torch

from recbench import memory
from recbench.data.dataset import Interactions
from recbench.data.prepare import parse_memory_bytes, prepare, uncompressed_bytes
from recbench.errors import BenchError, ResourceError
from recbench.io import write_parquet
from recbench.memory import GiB, Need, Sizes, available_bytes, require
from recbench.models import build_model
from recbench.nn.losses import full_ce_bytes

#: "... needs about X GiB of memory, but only Y GiB is available."
MESSAGE = re.compile(r"needs about ([\d.,]+) GiB of (?:GPU )?memory.*but only ([\d.,]+) GiB is "
                     r"available")


def gib_numbers(message: str) -> tuple[float, float]:
    m = MESSAGE.search(message)
    assert m, f"no 'needs about X GiB ... only Y GiB is available' in: {message}"
    return float(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))


@pytest.fixture()
def little_memory(monkeypatch):
    """available_bytes() -> 0.25 GiB wherever it is asked (main memory and GPUs)."""
    monkeypatch.delenv(memory.SKIP_ENV, raising=False)
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: GiB // 4)


def seq_log(n_users=200, length=60, n_items=50_000):
    """n_users users with ``length`` items each from a catalog of n_items."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), length)
    items = rng.integers(0, n_items, len(users))
    return Interactions(users, items, np.arange(len(users)), n_users, n_items)


def never(*_args, **_kwargs):
    raise AssertionError("reached the allocation the memory check should have refused")


# ----------------------------------------------------------------------------- the helper


def test_available_bytes_reads_the_machine():
    free = available_bytes()
    assert isinstance(free, int) and free > 0


def test_available_bytes_of_a_cuda_device_is_its_free_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * GiB, 80 * GiB))
    assert available_bytes("cuda:0") == 3 * GiB
    monkeypatch.delenv(memory.SKIP_ENV, raising=False)
    with pytest.raises(ResourceError, match="GPU memory on cuda:0") as err:
        require(5 * GiB, "a test step", "use a bigger GPU", device="cuda:0")
    assert gib_numbers(str(err.value)) == (5.0, 3.0)


def test_require_names_what_how_much_and_the_fix(little_memory):
    require(GiB // 8, "a small step", "nothing")  # fits: no error
    with pytest.raises(ResourceError) as err:
        require(3 * GiB, "a big step", "use loss: sce")
    msg = str(err.value)
    assert gib_numbers(msg) == (3.0, 0.25)
    assert msg.startswith("a big step needs about 3.0 GiB") and "use loss: sce" in msg
    assert isinstance(err.value, BenchError)


def test_the_check_can_be_switched_off(little_memory, monkeypatch):
    monkeypatch.setenv(memory.SKIP_ENV, "1")
    require(100 * GiB, "a huge step", "nothing")


# ----------------------------------------------------------------------------- training


def test_sasrec_full_ce_estimate_is_the_fullest_batch():
    model = build_model("SASRec", {"max_len": 20, "batch_size": 16, "progress": False})
    lengths = [3] * 50 + [30] * 10  # 10 windows of 20 inputs, 50 of 2
    users = np.repeat(np.arange(60), lengths)
    train = Interactions(users, np.arange(len(users)) % 1000, np.arange(len(users)), 60, 1000)
    model.build(train)
    model.data_sizes = Sizes.of(train)
    need = model.training_memory()
    loss = {k: v for k, v in need.parts.items() if "catalogue loss" in k}
    assert list(loss.values()) == [full_ce_bytes(10 * 20 + 6 * 2, 1000, 64)], need.parts
    assert "over 212 positions" in next(iter(loss))
    assert need.nbytes == sum(need.parts.values())


@pytest.mark.parametrize("name, params", [
    ("SASRec", {}),
    ("BERT4Rec", {}),
    ("MRGSRec", {"max_len": 50}),
    ("CREATE", {"warmup_epochs": 0}),
])
def test_full_ce_training_is_refused_before_the_first_step(name, params, little_memory,
                                                           monkeypatch):
    model = build_model(name, {**params, "epochs": 1, "progress": False}, seed=0)
    monkeypatch.setattr(type(model), "training_loss", never)
    with pytest.raises(ResourceError) as err:
        model.fit(seq_log())
    msg = str(err.value)
    need, available = gib_numbers(msg)
    assert available == 0.25 and need > 0.25
    assert name.split("'")[0] in msg and "loss: sce" in msg, msg
    # the number is the model's own estimate of the whole run, e.g. SASRec: full CE over 128
    # windows x 50 inputs x 50k items, plus the tables, the windows and the activations
    if name == "SASRec":
        ce = full_ce_bytes(128 * 50, 50_000, 64) / GiB
        assert "catalogue loss (ce) over 6,400 positions" in msg
        assert ce < need < ce + 0.2


def test_sce_training_is_not_refused(little_memory):
    model = build_model("SASRec", {"loss": "sce", "epochs": 1, "dim": 16, "max_len": 10,
                                   "sce_n_buckets": 16, "progress": False}, seed=0)
    model.fit(seq_log(n_users=40, length=12, n_items=5_000))
    assert model.epochs_trained == 1


def test_a_training_step_that_fits_is_not_refused():
    model = build_model("SASRec", {"epochs": 1, "dim": 16, "max_len": 10, "progress": False})
    model.fit(seq_log(n_users=40, length=12, n_items=300))
    assert model.epochs_trained == 1


def test_the_memory_error_reaches_the_user_from_train(little_memory):
    """train() itself checks every module's training_memory()."""
    from torch import nn

    from recbench.training import TrainableModule, TrainConfig, train

    class Big(TrainableModule):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def training_memory(self):
            return Need(40 * GiB, "Big: a test step", "make it smaller")

        train_batches = never
        training_loss = never

    with pytest.raises(ResourceError, match="Big: a test step needs about 40.0 GiB"):
        train(Big(), TrainConfig(epochs=1, progress=False))


# ----------------------------------------------------------------------------- preparing data


def test_prepare_refuses_a_log_too_big_to_parse(tmp_path, little_memory, monkeypatch):
    rows = 400_000
    rng = np.random.default_rng(0)
    log = pl.DataFrame({"uid": rng.integers(0, 10_000, rows), "iid": rng.integers(0, 5_000, rows),
                        "ts": np.arange(rows)})
    path = tmp_path / "log.parquet"
    write_parquet(log, path)
    spec = {"path": str(path), "columns": {"user": "uid", "item": "iid", "timestamp": "ts"}}
    # the estimate bounds the parsed frame from above, from the metadata alone
    assert uncompressed_bytes(path) >= log.estimated_size()
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1024**2)  # 1 MiB
    monkeypatch.setattr(pl, "read_parquet", never)
    with pytest.raises(ResourceError, match="mydata: parsing log.parquet") as err:
        prepare("mydata", spec, path)
    need, available = gib_numbers(str(err.value))
    assert need == pytest.approx(parse_memory_bytes(path) / GiB, abs=0.01)
    assert available == 0.0 and "more memory" in str(err.value)


def test_gzip_and_text_sizes_are_their_uncompressed_sizes(tmp_path):
    import gzip

    text = b"user,item,timestamp\n" + b"1,2,3\n" * 100_000
    (tmp_path / "a.csv").write_bytes(text)
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(text))
    assert uncompressed_bytes(tmp_path / "a.csv") == len(text)
    assert uncompressed_bytes(tmp_path / "a.json.gz") == len(text)


# ----------------------------------------------------------------------------- EASE


def test_ease_refuses_a_catalog_too_big_for_memory(little_memory, monkeypatch):
    n_items = 9_000  # 4 x 9000^2 x 8 bytes = 2.4 GiB > 0.25 GiB, below max_items
    users = np.repeat(np.arange(100), 20)
    train = Interactions(users, np.arange(len(users)) % n_items, np.arange(len(users)), 100,
                         n_items)
    monkeypatch.setattr(np.linalg, "inv", never)
    monkeypatch.setattr(Interactions, "csr", never)
    with pytest.raises(ResourceError, match="EASE on 9,000 items") as err:
        build_model("EASE", {}).fit(train)
    assert gib_numbers(str(err.value)) == (2.4, 0.25)
    assert "exclude_models" in str(err.value)
