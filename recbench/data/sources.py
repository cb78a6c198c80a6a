"""Where each dataset comes from and how its raw format becomes one canonical log.

A source knows its default URL (overridable in config), how to verify the raw file, and how to
parse it, row for row, into a ``Parsed``: a polars frame with exactly three columns, ``user``,
``item``, ``timestamp`` (int64 seconds, or the source's own time unit), null where the file's
value is missing or does not parse, beside the raw values. Every raw format is parsed once, here;
``recbench.data.prepare`` then accounts for every row (refuses or drops the unusable ones,
counts duplicates). Text is read whole as text and each column parsed by one rule for the whole
column (``_text_ids``, ``_text_timestamps``), never by a type guessed from its first rows.

Sources:
- ``movielens-1m``: the GroupLens zip, ``ml-1m/ratings.dat`` (``UserID::MovieID::Rating::Timestamp``).
- ``amazon-2014``: McAuley's 2014 5-core review files, JSON lines with reviewerID, asin, overall,
  unixReviewTime (gzip).
- ``yambda``: Yandex's Yambda ``flat/<size>/<event>.parquet`` (uid, item_id, timestamp,
  is_organic; listens and multi_event also played_ratio_pct, multi_event event_type), any release
  (``size_variant``: 50m, 500m, 5b) and event file; read lazily (``scan_yambda``), so ``prepare``
  streams it instead of loading it.
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
import pyarrow.parquet as pq
from polars.exceptions import PanicException

from recbench.errors import ConfigError, DataError

CANONICAL = ("user", "item", "timestamp")
#: the keys of a dataset entry that decide its raw file (downloaded or generated) ...
RAW_KEYS = ("source", "url", "md5", "size", "category", "size_variant", "event", "revision",
            "params", "path")
#: ... and how it is parsed into the canonical log
PARSE_KEYS = ("source", "path", "columns", "on_invalid", "duplicates", "expected",
              "min_played_ratio", "event_types", "check_release")


@dataclass(frozen=True)
class RemoteFile:
    url: str
    filename: str
    fmt: str | None
    md5: str | None = None
    size: int | None = None


# ----------------------------------------------------------------------------- parsers


@dataclass(frozen=True)
class Parsed:
    """A raw file read row for row, before any row is dropped (``prepare`` decides that).

    ``log``: the canonical columns user, item, timestamp, typed, null where the file's value is
    missing or does not parse; ``raw``: the same rows' values as the file has them (text, or the
    file's own types), for messages; ``columns``: the file's names of user, item and timestamp;
    ``timestamp_rule``: what a valid timestamp of this file is; ``rows``: how rows are numbered.
    """

    log: pl.DataFrame | pl.LazyFrame
    raw: pl.DataFrame | None
    columns: dict[str, str]
    timestamp_rule: str
    rows: str = "rows numbered from 1 at the first data row"
    #: a lazy source (``log`` a LazyFrame, ``raw`` None: its values are the canonical ones): the
    #: rows of the file, and an expression of the rows its event filter keeps (None: all)
    file_rows: int | None = None
    keep: pl.Expr | None = None
    keep_rule: str | None = None


def _require_columns(df: pl.DataFrame, needed: list[str], path: Path) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {df.columns}. The file is not in the "
            "expected format: re-download it, or fix the column mapping in the config."
        )


_INTEGER = r"^-?(0|[1-9][0-9]*)$"
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
#: ISO 8601 dates and date-times, after "T" became " ": seconds with an optional fraction and
#: offset ("Z", "+01:00", "+0100"), minutes, or the date alone. No offset: UTC.
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M%#z",
                 "%Y-%m-%d %H:%M", "%Y-%m-%d")
EPOCH_RULE = "a number (epoch time; a decimal is cut to its whole part)"
ISO_RULE = ("an ISO 8601 date or date-time (2024-05-01, 2024-05-01 12:30, "
            "2024-05-01T12:30:00.5+02:00; without an offset: UTC)")


def _text_ids(s: pl.Series, ids: str) -> pl.Series:
    """Ids as text, without surrounding blanks; an empty cell is missing. ``ids``: "text" keeps
    them text (the format says so), "integer" makes them Int64 (a value that is not one is
    missing), "infer" (a text file, whose columns have no types) makes a column Int64 if every
    value is a plain integer (no leading zero, so no two ids merge), else keeps it text."""
    s = s.str.strip_chars()
    s = s.set(s == "", None)
    if ids == "integer":
        return s.set(~s.str.contains(_INTEGER).fill_null(False), None).cast(pl.Int64, strict=False)
    values = s.drop_nulls()
    if ids == "infer" and len(values) and values.str.contains(_INTEGER).all():
        as_int = s.cast(pl.Int64, strict=False)
        if as_int.null_count() == s.null_count():  # no value too long for int64
            return as_int
    return s


def _text_timestamps(s: pl.Series) -> tuple[pl.Series, str]:
    """Timestamps read as text, the whole column by one rule: numbers (epoch time) if at least as
    many cells are numbers as are ISO 8601 dates, else ISO 8601 dates. A cell that does not
    follow the column's rule is null (named by ``prepare``), never guessed."""
    s = s.str.strip_chars()
    number = s.str.contains(_NUMBER).fill_null(False)
    as_float = s.cast(pl.Float64, strict=False)
    epoch = pl.select(
        pl.when(number).then(pl.coalesce(s.cast(pl.Int64, strict=False),
                                          as_float.floor().cast(pl.Int64, strict=False)))
    ).to_series()
    iso = s.str.replace("T", " ", literal=True, n=1)
    dates = pl.select(pl.coalesce(*(
        iso.str.strptime(pl.Datetime("us", "UTC") if "z" in f else pl.Datetime("us"), f,
                         strict=False, exact=True).dt.replace_time_zone("UTC").dt.epoch("s")
        for f in _DATE_FORMATS))).to_series()
    if number.sum() >= dates.is_not_null().sum():
        return epoch.alias(s.name), EPOCH_RULE
    return dates.alias(s.name), ISO_RULE


