"""Raw parsers, the source registry and prepare(): exact rows, clear errors, and the real path
that Snakemake takes (remote spec -> download -> prepare) against a loopback server."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zipfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from recbench.data.download import download
from recbench.data.prepare import count_duplicates, dataset_counts, prepare
from recbench.data.sources import (
    AMAZON_URL,
    MOVIELENS_1M_URL,
    Parsed,
    parse_amazon_2014,
    parse_custom,
    parse_movielens_1m,
    parse_yambda,
    read_table,
    source_of,
)
from recbench.errors import ConfigError, DataError, DownloadError

from .fixtures import (
    AMAZON_EXPECTED,
    AMAZON_REVIEWS,
    ML1M_EXPECTED,
    ML1M_RATINGS,
    YAMBDA_EXPECTED,
    amazon_filename,
    amazon_record,
    loopback_server,
    md5_of,
    write_amazon_2014,
    write_delimited,
    write_ml1m_zip,
    write_parquet_table,
    write_yambda,
)

COLUMNS = {"user": "visitor_id", "item": "product", "timestamp": "event_time"}

# The custom-file rows, in the file's own column names; `extra` must be ignored.
CUSTOM_ROWS = [
    ("v1", "p10", 1_600_000_000, 0.5),
    ("v1", "p11", 1_600_000_060, 1.5),
    ("v2", "p10", 1_600_000_120, 2.5),
    ("v3", "p12", 1_600_000_180, 3.5),
]
CUSTOM_HEADER = ["visitor_id", "product", "event_time", "extra"]
CUSTOM_EXPECTED = [(u, i, t) for u, i, t, _ in CUSTOM_ROWS]


def assert_canonical(df: pl.DataFrame | Parsed, expected_rows: list[tuple]) -> None:
    if isinstance(df, Parsed):  # a parser's rows, every one of them usable
        assert df.log.null_count().sum_horizontal().item() == 0 and df.raw.height == df.log.height
        df = df.log
    assert df.columns == ["user", "item", "timestamp"]
    assert df.schema["timestamp"] == pl.Int64
    assert df.rows() == expected_rows


def assert_names(exc: BaseException, *needles: str) -> None:
    msg = str(exc)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in: {msg}"


# ----------------------------------------------------------------------------- MovieLens 1M


def test_parse_movielens_1m(tmp_path):
    df = parse_movielens_1m(write_ml1m_zip(tmp_path / "ml-1m.zip"))
    assert_canonical(df, ML1M_EXPECTED)
    assert df.log.schema["user"] == pl.Int64 and df.log.schema["item"] == pl.Int64


def test_parse_movielens_1m_large_ids(tmp_path):
    """Ids and timestamps of any width, up to the 2038 limit of 32-bit times and beyond."""
    ratings = [(6040, 3952, 1, 1046454590), (10, 1, 5, 956703932), (123456, 7, 2, 2_000_000_000)]
    df = parse_movielens_1m(write_ml1m_zip(tmp_path / "ml-1m.zip", ratings))
    assert_canonical(df, [(u, i, t) for u, i, _, t in ratings])


def test_parse_movielens_1m_without_ratings(tmp_path):
    path = write_ml1m_zip(tmp_path / "ml-1m.zip", ratings_member="ml-1m/other.dat")
    with pytest.raises(DataError) as info:
        parse_movielens_1m(path)
    assert_names(info.value, str(path), "ratings.dat")


def test_parse_movielens_1m_not_a_zip(tmp_path):
    path = tmp_path / "ml-1m.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(DataError) as info:
        parse_movielens_1m(path)
    assert_names(info.value, str(path), "zip")


def test_parse_movielens_1m_wrong_separator(tmp_path):
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1,1193,5,978300760\n2,661,3,978302109\n")
    with pytest.raises(DataError) as info:
        parse_movielens_1m(path)
    assert_names(info.value, str(path), "ratings.dat")


# ----------------------------------------------------------------------------- Amazon 2014


def test_parse_amazon_2014(tmp_path):
    df = parse_amazon_2014(write_amazon_2014(tmp_path / amazon_filename("Beauty")))
    assert_canonical(df, AMAZON_EXPECTED)
    assert df.log.schema["user"] == pl.Utf8 and df.log.schema["item"] == pl.Utf8


def test_parse_amazon_2014_reviewer_name_missing_on_some_lines(tmp_path):
    """Real dumps omit reviewerName on some reviews; that must not matter."""
    path = tmp_path / amazon_filename("Beauty")
    lines = []
    for n, rec in enumerate(amazon_record(*r) for r in AMAZON_REVIEWS):
        if n % 2:
            rec.pop("reviewerName")
        lines.append(json.dumps(rec))
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    assert_canonical(parse_amazon_2014(path), AMAZON_EXPECTED)


def test_parse_amazon_2014_python_literal_lines(tmp_path):
    """Older Amazon dumps hold one Python dict literal per line (single quotes), not JSON."""
    path = tmp_path / "reviews_Beauty.json.gz"
    with gzip.open(path, "wt") as f:
        for r in AMAZON_REVIEWS:
            f.write(repr(amazon_record(*r)) + "\n")
    assert_canonical(parse_amazon_2014(path), AMAZON_EXPECTED)


@pytest.mark.parametrize("key", ["reviewerID", "asin", "unixReviewTime"])
def test_parse_amazon_2014_missing_column(tmp_path, key):
    path = write_amazon_2014(tmp_path / amazon_filename("Beauty"), drop_key=key)
    with pytest.raises(DataError) as info:
        parse_amazon_2014(path)
    assert_names(info.value, str(path), key)


def test_parse_amazon_2014_not_gzip(tmp_path):
    path = tmp_path / amazon_filename("Beauty")
    path.write_bytes(b'{"reviewerID": "A", "asin": "B", "unixReviewTime": 1}\n')
    with pytest.raises(DataError) as info:
        parse_amazon_2014(path)
    assert_names(info.value, str(path), "gzip")


# ----------------------------------------------------------------------------- Yambda


def test_parse_yambda(tmp_path):
    df = parse_yambda(write_yambda(tmp_path / "likes.parquet"))
    assert_canonical(df, YAMBDA_EXPECTED)


@pytest.mark.parametrize("column", ["uid", "item_id", "timestamp"])
def test_parse_yambda_missing_column(tmp_path, column):
    path = write_yambda(tmp_path / "likes.parquet", drop_column=column)
    with pytest.raises(DataError) as info:
        parse_yambda(path)
    assert_names(info.value, str(path), column)


def test_parse_yambda_not_parquet(tmp_path):
    path = tmp_path / "likes.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    with pytest.raises(DataError) as info:
        parse_yambda(path)
    assert_names(info.value, str(path), "parquet")


def test_parse_yambda_corrupt_data_pages(tmp_path):
    """Footer intact, data overwritten: a DataError naming the file, never a reader panic."""
    path = write_yambda(tmp_path / "likes.parquet")
    data = bytearray(path.read_bytes())
    for start in range(4, len(data) - 200, 24):
        corrupt = bytearray(data)
        corrupt[start:start + 8] = b"\xff" * 8
        path.write_bytes(bytes(corrupt))
        try:
            parse_yambda(path)
        except DataError as exc:
            assert_names(exc, str(path))
        # (a few overwrites land in bytes that decode anyway: those parse, which is fine)


# ----------------------------------------------------------------------------- custom files


def custom_spec(path: Path, **extra) -> dict:
    return {"path": str(path), "columns": COLUMNS, **extra}


def _custom_file(tmp_path: Path, kind: str) -> Path:
    if kind == "csv":
        return write_delimited(tmp_path / "log.csv", CUSTOM_HEADER, CUSTOM_ROWS, ",")
    if kind == "tsv":
        return write_delimited(tmp_path / "log.tsv", CUSTOM_HEADER, CUSTOM_ROWS, "\t")
    cols = {name: [r[k] for r in CUSTOM_ROWS] for k, name in enumerate(CUSTOM_HEADER)}
    return write_parquet_table(tmp_path / "log.parquet", cols)


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet"])
def test_parse_custom(tmp_path, kind):
    assert_canonical(parse_custom(_custom_file(tmp_path, kind), COLUMNS), CUSTOM_EXPECTED)


def test_parse_custom_gzipped_csv(tmp_path):
    plain = _custom_file(tmp_path, "csv")
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    assert_canonical(parse_custom(path, COLUMNS), CUSTOM_EXPECTED)


def test_parse_custom_integer_ids_stay_integers(tmp_path):
    path = write_delimited(tmp_path / "log.csv", ["u", "i", "t"], [(1, 20, 5), (2, 21, 6)], ",")
    df = parse_custom(path, {"user": "u", "item": "i", "timestamp": "t"})
    assert_canonical(df, [(1, 20, 5), (2, 21, 6)])


@pytest.mark.parametrize("times", [
    ("2020-01-01T00:00:00", "2020-01-01T00:01:00", "2021-06-15T12:30:45"),
    # 'Z' and '+01:00' are honoured (converted to UTC), not turned into dropped rows
    ("2020-01-01T00:00:00Z", "2020-01-01T01:01:00+01:00", "2021-06-15T10:30:45-02:00"),
], ids=["naive", "offsets"])
def test_parse_custom_iso_datetime_strings(tmp_path, times):
    rows = list(zip(["v1", "v1", "v2"], ["p10", "p11", "p10"], times))
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    assert_canonical(parse_custom(path, COLUMNS), [
        ("v1", "p10", 1_577_836_800),
        ("v1", "p11", 1_577_836_860),
        ("v2", "p10", 1_623_760_245),
    ])


def test_parse_custom_unparseable_datetime_is_an_error(tmp_path):
    """A timestamp that does not parse stops the run; it is not silently dropped."""
    rows = [("v1", "p10", "2020-01-01T00:00:00"), ("v2", "p11", "last tuesday"),
            ("v2", "p12", "2020-01-02")]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    assert_names(info.value, str(path), "event_time", "'last tuesday' <-", "1 of 3 rows",
                 "ISO 8601", "on_invalid: drop")
    assert "2020-01-02" not in str(info.value)  # only the cell that does not parse is quoted


def test_parse_custom_parquet_datetime_column(tmp_path):
    times = [dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1, 0, 1), dt.datetime(2021, 6, 15, 12, 30, 45)]
    path = write_parquet_table(
        tmp_path / "log.parquet",
        {"visitor_id": ["v1", "v1", "v2"], "product": ["p10", "p11", "p10"], "event_time": times},
        {"event_time": pa.timestamp("ms")},
    )
    assert_canonical(parse_custom(path, COLUMNS), [
        ("v1", "p10", 1_577_836_800),
        ("v1", "p11", 1_577_836_860),
        ("v2", "p10", 1_623_760_245),
    ])


MISSING_ROWS = [("v1", "p10", 5), (None, "p11", 6), ("v2", None, 7), ("v3", "p12", None),
                ("v4", "p13", 8)]


def test_rows_with_missing_values_stop_prepare(tmp_path):
    """A missing user, item or timestamp is an error naming the rows, not a dropped row."""
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"],
                           MISSING_ROWS, ",")
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    assert_names(info.value, "shop", str(path), "3 of 5 rows",
                 "user (column 'visitor_id') in 1", "item (column 'product') in 1",
                 "timestamp (column 'event_time') in 1", "first data row",
                 "row 2: visitor_id=(empty) <-, product='p11', event_time='6'",
                 "row 3: visitor_id='v2', product=(empty) <-",
                 "row 4: visitor_id='v3', product='p12', event_time=(empty) <-",
                 "`on_invalid: drop` to datasets.shop")
    assert "row 1:" not in str(info.value) and "row 5:" not in str(info.value)


def test_on_invalid_drop_drops_and_counts_them(tmp_path):
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"],
                           MISSING_ROWS, ",")
    df, report = prepare("shop", custom_spec(path, on_invalid="drop"), path)
    assert_canonical(df, [("v1", "p10", 5), ("v4", "p13", 8)])
    assert report == {"rows": 5, "invalid_rows": 3, "on_invalid": "drop", "dropped_invalid": 3,
                      "duplicate_rows": 0, "duplicates": "keep", "dropped_duplicates": 0,
                      "interactions": 2}


def _epoch_log(n: int) -> list[tuple]:
    """n rows (user, item, integer epoch seconds), every value valid."""
    return [(f"u{k % 97}", f"i{k % 89}", 1_684_090_000 + 5 * k) for k in range(n)]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_nan_timestamps_are_named_or_dropped_exactly(tmp_path, kind):
    """A log with 30 % of its timestamps NaN (pandas writes them as empty csv cells, parquet
    keeps the float NaN): prepare stops, naming the count; with on_invalid: drop exactly those
    rows go, and the report says so."""
    import numpy as np
    import pandas as pd

    rows = _epoch_log(1000)
    frame = pd.DataFrame(rows, columns=["visitor_id", "product", "event_time"], dtype=object)
    frame["event_time"] = frame["event_time"].astype(float)
    nan = np.random.default_rng(0).random(len(frame)) < 0.3
    frame.loc[nan, "event_time"] = np.nan
    path = tmp_path / f"log.{kind}"
    frame.to_csv(path, index=False) if kind == "csv" else frame.to_parquet(path, index=False)
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    first = int(np.flatnonzero(nan)[0]) + 1
    assert_names(info.value, f"{nan.sum():,} of 1,000 rows", f"row {first}: ",
                 f"in {nan.sum():,}.", "on_invalid: drop")
    assert str(info.value).count("\n  row ") == 5  # five rows shown, not all of them
    df, report = prepare("shop", custom_spec(path, on_invalid="drop"), path)
    assert report["dropped_invalid"] == report["invalid_rows"] == nan.sum()
    assert df.height == report["interactions"] == 1000 - nan.sum()
    assert df["timestamp"].to_list() == [t for (_, _, t), bad in zip(rows, nan) if not bad]


@pytest.mark.parametrize("late", [3, 12_001])
def test_text_cells_in_an_epoch_column_are_the_ones_named(tmp_path, late):
    """Two text cells among 12,500 integer epoch seconds, one early and one early or past row
    10,000: exactly those two are named, with their values, whatever their position; no valid
    value is quoted, and the column is read as numbers (the kind most of its cells have)."""
    rows = _epoch_log(12_500)
    rows[2] = (*rows[2][:2], "n/a")
    rows[late - 1] = (*rows[late - 1][:2], "yesterday")
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    msg = str(info.value)
    named = "row 3: visitor_id='u2', product='i2', event_time='n/a' <-" if late != 3 else ""
    assert_names(info.value, f"{1 if late == 3 else 2} of 12,500 rows", "a number (epoch time",
                 f"row {late:,}: visitor_id=", "event_time='yesterday' <-", named)
    assert msg.count("\n  row ") == (1 if late == 3 else 2)
    assert str(rows[0][2]) not in msg
    df, report = prepare("shop", custom_spec(path, on_invalid="drop"), path)
    assert report["dropped_invalid"] == (1 if late == 3 else 2) and df.height == 12_500 - (
        1 if late == 3 else 2)


def test_timestamps_follow_one_rule_for_the_whole_column(tmp_path):
    """ISO 8601 in several shapes (a date alone first, then minutes, seconds, fractions and
    offsets) all parse: the format is never taken from the first rows. Decimal epoch seconds are
    cut to their whole part."""
    iso = [("a", "x", "2020-01-01"), ("a", "y", "2020-01-01 00:01"),
           ("b", "x", "2020-01-01T00:00:30"), ("b", "y", "2020-01-01T00:00:30.250Z"),
           ("c", "x", "2020-01-01T02:00:00+02:00"), ("c", "y", " 2020-01-01T00:02:00+0000 ")]
    path = write_delimited(tmp_path / "iso.csv", ["visitor_id", "product", "event_time"], iso, ",")
    df, _ = prepare("iso", custom_spec(path), path)
    t0 = 1_577_836_800
    assert df["timestamp"].to_list() == [t0, t0 + 60, t0 + 30, t0 + 30, t0, t0 + 120]
    epoch = [("a", "x", "1684090495.7"), ("a", "y", "1684090496"), ("b", "x", "+1684090497")]
    path = write_delimited(tmp_path / "epoch.csv", ["visitor_id", "product", "event_time"], epoch,
                           ",")
    df, _ = prepare("epoch", custom_spec(path), path)
    assert df["timestamp"].to_list() == [1684090495, 1684090496, 1684090497]


def test_an_epoch_value_in_an_iso_column_is_named(tmp_path):
    rows = [("a", "x", "2020-01-01"), ("a", "y", "2020-01-02"), ("b", "x", "1577836800")]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    assert_names(info.value, "1 of 3 rows", "an ISO 8601 date", "row 3:", "'1577836800' <-")


def test_text_ids_never_merge(tmp_path):
    """Blanks around an id are not part of it; '007' and '7' are two ids (the column stays text),
    and plain integer ids become integers."""
    rows = [("007", " 5", 1), ("7 ", "6", 2), ("7", "5 ", 3)]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    df, _ = prepare("shop", custom_spec(path), path)
    assert df.schema["user"] == pl.Utf8 and df.schema["item"] == pl.Int64
    assert df.rows() == [("007", 5, 1), ("7", 6, 2), ("7", 5, 3)]


@pytest.mark.parametrize("policy, kept", [("keep", 2), ("drop", 1)])
def test_duplicates_are_counted_and_kept_or_dropped(tmp_path, policy, kept):
    """The whole file twice: every row of the second copy repeats one of the first; the count
    is reported either way, and duplicates: drop keeps the first of each."""
    rows = _epoch_log(50)
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"],
                           rows + rows, ",")
    df, report = prepare("shop", custom_spec(path, duplicates=policy), path)
    assert report["duplicate_rows"] == 50 and report["duplicates"] == policy
    assert report["dropped_duplicates"] == (50 if policy == "drop" else 0)
    assert df.height == report["interactions"] == 50 * kept
    assert df.rows()[:50] == [(u, i, t) for u, i, t in rows]


def test_duplicates_default_is_keep(tmp_path):
    rows = [("a", "x", 1), ("a", "x", 1), ("a", "x", 2)]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    df, report = prepare("shop", custom_spec(path), path)
    assert df.height == 3 and report["duplicate_rows"] == 1 and report["duplicates"] == "keep"


@pytest.mark.parametrize("seed", range(5))
def test_duplicate_count_is_exact(seed):
    """The sort-based count equals polars' distinct-row count, text and integer columns, repeats
    of one row several times, rows equal in two of three columns."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = 2_000
    df = pl.DataFrame({"user": rng.integers(0, 30, n).astype(str), "item": rng.integers(0, 20, n),
                       "timestamp": rng.integers(0, 5, n)})
    expected = df.height - df.n_unique()
    assert expected > 0 and count_duplicates(df) == expected
    assert count_duplicates(df.unique()) == 0 and count_duplicates(df.head(1)) == 0


