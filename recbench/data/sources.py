"""Where each dataset comes from and how its raw format becomes one canonical log.

A source knows its default URL (overridable in config), how to verify the raw file, and how to
parse it into a polars frame with exactly three columns: ``user``, ``item``, ``timestamp``
(int64 seconds, or the source's own time unit). Every raw format is parsed once, here.

Sources:
- ``movielens-1m``: the GroupLens zip, ``ml-1m/ratings.dat`` (``UserID::MovieID::Rating::Timestamp``).
- ``amazon-2014``: McAuley's 2014 5-core review files, JSON lines with reviewerID, asin, overall,
  unixReviewTime (gzip).
- ``yambda``: Yandex's Yambda ``flat/<size>/<event>.parquet`` with uid, item_id, timestamp,
  is_organic.
- ``synthetic``: the embedded generator (no download).
- ``custom``: a local csv/tsv/parquet file with a column mapping.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl
from polars.exceptions import PanicException

from recbench.errors import ConfigError, DataError

CANONICAL = ("user", "item", "timestamp")


@dataclass(frozen=True)
class RemoteFile:
    url: str
    filename: str
    fmt: str | None
    md5: str | None = None
    size: int | None = None


# ----------------------------------------------------------------------------- parsers


def _require_columns(df: pl.DataFrame, needed: list[str], path: Path) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {df.columns}. The file is not in the "
            "expected format: re-download it, or fix the column mapping in the config."
        )


def _finish(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Cast, drop rows with missing values, and refuse an empty result."""
    df = df.select(
        pl.col("user"), pl.col("item"), pl.col("timestamp").cast(pl.Int64, strict=False)
    ).drop_nulls()
    if df.height == 0:
        raise DataError(f"{path}: no usable (user, item, timestamp) rows after parsing.")
    return df


def parse_movielens_1m(path: Path) -> pl.DataFrame:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith("ratings.dat")]
            if not names:
                raise DataError(
                    f"{path}: no ratings.dat inside the zip (members: {zf.namelist()[:10]}). "
                    "This is not the ML-1M archive: delete it and download again."
                )
            raw = zf.read(names[0])
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a zip archive ({exc}). Delete it and download again.") from exc
    # "1::1193::5::978300760" split on ':' gives fields 0, 2, 4, 6. Fields are taken by position:
    # polars names headerless columns column_1.. in some versions and column_0.. in others.
    df = pl.read_csv(
        io.BytesIO(raw), separator=":", has_header=False, encoding="utf8-lossy",
        infer_schema_length=0,  # every field as a string; cast below
    )
    if df.width != 7:
        raise DataError(f"{path}: ratings.dat is not '::'-separated with 4 fields per line.")
    df = df.select(
        pl.nth(0).cast(pl.Int64).alias("user"),
        pl.nth(2).cast(pl.Int64).alias("item"),
        pl.nth(6).cast(pl.Int64).alias("timestamp"),
    )
    return _finish(df, path)


def _read_json_lines(raw: bytes, path: Path) -> pl.DataFrame:
    try:
        return pl.read_ndjson(io.BytesIO(raw), infer_schema_length=None)
    except Exception:  # noqa: BLE001 - older Amazon dumps are Python literals, one per line
        rows = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                try:
                    rec = ast.literal_eval(line.decode("utf8"))
                except (ValueError, SyntaxError) as exc:
                    raise DataError(f"{path}: line {n} is neither JSON nor a Python literal.") from exc
            rows.append({k: rec.get(k) for k in ("reviewerID", "asin", "unixReviewTime")})
        return pl.DataFrame(rows)


def parse_amazon_2014(path: Path) -> pl.DataFrame:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}). Delete it and download again.") from exc
    df = _read_json_lines(raw, path)
    _require_columns(df, ["reviewerID", "asin", "unixReviewTime"], path)
    df = df.select(
        pl.col("reviewerID").cast(pl.Utf8).alias("user"),
        pl.col("asin").cast(pl.Utf8).alias("item"),
        pl.col("unixReviewTime").alias("timestamp"),
    )
    return _finish(df, path)