def _canonical(raw: pl.DataFrame, path: Path, columns: dict[str, str],
               ids: str) -> tuple[pl.DataFrame, str]:
    """(the canonical log of ``raw``'s user, item and timestamp columns, the timestamp rule).
    Text is read by the rules above; numbers, datetimes and dates by their type; a value that
    cannot be used (NaN, a fractional id) is null."""
    out, rule = {}, EPOCH_RULE
    for key in CANONICAL:
        s = raw[key]
        if s.dtype in (pl.Categorical, pl.Enum):
            s = s.cast(pl.Utf8)
        if s.dtype == pl.Utf8:
            if key == "timestamp":
                s, rule = _text_timestamps(s)
            else:
                s = _text_ids(s, ids)
        elif s.dtype.is_integer():
            s = s.cast(pl.Int64)
        elif s.dtype.is_float():
            whole = s.is_finite() & (key == "timestamp" or s == s.floor())
            s = s.floor().cast(pl.Int64, strict=False).set(~whole.fill_null(False), None)
        elif key == "timestamp" and isinstance(s.dtype, (pl.Datetime, pl.Date)):
            s = (s.cast(pl.Datetime("us")) if s.dtype == pl.Date else s).dt.epoch("s")
            rule = "a value of the file's own date-time type"
        else:
            raise DataError(
                f"{path}: column {columns[key]!r} ({key}) has type {s.dtype}; a {key} must be "
                + ("a number, a date-time or ISO 8601 text." if key == "timestamp" else
                   "text or an integer.") + " Fix the file, or the dataset's `columns:`."
            )
        out[key] = s
    return pl.DataFrame(out), rule


def _parsed(raw: pl.DataFrame, path: Path, columns: dict[str, str], rows: str,
            ids: str = "text") -> Parsed:
    log, rule = _canonical(raw, path, columns, ids)
    return Parsed(log, raw, columns, rule, rows)