@pytest.mark.parametrize("key", ["on_invalid", "duplicates"])
def test_row_policies_refuse_unknown_values(tmp_path, key):
    path = _custom_file(tmp_path, "csv")
    with pytest.raises(ConfigError, match=f"datasets.shop.{key}: 'sometimes'"):
        prepare("shop", custom_spec(path, **{key: "sometimes"}), path)


def test_movielens_line_with_a_text_field_is_named(tmp_path):
    ratings = [*ML1M_RATINGS[:3], (4, "x12", 5, 978300000), *ML1M_RATINGS[3:]]
    path = write_ml1m_zip(tmp_path / "ml-1m.zip", ratings)
    with pytest.raises(DataError) as info:
        prepare("ml-1m", _ml_spec(), path)
    assert_names(info.value, "1 of 8 rows", "item (column 'MovieID') in 1",
                 "row 4: UserID='4', MovieID='x12' <-", "first line of ratings.dat")


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet"])
@pytest.mark.parametrize("role", ["user", "item", "timestamp"])
def test_parse_custom_missing_column(tmp_path, kind, role):
    path = _custom_file(tmp_path, kind)
    columns = dict(COLUMNS, **{role: "no_such_column"})
    with pytest.raises(DataError) as info:
        parse_custom(path, columns)
    assert_names(info.value, str(path), "no_such_column")


