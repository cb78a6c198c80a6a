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
from recbench.data.prepare import dataset_counts, prepare
from recbench.data.sources import (
    AMAZON_URL,
    MOVIELENS_1M_URL,
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


def assert_canonical(df: pl.DataFrame, expected_rows: list[tuple]) -> None:
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
    assert df.schema["user"] == pl.Int64 and df.schema["item"] == pl.Int64


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
    assert df.schema["user"] == pl.Utf8 and df.schema["item"] == pl.Utf8


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


def test_parse_custom_iso_datetime_strings(tmp_path):
    rows = [
        ("v1", "p10", "2020-01-01T00:00:00"),
        ("v1", "p11", "2020-01-01T00:01:00"),
        ("v2", "p10", "2021-06-15T12:30:45"),
    ]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    df = parse_custom(path, COLUMNS)
    assert_canonical(df, [
        ("v1", "p10", 1_577_836_800),
        ("v1", "p11", 1_577_836_860),
        ("v2", "p10", 1_623_760_245),
    ])


def test_parse_custom_iso_datetime_with_offsets(tmp_path):
    """'Z' and '+01:00' are honoured (converted to UTC), not turned into dropped rows."""
    rows = [
        ("v1", "p10", "2020-01-01T00:00:00Z"),
        ("v1", "p11", "2020-01-01T01:01:00+01:00"),
        ("v2", "p10", "2021-06-15T10:30:45-02:00"),
    ]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    assert_canonical(parse_custom(path, COLUMNS), [
        ("v1", "p10", 1_577_836_800),
        ("v1", "p11", 1_577_836_860),
        ("v2", "p10", 1_623_760_245),
    ])


def test_parse_custom_unparseable_datetime_is_an_error(tmp_path):
    """A timestamp that does not parse stops the run; it is not silently dropped."""
    rows = [("v1", "p10", "2020-01-01T00:00:00"), ("v2", "p11", "last tuesday")]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    with pytest.raises(DataError) as info:
        parse_custom(path, COLUMNS)
    assert_names(info.value, str(path), "event_time", "last tuesday")


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


def test_parse_custom_drops_rows_with_missing_values(tmp_path):
    rows = [("v1", "p10", 5), (None, "p11", 6), ("v2", None, 7), ("v3", "p12", None), ("v4", "p13", 8)]
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], rows, ",")
    assert_canonical(parse_custom(path, COLUMNS), [("v1", "p10", 5), ("v4", "p13", 8)])


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
        parse_custom(path, COLUMNS)
    assert_names(info.value, str(path), "no usable")


def test_parse_custom_header_only(tmp_path):
    path = write_delimited(tmp_path / "log.csv", ["visitor_id", "product", "event_time"], [], ",")
    with pytest.raises(DataError) as info:
        parse_custom(path, COLUMNS)
    assert_names(info.value, str(path))


def test_parse_custom_all_null_parquet(tmp_path):
    path = write_parquet_table(
        tmp_path / "log.parquet",
        {"visitor_id": ["v1", None], "product": [None, "p2"], "event_time": [None, None]},
        {"visitor_id": pa.string(), "product": pa.string(), "event_time": pa.int64()},
    )
    with pytest.raises(DataError) as info:
        parse_custom(path, COLUMNS)
    assert_names(info.value, str(path), "no usable")


def test_parse_yambda_all_null(tmp_path):
    path = write_parquet_table(
        tmp_path / "likes.parquet",
        {"uid": [None, None], "timestamp": [None, None], "item_id": [None, None], "is_organic": [1, 0]},
        {"uid": pa.uint32(), "timestamp": pa.uint32(), "item_id": pa.uint32(), "is_organic": pa.uint8()},
    )
    with pytest.raises(DataError) as info:
        parse_yambda(path)
    assert_names(info.value, str(path), "no usable")


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
    df = prepare("ml-1m", _ml_spec(expected=ML1M_COUNTS), path)
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
    assert_canonical(prepare("shop", spec, path), CUSTOM_EXPECTED)


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
    return prepare(name, spec, raw)


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