def parse_movielens_1m(path: Path, spec: dict | None = None) -> Parsed:
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
        infer_schema_length=0,  # every field as a string, parsed by the whole-column rules
    )
    if df.width != 7:
        raise DataError(f"{path}: ratings.dat is not '::'-separated with 4 fields per line.")
    df = df.select(pl.nth(0).alias("user"), pl.nth(2).alias("item"), pl.nth(6).alias("timestamp"))
    return _parsed(df, path, {"user": "UserID", "item": "MovieID", "timestamp": "Timestamp"},
                   "rows numbered from 1 at the first line of ratings.dat", ids="integer")


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


def parse_amazon_2014(path: Path, spec: dict | None = None) -> Parsed:
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
    return _parsed(df, path, {"user": "reviewerID", "item": "asin", "timestamp": "unixReviewTime"},
                   "rows numbered from 1 at the first review (blank lines not counted)")


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (Exception, PanicException) as exc:  # noqa: BLE001 - a corrupt page can panic polars
        raise DataError(f"{path}: not a readable parquet file ({exc}). Delete it and download again.") from exc


#: the events of Yambda's multi_event file that ``event: multi_event`` keeps by default: the
#: positive feedback a next-item recommender learns from. A listen counts as in the listens file
#: (``min_played_ratio``); dislike, unlike and undislike are negative or corrective feedback, not
#: a consumed item, and are left out (``event_types:`` chooses others).
YAMBDA_POSITIVE_EVENTS = ("listen", "like")
#: the official convention (Yambda's baselines): a listen counts at >= 50 % of the track played
YAMBDA_MIN_PLAYED_RATIO = 50
#: rows of each released flat file and the release's users and items, as the Yambda dataset card
#: and paper (Ploshkin et al., 2025, Table 1) state them: (value, tolerance). Exact where they
#: are given exactly (50M: 10,000 users, 934,057 items, 881,456 likes; the likes are also the
#: CREATE paper's Table 1), else rounded as published ("46.5M"), checked within half a unit of
#: the last digit given. Users and items are of the whole release (every event): an event file
#: holds at most that many.
YAMBDA_RELEASES = {
    "50m": {"users": (10_000, 0), "items": (934_057, 0), "likes": (881_456, 0),
            "listens": (46_500_000, 50_000)},
    "500m": {"users": (100_000, 0), "items": (3_000_000, 50_000), "likes": (9_030_000, 5_000),
             "listens": (466_500_000, 50_000)},
    "5b": {"users": (1_000_000, 0), "items": (9_390_000, 5_000), "likes": (89_300_000, 50_000),
           "listens": (4_650_000_000, 5_000_000)},
}
YAMBDA_EVENT_TYPES = ("listen", "like", "dislike", "unlike", "undislike")


def _parquet_footer(path: Path) -> tuple[dict[str, pl.DataType], int]:
    """The file's columns and rows from its footer, read without its data: a file cut short (an
    interrupted download) has no footer and is refused here, by name."""
    try:
        return dict(pl.read_parquet_schema(path)), pq.ParquetFile(path).metadata.num_rows
    except (Exception, PanicException) as exc:  # noqa: BLE001 - a corrupt footer can panic
        raise DataError(
            f"{path}: not a readable parquet file ({exc}); a download cut short has no footer. "
            "Delete it and download again."
        ) from exc