@pytest.mark.parametrize("kind", ["csv", "tsv"])
def test_parse_custom_all_empty_rows(tmp_path, kind):
    sep = "," if kind == "csv" else "\t"
    rows = [(None, None, None)] * 3
    path = write_delimited(tmp_path / f"log.{kind}", ["visitor_id", "product", "event_time"], rows, sep)
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    assert_names(info.value, str(path), "3 of 3 rows")
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path, on_invalid="drop"), path)
    assert_names(info.value, str(path), "no usable")


def test_parse_custom_header_only(tmp_path):
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], [], ",")
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    assert_names(info.value, str(path), "no usable")


def test_parse_custom_all_null_parquet(tmp_path):
    path = write_parquet_table(
        tmp_path / "log.parquet",
        {"visitor_id": ["v1", None], "product": [None, "p2"], "event_time": [None, None]},
        {"visitor_id": pa.string(), "product": pa.string(), "event_time": pa.int64()},
    )
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path), path)
    assert_names(info.value, str(path), "2 of 2 rows", "row 1: visitor_id='v1', product=(empty) <-",
                 "first row of the parquet file")
    with pytest.raises(DataError) as info:
        prepare("shop", custom_spec(path, on_invalid="drop"), path)
    assert_names(info.value, str(path), "no usable")


