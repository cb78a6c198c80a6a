"""The out-of-core prepare and split against the in-memory path they replaced, on small files in
Yambda's exact flat layout (uid, timestamp, item_id uint32, is_organic uint8, played_ratio_pct
uint16, event_type), cut into many buckets so that the bucketed code runs: the same bytes.
The oracle (the in-memory prepare as it was) lives here only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recbench.data import split as split_module
from recbench.data.dataset import save_split
from recbench.data.prepare import count_by, count_duplicates, packed_key, prepare_to
from recbench.data.sources import check_yambda_release
from recbench.data.split import (GlobalTemporalSplit, OrderStatistics, index_split, linear_quantile,
                                 split_to_folder)
from recbench.data.synthetic import SyntheticConfig, generate
from recbench.errors import ConfigError, DataError

EVENTS = ("listen", "like", "dislike", "unlike", "undislike")


def write_flat(path: Path, rows: int, *, event: str = "likes", seed: int = 0,
               users: int = 60, items: int = 400) -> Path:
    """A Yambda flat file of ``rows`` rows: Zipf items, some repeated rows (duplicates), and for
    listens and multi_event played_ratio_pct (some null, some over 100: replays)."""
    rng = np.random.default_rng(seed)
    uid = rng.integers(0, users, rows)
    cols = {"uid": pa.array(uid, pa.uint32()),
            "timestamp": pa.array(rng.integers(0, 5_000, rows), pa.uint32()),
            "item_id": pa.array((rng.zipf(1.4, rows) - 1) % items, pa.uint32()),
            "is_organic": pa.array(rng.integers(0, 2, rows), pa.uint8())}
    if event in ("listens", "multi_event"):
        ratio = rng.integers(0, 140, rows).astype(object)
        ratio[rng.random(rows) < 0.05] = None
        cols["played_ratio_pct"] = pa.array(ratio, pa.uint16())
    if event == "multi_event":
        kind = rng.choice(EVENTS, rows, p=[0.7, 0.1, 0.1, 0.05, 0.05])
        cols["event_type"] = pa.array(kind).dictionary_encode()
    table = pa.table(cols)
    repeated = table.take(rng.integers(0, rows, rows // 20))  # exact copies of earlier rows
    pq.write_table(pa.concat_tables([table, repeated]), path)
    return path


def oracle_prepare(path: Path, keep=None, duplicates: str = "keep") -> tuple[pl.DataFrame, int]:
    """The in-memory prepare of a Yambda file as it was: read it whole, cast to the canonical
    int64 columns, count duplicates (as rows less distinct rows), drop them keeping the first."""
    df = pl.read_parquet(path)
    if keep is not None:
        df = df.filter(keep)
    df = df.select(pl.col("uid").cast(pl.Int64).alias("user"),
                   pl.col("item_id").cast(pl.Int64).alias("item"),
                   pl.col("timestamp").cast(pl.Int64))
    n = df.height - df.unique().height
    if duplicates == "drop":
        df = df.unique(keep="first", maintain_order=True)
    return df, n


def digests(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def spec(**kw) -> dict:
    return {"source": "yambda", "check_release": False, **kw}


@pytest.mark.parametrize("bucket_rows", [10**9, 700, 97])
@pytest.mark.parametrize("duplicates", ["keep", "drop"])
def test_streamed_prepare_writes_the_in_memory_bytes(tmp_path, bucket_rows, duplicates):
    raw = write_flat(tmp_path / "likes.parquet", 3_000)
    expected, n_dup = oracle_prepare(raw, duplicates=duplicates)
    assert n_dup > 0  # the file has duplicates, so both modes differ
    expected.write_parquet(tmp_path / "oracle.parquet")
    report = prepare_to("likes", spec(duplicates=duplicates), raw, tmp_path / "ours.parquet",
                        bucket_rows=bucket_rows)
    assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "oracle.parquet").read_bytes()
    assert report["duplicate_rows"] == n_dup
    assert report["interactions"] == expected.height == 3_150 - (n_dup if duplicates == "drop" else 0)


@pytest.mark.parametrize("valid_quantile", [0.9, None])
@pytest.mark.parametrize("bucket_rows", [10**9, 500, 150])
def test_bucketed_split_writes_the_in_memory_bytes(tmp_path, monkeypatch, bucket_rows,
                                                   valid_quantile):
    """On the embedded synthetic log and on a Yambda-layout one; the quantiles found by their
    histograms (``_SELECT_ROWS`` lowered so that they narrow several times)."""
    monkeypatch.setattr(split_module, "_SELECT_ROWS", 50)
    yambda, _ = oracle_prepare(write_flat(tmp_path / "likes.parquet", 4_000, seed=3))
    text = yambda.with_columns(pl.format("u{}", "user").alias("user"),
                               pl.format("i{}", "item").alias("item"))  # ids as text
    for name, log in (("synthetic", generate(SyntheticConfig())), ("yambda", yambda),
                      ("text", text)):
        log.write_parquet(tmp_path / f"{name}.parquet")
        config = {"valid_quantile": valid_quantile}
        save_split(index_split(GlobalTemporalSplit(**config).split(log)), tmp_path / name / "old")
        split_to_folder(tmp_path / f"{name}.parquet", config, tmp_path / name / "new",
                        bucket_rows=bucket_rows)
        assert digests(tmp_path / name / "new") == digests(tmp_path / name / "old"), name


def test_the_split_refuses_an_empty_test_as_before(tmp_path):
    log = pl.DataFrame({"user": [1, 1, 1, 2, 2, 2], "item": [1, 2, 3, 1, 2, 3],
                        "timestamp": [5] * 6})
    log.write_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match="test split is empty"):
        split_to_folder(tmp_path / "p.parquet", {}, tmp_path / "out", bucket_rows=3)
    assert not (tmp_path / "out" / "meta.json").exists()


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.8, 0.9, 0.999, 1.0])
def test_linear_quantile_is_numpys(monkeypatch, q, tmp_path):
    monkeypatch.setattr(split_module, "_SELECT_ROWS", 40)
    rng = np.random.default_rng(7)
    for n, high in ((1, 10), (2, 3), (1_001, 5), (5_000, 10**12), (3_333, 2**40)):
        values = rng.integers(-high, high, n)
        pl.DataFrame({"timestamp": values}).write_parquet(tmp_path / "t.parquet")
        stats = OrderStatistics([tmp_path / "t.parquet"], tmp_path)
        assert linear_quantile(stats, n, q) == float(np.quantile(values, q)), (n, high)
        # the quantile of the values at or below a cut, from the same statistics
        cut = np.sort(values)[n // 2]
        m = stats.count_at_most(cut + 0.5)
        assert m == int((values <= cut).sum())
        assert linear_quantile(stats, m, q) == float(np.quantile(values[values <= cut], q))


@pytest.mark.parametrize("select_rows", [40, 10**6])
def test_order_statistics_are_numpys(monkeypatch, select_rows, tmp_path):
    """Every k at once, on values that crowd bins (narrowed) and leave others empty; the counts
    at or below each value and between them."""
    monkeypatch.setattr(split_module, "_SELECT_ROWS", select_rows)
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.integers(0, 2**33, 3_000), np.full(500, 7),
                             rng.integers(0, 50, 400)])
    pl.DataFrame({"timestamp": values}).write_parquet(tmp_path / "t.parquet")
    stats = OrderStatistics([tmp_path / "t.parquet"], tmp_path)
    ordered = np.sort(values)
    ks = list(range(0, len(values), 37)) + [len(values) - 1]
    assert stats.values(ks) == [int(ordered[k]) for k in ks]
    for x in [-1, 0, 6.5, 7, 7.2, 49, 2**20 + 0.3, ordered[-1], 2**34]:
        assert stats.count_at_most(x) == int((values <= x).sum()), x


@pytest.mark.parametrize("rows", [7, 1_000, 10**9])
def test_counts_by_slices_are_the_group_bys(tmp_path, rows):
    rng = np.random.default_rng(11)
    files = []
    for i, n in enumerate((300, 0, 1_001)):  # an empty file among them
        pl.DataFrame({"user": rng.integers(0, 40, n), "timestamp": rng.integers(0, 90, n)},
                     schema={"user": pl.Int64, "timestamp": pl.Int64}).write_parquet(
                         tmp_path / f"{i}.parquet")
        files.append(tmp_path / f"{i}.parquet")
    whole = pl.read_parquet(files)
    for where in (None, pl.col("timestamp") <= 30, pl.col("timestamp") < 0):
        rows_of = whole if where is None else whole.filter(where)
        for key in ("user", (pl.col("timestamp") // 8).alias("bin")):
            got = count_by(files, key, tmp_path, where=where, rows=rows)
            expected = rows_of.group_by(key).agg(pl.len().cast(pl.Int64)).sort(got.columns[0])
            assert got.equals(expected), (where, key)


def test_the_packed_key_orders_and_tells_rows_apart_as_their_columns_do():
    rng = np.random.default_rng(5)
    df = pl.DataFrame({"user": rng.integers(-50, 50, 2_000), "item": rng.integers(0, 9, 2_000),
                       "timestamp": rng.integers(10**9, 10**9 + 30, 2_000)})
    key = packed_key(df, df.columns)
    assert key.dtype == pl.Int64
    assert df.sort(key, maintain_order=True).equals(df.sort(df.columns, maintain_order=True))
    assert key.n_unique() == df.unique().height
    assert count_duplicates(df) == df.height - df.unique().height > 0
    # what does not pack: text, a null, more than 63 bits
    assert packed_key(df.with_columns(pl.col("user").cast(pl.String)), df.columns) is None
    assert packed_key(df.with_columns(pl.lit(None, pl.Int64).alias("item")), df.columns) is None
    wide = df.with_columns((pl.col("item") * 2**40).alias("item"),
                           (pl.col("timestamp") * 2**20).alias("timestamp"))
    assert packed_key(wide, wide.columns) is None
    assert count_duplicates(wide) == count_duplicates(df)  # by the sort


def test_listens_keep_the_official_played_ratio(tmp_path):
    raw = write_flat(tmp_path / "listens.parquet", 4_000, event="listens")
    table = pl.read_parquet(raw)
    ratio = table["played_ratio_pct"]
    kept = int((ratio >= 50).sum())  # nulls are not >= 50
    assert 0 < kept < table.height and ratio.null_count() > 0
    report = prepare_to("listens", spec(event="listens"), raw, tmp_path / "p.parquet")
    assert (report["file_rows"], report["rows"], report["filtered_out"]) == (
        table.height, kept, table.height - kept)
    assert report["event_filter"] == "played_ratio_pct >= 50"
    expected, _ = oracle_prepare(raw, keep=pl.col("played_ratio_pct") >= 50)
    assert pl.read_parquet(tmp_path / "p.parquet").equals(expected)

    report = prepare_to("listens", spec(event="listens", min_played_ratio=100), raw,
                        tmp_path / "p100.parquet")
    assert report["rows"] == int((ratio >= 100).sum())
    report = prepare_to("listens", spec(event="listens", min_played_ratio=None), raw,
                        tmp_path / "all.parquet")
    assert report["rows"] == report["interactions"] + report["dropped_duplicates"] == table.height
    assert "file_rows" not in report  # nothing filtered


def test_multi_event_keeps_likes_and_played_listens(tmp_path):
    raw = write_flat(tmp_path / "multi_event.parquet", 5_000, event="multi_event")
    t = pl.read_parquet(raw).with_columns(pl.col("event_type").cast(pl.Utf8))
    likes = int((t["event_type"] == "like").sum())
    listens = int(((t["event_type"] == "listen") & (t["played_ratio_pct"] >= 50)).fill_null(False)
                  .sum())
    report = prepare_to("multi", spec(event="multi_event"), raw, tmp_path / "p.parquet")
    assert report["rows"] == likes + listens and report["file_rows"] == t.height
    assert report["event_filter"] == "event_type in: listen (played_ratio_pct >= 50), like"
    report = prepare_to("multi", spec(event="multi_event", event_types=["like", "dislike"]), raw,
                        tmp_path / "ld.parquet")
    assert report["rows"] == int(t["event_type"].is_in(["like", "dislike"]).sum())
    with pytest.raises(ConfigError, match="event_types"):
        prepare_to("multi", spec(event="multi_event", event_types=["skip"]), raw,
                   tmp_path / "x.parquet")
    with pytest.raises(ConfigError, match="min_played_ratio"):
        prepare_to("multi", spec(event="listens", min_played_ratio="half"), raw,
                   tmp_path / "x.parquet")


def test_a_listens_file_without_played_ratio_is_refused(tmp_path):
    raw = write_flat(tmp_path / "listens.parquet", 100)  # a likes layout: no played_ratio_pct
    with pytest.raises(DataError, match="played_ratio_pct") as info:
        prepare_to("listens", spec(event="listens"), raw, tmp_path / "p.parquet")
    assert str(raw) in str(info.value) and "min_played_ratio: null" in str(info.value)


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_a_truncated_parquet_is_refused_by_name(tmp_path, cut):
    raw = write_flat(tmp_path / "likes.parquet", 2_000)
    data = raw.read_bytes()
    raw.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(DataError) as info:
        prepare_to("likes", spec(), raw, tmp_path / "p.parquet")
    assert str(raw) in str(info.value) and "download again" in str(info.value)
    assert not (tmp_path / "p.parquet").exists()


def test_corrupt_pages_are_refused_by_name_while_streaming(tmp_path):
    raw = write_flat(tmp_path / "likes.parquet", 20_000)
    data = bytearray(raw.read_bytes())
    refused = 0
    for start in range(64, len(data) // 2, len(data) // 40):
        corrupt = bytearray(data)
        corrupt[start:start + 16] = b"\xff" * 16
        raw.write_bytes(bytes(corrupt))
        try:
            prepare_to("likes", spec(), raw, tmp_path / "p.parquet", bucket_rows=5_000)
        except DataError as exc:
            refused += 1
            assert str(raw) in str(exc)
    assert refused > 0


def test_released_counts():
    """Exact where the release is stated exactly; within half a unit of the last digit where it
    is published rounded (9.03M likes in 500M)."""
    check_yambda_release("y", {"size_variant": "50m"}, 881_456, {"users": 8_283, "items": 1}, "f")
    with pytest.raises(DataError, match="881,455 rows, the release has 881,456"):
        check_yambda_release("y", {}, 881_455, {"users": 1, "items": 1}, "f")
    with pytest.raises(DataError, match="10,001 users"):
        check_yambda_release("y", {"event": "multi_event"}, 7, {"users": 10_001, "items": 1}, "f")
    s500 = {"size_variant": "500m", "event": "likes"}
    check_yambda_release("y", s500, 9_034_999, {"users": 1, "items": 1}, "f")
    with pytest.raises(DataError, match=r"\+-5,000"):
        check_yambda_release("y", s500, 9_035_001, {"users": 1, "items": 1}, "f")
    check_yambda_release("y", {**s500, "check_release": False}, 5, {"users": 1, "items": 1}, "f")