def _yambda_filter(spec: dict, schema: dict, path: Path) -> tuple[pl.Expr | None, str | None]:
    """The rows of a Yambda file that count (``event``, ``min_played_ratio``, ``event_types``),
    as an expression on its columns and in words; (None, None) when every row counts."""
    event = spec.get("event", "likes")
    ratio = spec.get("min_played_ratio", YAMBDA_MIN_PLAYED_RATIO)
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float))
                              or ratio < 0):
        raise ConfigError(f"min_played_ratio: {ratio!r}; use a percentage >= 0 (the official "
                          f"convention is {YAMBDA_MIN_PLAYED_RATIO}), or null to keep every listen.")
    if event not in ("listens", "multi_event"):
        return None, None
    if ratio is not None and "played_ratio_pct" not in schema:
        raise DataError(f"{path}: no played_ratio_pct column (found {list(schema)}), which "
                        f"`event: {event}` with min_played_ratio: {ratio} needs. Re-download the "
                        "file, or set `min_played_ratio: null` to keep every listen.")
    played = pl.col("played_ratio_pct") >= ratio if ratio is not None else pl.lit(True)
    played_rule = f"played_ratio_pct >= {ratio:g}" if ratio is not None else "every listen"
    if event == "listens":
        return (played.fill_null(False), played_rule) if ratio is not None else (None, None)
    types = list(spec.get("event_types", YAMBDA_POSITIVE_EVENTS))
    unknown = sorted(set(types) - set(YAMBDA_EVENT_TYPES))
    if unknown or not types:
        raise ConfigError(f"event_types: {unknown or types}; use some of {list(YAMBDA_EVENT_TYPES)}.")
    if "event_type" not in schema:
        raise DataError(f"{path}: no event_type column (found {list(schema)}); this is not "
                        "Yambda's multi_event file. Delete it and download again.")
    kind = pl.col("event_type").cast(pl.Utf8)
    others = [t for t in types if t != "listen"]
    keep = kind.is_in(others) if others else pl.lit(False)
    if "listen" in types:
        keep = keep | ((kind == "listen") & played)
    rule = ", ".join(f"{t} ({played_rule})" if t == "listen" else t for t in types)
    return keep.fill_null(False), f"event_type in: {rule}"


def scan_yambda(path: Path, spec: dict | None = None) -> Parsed:
    """A Yambda flat file, lazily: the canonical columns, and ``_keep`` (whether the row counts,
    see ``_yambda_filter``) where not every row does; nothing read yet beyond the footer."""
    path, spec = Path(path), spec or {}
    schema, file_rows = _parquet_footer(path)
    missing = [c for c in ("uid", "item_id", "timestamp") if c not in schema]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(schema)}. The file is not in the "
            "expected format: re-download it, or fix the column mapping in the config."
        )
    for c in ("uid", "item_id", "timestamp"):
        if not schema[c].is_integer():
            raise DataError(f"{path}: column {c!r} has type {schema[c]}; Yambda's is an integer. "
                            "Delete the file and download again.")
    keep, rule = _yambda_filter(spec, schema, path)
    lf = pl.scan_parquet(path).select(
        pl.col("uid").cast(pl.Int64).alias("user"), pl.col("item_id").cast(pl.Int64).alias("item"),
        pl.col("timestamp").cast(pl.Int64), *([] if keep is None else [keep.alias("_keep")]))
    return Parsed(lf, None, {"user": "uid", "item": "item_id", "timestamp": "timestamp"},
                  EPOCH_RULE, "rows numbered from 1 at the first row of the parquet file",
                  file_rows=file_rows, keep=keep, keep_rule=rule)


def parse_yambda(path: Path, spec: dict | None = None) -> Parsed:
    """``scan_yambda``, read into memory (a DataError naming the file where its pages do not
    decode)."""
    p = scan_yambda(path, spec)
    try:
        df = p.log.collect(engine="streaming")
    except (Exception, PanicException) as exc:  # noqa: BLE001 - a corrupt page can panic polars
        raise DataError(f"{path}: not a readable parquet file ({exc}). Delete it and download "
                        "again.") from exc
    return Parsed(df, df, p.columns, p.timestamp_rule, p.rows, p.file_rows, p.keep, p.keep_rule)