def test_parse_yambda_all_null(tmp_path):
    path = write_parquet_table(
        tmp_path / "likes.parquet",
        {"uid": [None, None], "timestamp": [None, None], "item_id": [None, None], "is_organic": [1, 0]},
        {"uid": pa.uint32(), "timestamp": pa.uint32(), "item_id": pa.uint32(), "is_organic": pa.uint8()},
    )
    with pytest.raises(DataError) as info:
        prepare("likes", {"source": "yambda"}, path)
    assert_names(info.value, str(path), "2 of 2 rows", "uid=(empty) <-")


def test_read_table_unknown_type_and_missing_file(tmp_path):
    path = tmp_path / "log.xlsx"
    path.write_text("x")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert_names(info.value, str(path), ".xlsx")
    missing = tmp_path / "absent.csv"
    with pytest.raises(DataError) as info:
        read_table(missing)
    assert_names(info.value, str(missing))


# ----------------------------------------------------------------------------- registry


def test_source_of_unknown_source():
    with pytest.raises(ConfigError) as info:
        source_of("mydata", {"source": "netflix-prize"})
    assert_names(info.value, "datasets.mydata", "netflix-prize")


def test_source_of_no_source_and_no_path():
    with pytest.raises(ConfigError) as info:
        source_of("mydata", {"expected": {"users": 3}})
    assert_names(info.value, "datasets.mydata")


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "log.csv"},
        {"source": "custom", "path": "log.csv"},
        {"path": "log.csv", "columns": {"user": "u", "item": "i"}},
        {"path": "log.csv", "columns": ["u", "i", "t"]},
        {"source": "custom", "columns": {"user": "u", "item": "i", "timestamp": "t"}},
    ],
)
def test_source_of_custom_needs_path_and_columns(spec):
    with pytest.raises(ConfigError) as info:
        source_of("mydata", spec)
    assert_names(info.value, "datasets.mydata", "columns")