def parse_yambda(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_parquet(path)
    except (Exception, PanicException) as exc:  # noqa: BLE001 - a corrupt page can panic polars
        raise DataError(f"{path}: not a readable parquet file ({exc}). Delete it and download again.") from exc
    _require_columns(df, ["uid", "item_id", "timestamp"], path)
    df = df.select(
        pl.col("uid").alias("user"), pl.col("item_id").alias("item"), pl.col("timestamp")
    )
    return _finish(df, path)


def read_table(path: Path) -> pl.DataFrame:
    """Read a local csv, tsv or parquet file, choosing the reader by extension."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist. Check the dataset's `path:` in the config.")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".csv.gz"):
            return pl.read_csv(path, infer_schema_length=10000)
        if suffix in (".tsv", ".tsv.gz", ".inter", ".txt"):
            return pl.read_csv(path, separator="\t", infer_schema_length=10000)
    except (Exception, PanicException) as exc:  # noqa: BLE001 - a corrupt page can panic polars
        raise DataError(f"{path}: could not be read as {suffix} ({exc}).") from exc
    raise DataError(
        f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .parquet (optionally .gz for text)."
    )


def parse_custom(path: Path, columns: dict[str, str]) -> pl.DataFrame:
    df = read_table(path)
    needed = [columns[k] for k in CANONICAL]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {missing} named in the config's `columns:` are not in the file "
            f"(it has {df.columns}). Fix `columns: {{user:, item:, timestamp:}}` for this dataset."
        )
    df = df.select(*(pl.col(columns[k]).alias(k) for k in CANONICAL))
    if df.schema["timestamp"] in (pl.Datetime, pl.Date) or isinstance(df.schema["timestamp"], pl.Datetime):
        df = df.with_columns(pl.col("timestamp").dt.epoch("s"))
    elif df.schema["timestamp"] == pl.Utf8:
        # time_zone: strings with an offset ("Z", "+01:00") become null without one; naive
        # strings are read as UTC, as before. A value that does not parse is an error, not a
        # silently dropped row.
        parsed = pl.col("timestamp").str.to_datetime(strict=False, time_zone="UTC")
        bad = df.filter(pl.col("timestamp").is_not_null() & parsed.is_null())["timestamp"]
        if len(bad):
            raise DataError(
                f"{path}: {len(bad):,} value(s) of the timestamp column {columns['timestamp']!r} "
                f"do not parse as datetimes (e.g. {bad[0]!r}). Write them in one ISO 8601 format "
                "throughout, or as integer epoch seconds."
            )
        df = df.with_columns(parsed.dt.epoch("s"))
    return _finish(df, path)


# ----------------------------------------------------------------------------- registry

AMAZON_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_{category}_5.json.gz"
MOVIELENS_1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
YAMBDA_URL = "https://huggingface.co/datasets/yandex/yambda/resolve/{revision}/flat/{size}/{event}.parquet"


@dataclass(frozen=True)
class Source:
    name: str
    remote: Callable[[dict], RemoteFile] | None  # None: nothing to download
    parse: Callable[[Path, dict], pl.DataFrame]


def _movielens_remote(spec: dict) -> RemoteFile:
    return RemoteFile(
        url=spec.get("url", MOVIELENS_1M_URL),
        filename="ml-1m.zip",
        fmt="zip",
        md5=spec.get("md5", "c4d9eecfca2ab87c1945afe126590906"),
        size=spec.get("size", 5_917_549),
    )


def _amazon_remote(spec: dict) -> RemoteFile:
    if "category" not in spec:
        raise ConfigError("amazon-2014 dataset needs `category:` (e.g. Beauty, Sports_and_Outdoors)")
    cat = spec["category"]
    return RemoteFile(
        url=spec.get("url", AMAZON_URL.format(category=cat)),
        filename=f"reviews_{cat}_5.json.gz",
        fmt="gzip",
        md5=spec.get("md5"),
        size=spec.get("size"),
    )


def _yambda_remote(spec: dict) -> RemoteFile:
    size, event = spec.get("size_variant", "50m"), spec.get("event", "likes")
    revision = spec.get("revision", "main")
    return RemoteFile(
        url=spec.get("url", YAMBDA_URL.format(revision=revision, size=size, event=event)),
        filename=f"yambda_{size}_{event}.parquet",
        fmt="parquet",
        md5=spec.get("md5"),
        size=spec.get("size"),
    )


SOURCES: dict[str, Source] = {
    "movielens-1m": Source("movielens-1m", _movielens_remote, lambda p, s: parse_movielens_1m(p)),
    "amazon-2014": Source("amazon-2014", _amazon_remote, lambda p, s: parse_amazon_2014(p)),
    "yambda": Source("yambda", _yambda_remote, lambda p, s: parse_yambda(p)),
    "synthetic": Source("synthetic", None, lambda p, s: _finish(pl.read_parquet(p), p)),
    "custom": Source("custom", None, lambda p, s: parse_custom(p, s["columns"])),
}


def source_of(name: str, spec: dict) -> Source:
    """The Source of a dataset entry; a ``path:`` entry without ``source:`` is a custom file."""
    kind = spec.get("source", "custom" if "path" in spec else None)
    if kind not in SOURCES:
        raise ConfigError(
            f"datasets.{name}: unknown source {kind!r}; use one of {sorted(SOURCES)}, or give "
            "`path:` and `columns: {user:, item:, timestamp:}` for a local file."
        )
    if kind == "custom":
        cols = spec.get("columns")
        if "path" not in spec or not isinstance(cols, dict) or set(CANONICAL) - set(cols):
            raise ConfigError(
                f"datasets.{name}: a custom dataset needs `path:` and "
                "`columns: {user: <col>, item: <col>, timestamp: <col>}`."
            )
    return SOURCES[kind]