def check_yambda_release(name: str, spec: dict, file_rows: int, counts: dict, path: Path) -> None:
    """The parsed file against its release's published counts (``YAMBDA_RELEASES``): the rows
    of a likes or listens file, and at most the release's users and items in any event file.
    ``check_release: false`` skips it (a file of one's own at the Yambda layout)."""
    if not spec.get("check_release", True):
        return
    size, event = spec.get("size_variant", "50m"), spec.get("event", "likes")
    release = YAMBDA_RELEASES.get(size, {})
    wrong = []
    if event in release:
        value, tol = release[event]
        if abs(file_rows - value) > tol:
            wrong.append(f"{file_rows:,} rows, the release has {value:,}"
                         + (f" (+-{tol:,}, as published rounded)" if tol else ""))
    for key in ("users", "items"):
        if key in release and counts[key] > release[key][0] + release[key][1]:
            wrong.append(f"{counts[key]:,} {key}, the whole release has {release[key][0]:,}")
    if wrong:
        raise DataError(
            f"{name}: {path} is not Yambda-{size} {event} as released: {'; '.join(wrong)}. The file is cut "
            "short, of another release, or altered: delete it and download again (or set "
            "`check_release: false` for a file of your own in Yambda's layout)."
        )


def parse_synthetic(path: Path, spec: dict | None = None) -> Parsed:
    df = _read_parquet(path)
    _require_columns(df, list(CANONICAL), path)
    return _parsed(df.select(CANONICAL), path, {k: k for k in CANONICAL},
                   "rows numbered from 1 at the first row of the parquet file")


def read_table(path: Path) -> pl.DataFrame:
    """Read a local csv, tsv or parquet file, choosing the reader by extension. Text files are
    read whole as text (no type guessed from the first rows): the caller parses each column."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist. Check the dataset's `path:` in the config.")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".csv.gz"):
            return pl.read_csv(path, infer_schema_length=0)
        if suffix in (".tsv", ".tsv.gz", ".inter", ".txt"):
            return pl.read_csv(path, separator="\t", infer_schema_length=0)
    except (Exception, PanicException) as exc:  # noqa: BLE001 - a corrupt page can panic polars
        raise DataError(f"{path}: could not be read as {suffix} ({exc}).") from exc
    raise DataError(
        f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .parquet (optionally .gz for text)."
    )


def parse_custom(path: Path, columns: dict[str, str]) -> Parsed:
    """A local file's user, item and timestamp columns (``columns`` names them), every row."""
    df = read_table(path)
    needed = [columns[k] for k in CANONICAL]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {missing} named in the config's `columns:` are not in the file "
            f"(it has {df.columns}). Fix `columns: {{user:, item:, timestamp:}}` for this dataset."
        )
    df = df.select(*(pl.col(columns[k]).alias(k) for k in CANONICAL))
    parquet = path.suffix in (".parquet", ".pq")
    return _parsed(df, path, {k: columns[k] for k in CANONICAL},
                   "rows numbered from 1 at the first row of the parquet file" if parquet else
                   "rows numbered from 1 at the first data row, the line after the header",
                   ids="text" if parquet else "infer")


# ----------------------------------------------------------------------------- registry

AMAZON_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_{category}_5.json.gz"
MOVIELENS_1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
YAMBDA_URL = "https://huggingface.co/datasets/yandex/yambda/resolve/{revision}/flat/{size}/{event}.parquet"


@dataclass(frozen=True)
class Source:
    name: str
    remote: Callable[[dict], RemoteFile] | None  # None: nothing to download
    parse: Callable[[Path, dict], Parsed]
    #: a lazy reader (``Parsed.log`` a LazyFrame), which ``prepare`` streams; None: ``parse``
    scan: Callable[[Path, dict], Parsed] | None = None
    #: (name, spec, the file's rows, the prepared log's counts, path) -> None or a DataError:
    #: the parsed file against what its publisher released
    check: Callable[[str, dict, int, dict, Path], None] | None = None


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
    "movielens-1m": Source("movielens-1m", _movielens_remote, parse_movielens_1m),
    "amazon-2014": Source("amazon-2014", _amazon_remote, parse_amazon_2014),
    "yambda": Source("yambda", _yambda_remote, parse_yambda, scan_yambda,
                     check_yambda_release),
    "synthetic": Source("synthetic", None, parse_synthetic),
    "custom": Source("custom", None, lambda p, s: parse_custom(Path(p), s["columns"])),
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