def test_source_of_path_means_custom():
    source = source_of("mydata", {"path": "log.csv", "columns": {"user": "u", "item": "i", "timestamp": "t"}})
    assert source.name == "custom" and source.remote is None


def test_amazon_needs_a_category():
    source = source_of("beauty", {"source": "amazon-2014"})
    with pytest.raises(ConfigError, match="category"):
        source.remote({"source": "amazon-2014"})


def test_remote_defaults():
    ml = source_of("ml-1m", {"source": "movielens-1m"}).remote({"source": "movielens-1m"})
    assert (ml.url, ml.filename, ml.fmt) == (MOVIELENS_1M_URL, "ml-1m.zip", "zip")
    assert ml.md5 == "c4d9eecfca2ab87c1945afe126590906" and ml.size == 5_917_549

    spec = {"source": "amazon-2014", "category": "Sports_and_Outdoors"}
    az = source_of("sports", spec).remote(spec)
    assert az.url == AMAZON_URL.format(category="Sports_and_Outdoors")
    assert az.url.endswith("/reviews_Sports_and_Outdoors_5.json.gz")
    assert (az.filename, az.fmt, az.md5, az.size) == ("reviews_Sports_and_Outdoors_5.json.gz", "gzip", None, None)

    spec = {"source": "yambda", "size_variant": "50m", "event": "likes", "revision": "abc123"}
    ya = source_of("yambda", spec).remote(spec)
    assert ya.url == "https://huggingface.co/datasets/yandex/yambda/resolve/abc123/flat/50m/likes.parquet"
    assert (ya.filename, ya.fmt, ya.size) == ("yambda_50m_likes.parquet", "parquet", None)


# ----------------------------------------------------------------------------- prepare()


def _ml_spec(**extra) -> dict:
    return {"source": "movielens-1m", **extra}


ML1M_COUNTS = {"users": 3, "items": 6, "interactions": len(ML1M_RATINGS)}


def test_prepare_expected_counts_match(tmp_path):
    path = write_ml1m_zip(tmp_path / "ml-1m.zip")
    df, _ = prepare("ml-1m", _ml_spec(expected=ML1M_COUNTS), path)
    assert_canonical(df, ML1M_EXPECTED)
    assert dataset_counts(df) == ML1M_COUNTS


def test_prepare_partial_expected_counts(tmp_path):
    path = write_ml1m_zip(tmp_path / "ml-1m.zip")
    prepare("ml-1m", _ml_spec(expected={"interactions": len(ML1M_RATINGS)}), path)


@pytest.mark.parametrize("key", ["users", "items", "interactions"])
def test_prepare_expected_counts_differ(tmp_path, key):
    path = write_ml1m_zip(tmp_path / "ml-1m.zip")
    expected = dict(ML1M_COUNTS, **{key: ML1M_COUNTS[key] + 1})
    with pytest.raises(DataError) as info:
        prepare("my-ml", _ml_spec(expected=expected), path)
    assert_names(info.value, "my-ml", str(path), key, f"expected {ML1M_COUNTS[key] + 1:,}")


def test_prepare_custom_dataset(tmp_path):
    path = _custom_file(tmp_path, "tsv")
    spec = {"path": str(path), "columns": COLUMNS, "expected": {"users": 3, "items": 3, "interactions": 4}}
    df, report = prepare("shop", spec, path)
    assert_canonical(df, CUSTOM_EXPECTED)
    assert report["rows"] == report["interactions"] == 4 and report["invalid_rows"] == 0


def test_prepare_missing_raw_file(tmp_path):
    path = tmp_path / "raw" / "ml-1m.zip"
    with pytest.raises(DataError) as info:
        prepare("my-ml", _ml_spec(), path)
    assert_names(info.value, "my-ml", str(path))


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def server():
    with loopback_server() as srv:
        yield srv


def _fetch_and_prepare(name: str, spec: dict, raw_root: Path) -> pl.DataFrame:
    """What the fetch_raw and prepare rules do for one dataset."""
    source = source_of(name, spec)
    remote = source.remote(spec)
    raw = raw_root / name / remote.filename
    download(remote.url, raw, md5=remote.md5, size=remote.size, fmt=remote.fmt, progress=False)
    assert raw.exists() and sorted(p.name for p in raw.parent.iterdir()) == [remote.filename]
    return prepare(name, spec, raw)[0]


def test_end_to_end_movielens(server, tmp_path):
    f = write_ml1m_zip(tmp_path / "src" / "ml-1m.zip")
    spec = {
        "source": "movielens-1m",
        "url": server.serve("/datasets/movielens/ml-1m.zip", f),
        "md5": md5_of(f),
        "size": f.stat().st_size,
        "expected": ML1M_COUNTS,
    }
    df = _fetch_and_prepare("ml-1m", spec, tmp_path / "raw")
    assert_canonical(df, ML1M_EXPECTED)


def test_end_to_end_movielens_default_checksum_refuses_other_file(server, tmp_path):
    """Without md5/size overrides, the real release's size and md5 guard the download."""
    f = write_ml1m_zip(tmp_path / "src" / "ml-1m.zip")
    url = server.serve("/datasets/movielens/ml-1m.zip", f)
    with pytest.raises(DownloadError) as info:
        _fetch_and_prepare("ml-1m", {"source": "movielens-1m", "url": url}, tmp_path / "raw")
    assert_names(info.value, url, "5,917,549")
    folder = tmp_path / "raw" / "ml-1m"
    assert not folder.exists() or list(folder.iterdir()) == []

    with pytest.raises(DownloadError) as info:
        _fetch_and_prepare("ml-1m", {"source": "movielens-1m", "url": url, "size": f.stat().st_size},
                           tmp_path / "raw")
    assert_names(info.value, url, "c4d9eecfca2ab87c1945afe126590906")
    assert not folder.exists() or list(folder.iterdir()) == []


def test_end_to_end_amazon(server, tmp_path):
    f = write_amazon_2014(tmp_path / "src" / amazon_filename("Beauty"))
    spec = {
        "source": "amazon-2014",
        "category": "Beauty",
        "url": server.serve("/categoryFiles/reviews_Beauty_5.json.gz", f),
        "expected": {"users": 3, "items": 3, "interactions": len(AMAZON_REVIEWS)},
    }
    df = _fetch_and_prepare("beauty", spec, tmp_path / "raw")
    assert (tmp_path / "raw" / "beauty" / "reviews_Beauty_5.json.gz").read_bytes() == f.read_bytes()
    assert_canonical(df, AMAZON_EXPECTED)


def test_end_to_end_yambda(server, tmp_path):
    f = write_yambda(tmp_path / "src" / "likes.parquet")
    spec = {
        "source": "yambda",
        "size_variant": "50m",
        "event": "likes",
        "url": server.serve("/flat/50m/likes.parquet", f),
        "md5": md5_of(f),
        "expected": {"users": 3, "items": 4, "interactions": 5},
        "check_release": False,  # five rows, not the release's 881,456
    }
    df = _fetch_and_prepare("yambda-50m-likes", spec, tmp_path / "raw")
    assert (tmp_path / "raw" / "yambda-50m-likes" / "yambda_50m_likes.parquet").exists()
    assert_canonical(df, YAMBDA_EXPECTED)


def test_end_to_end_counts_mismatch_names_dataset(server, tmp_path):
    f = write_yambda(tmp_path / "src" / "likes.parquet")
    spec = {
        "source": "yambda",
        "url": server.serve("/flat/50m/likes.parquet", f),
        "expected": {"users": 8283, "items": 181304, "interactions": 881456},
    }
    with pytest.raises(DataError) as info:
        _fetch_and_prepare("yambda-50m-likes", spec, tmp_path / "raw")
    assert_names(info.value, "yambda-50m-likes", "expected 8,283, got 3")
