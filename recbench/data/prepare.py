"""Raw file -> canonical parquet (user, item, timestamp), every row accounted for, with counts
verified against the paper.

A row whose user, item or timestamp is missing or does not parse stops ``prepare`` with a
``DataError`` naming how many rows, up to five of them with their raw values, and the fix; the
dataset entry's ``on_invalid: drop`` drops them instead. Rows that repeat an earlier row's
(user, item, timestamp) are counted, and kept (``duplicates: keep``, the default: the paper's
Table 1 counts every row) or dropped (``duplicates: drop``, the first one stays). The counts are
``prepare``'s report: the job writes it beside the prepared log, and it goes into
``split_summary.json`` and the manifest.
"""

from __future__ import annotations

import logging
import struct
import zipfile
from pathlib import Path

import polars as pl

from recbench.data.sources import CANONICAL, Parsed, source_of
from recbench.errors import ConfigError, DataError
from recbench.memory import gib, require

#: peak memory of parsing, per byte of uncompressed raw data: the raw bytes or the full frame,
#: the selected columns' copies (casts, drop_nulls) and string columns' overhead (about 1.5 on
#: a 10M-row int64 parquet) ...
PARSE_FACTOR = 3
#: ... plus the parser's own working memory (thread pools, buffers, code), whatever the size.
#: benchmarks/run_all.py (section 4) checks that the measured peak stays below the estimate.
PARSE_OVERHEAD = 256 * 2**20

log = logging.getLogger(__name__)


def dataset_counts(df: pl.DataFrame) -> dict[str, int]:
    return {
        "users": int(df["user"].n_unique()),
        "items": int(df["item"].n_unique()),
        "interactions": int(df.height),
    }


def verify_counts(df: pl.DataFrame, expected: dict | None, name: str, path: Path) -> None:
    """Compare users, items and interactions with ``expected`` (Table 1 for the paper's data)."""
    if not expected:
        return
    got = dataset_counts(df)
    wrong = {k: (v, got[k]) for k, v in expected.items() if got.get(k) != v}
    if wrong:
        detail = ", ".join(f"{k}: expected {e:,}, got {g:,}" for k, (e, g) in wrong.items())
        raise DataError(
            f"{name}: {path} parses to counts that differ from the paper's Table 1 ({detail}). "
            "The raw file is a different release or was altered: delete it and download again. "
            f"To use it anyway, remove `expected:` from datasets.{name} in the config."
        )


def _parquet_in_memory_bytes(pf) -> int:
    """Rows x width for fixed-width columns; uncompressed page bytes plus offsets for the others
    (a dictionary- or run-length-encoded column is far smaller on disk than in memory)."""
    meta, rows = pf.metadata, pf.metadata.num_rows
    on_disk = {}  # top-level column -> uncompressed bytes of its pages
    for i in range(meta.num_row_groups):
        for j in range(meta.num_columns):
            col = meta.row_group(i).column(j)
            top = col.path_in_schema.split(".")[0]
            on_disk[top] = on_disk.get(top, 0) + col.total_uncompressed_size
    total = 0
    for field in pf.schema_arrow:
        try:
            total += rows * max(field.type.bit_width // 8, 1)
        except ValueError:  # variable width: strings, binary, lists
            total += 8 * rows + on_disk.get(field.name, 0)
    return total


def uncompressed_bytes(path: str | Path) -> int:
    """The size of ``path``'s data once decompressed, read from its metadata without parsing:
    parquet row groups' uncompressed sizes, zip members' sizes, gzip's trailer (a lower bound past
    4 GiB, where it wraps; the compressed size bounds it below), else the file size."""
    path = Path(path)
    size = path.stat().st_size
    try:
        if path.suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return max(size, _parquet_in_memory_bytes(pq.ParquetFile(path)))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return max(size, sum(m.file_size for m in zf.infolist()))
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
            if gzipped and size >= 18:
                f.seek(-4, 2)
                isize = struct.unpack("<I", f.read(4))[0]  # uncompressed size mod 2**32
                while isize < size:  # deflate never shrinks text below its compressed size
                    isize += 2**32
                return isize
    except Exception:  # noqa: BLE001 - an unreadable file is the parser's error to report
        pass
    return size


def parse_memory_bytes(path: str | Path) -> int:
    """An upper bound of the memory parsing ``path`` takes: ``PARSE_FACTOR`` x its uncompressed
    size + ``PARSE_OVERHEAD``."""
    return PARSE_FACTOR * uncompressed_bytes(path) + PARSE_OVERHEAD


#: rows quoted by the error of a file with unusable rows
SHOWN_ROWS = 5
ON_INVALID = ("error", "drop")
DUPLICATES = ("keep", "drop")


def _quoted(value) -> str:
    return "(empty)" if value is None else repr(value)


def invalid_rows_error(name: str, parsed: Parsed, invalid: pl.Series, path: Path) -> DataError:
    """The error of a file with unusable rows: how many, which column, the first rows, the fix."""
    log, cols = parsed.log, parsed.columns
    per_column = ", ".join(
        f"{key} (column {cols[key]!r}) in {n:,}"
        for key in CANONICAL if (n := log[key].null_count())
    )
    lines = []
    for i in invalid.arg_true().head(SHOWN_ROWS).to_list():
        bad = {k for k in CANONICAL if log[k][i] is None}
        cells = ", ".join(f"{cols[k]}={_quoted(parsed.raw[k][i])}" + (" <-" if k in bad else "")
                          for k in CANONICAL)
        lines.append(f"  row {i + 1:,}: {cells}")
    n = int(invalid.sum())
    rule = ""
    if log["timestamp"].null_count():
        rule = (f" The timestamp column is read by one rule for all its cells, the kind most "
                f"of them have: here a valid {cols['timestamp']!r} is {parsed.timestamp_rule}.")
    return DataError(
        f"{name}: {n:,} of {log.height:,} rows of {path} have a missing or unusable value: "
        f"{per_column}.{rule} The first {min(n, SHOWN_ROWS)} ({parsed.rows}; <- marks the bad "
        "value):\n" + "\n".join(lines) + "\n"
        f"Fix these values in the file, or add `on_invalid: drop` to datasets.{name} in the "
        "config to drop such rows (the count is logged and kept in split_summary.json)."
    )


def count_duplicates(df: pl.DataFrame) -> int:
    """Rows equal to an earlier row, exactly, by sorting: about 2x the log's memory, where
    ``DataFrame.n_unique`` and ``is_duplicated`` peak near 7x (1.7 GiB on 10M int64 rows)."""
    if df.height < 2:
        return 0
    s = df.sort(df.columns)
    first = s.select(pl.any_horizontal(pl.all().ne_missing(pl.all().shift(1)))).to_series()
    return s.height - int(first.sum())


def account_rows(name: str, parsed: Parsed, spec: dict, path: Path) -> tuple[pl.DataFrame, dict]:
    """(the canonical log, its report): unusable rows refused or dropped, duplicates counted and
    kept or dropped, as the dataset entry's ``on_invalid`` and ``duplicates`` say."""
    on_invalid, duplicates = spec.get("on_invalid", "error"), spec.get("duplicates", "keep")
    for key, value, allowed in (("on_invalid", on_invalid, ON_INVALID),
                                ("duplicates", duplicates, DUPLICATES)):
        if value not in allowed:
            raise ConfigError(f"datasets.{name}.{key}: {value!r}; use one of {list(allowed)}.")
    df = parsed.log
    invalid = df.select(pl.any_horizontal(pl.all().is_null()).alias("invalid")).to_series()
    n_invalid = int(invalid.sum())
    if n_invalid and on_invalid == "error":
        raise invalid_rows_error(name, parsed, invalid, path)
    if n_invalid:
        df = df.filter(~invalid)
        log.warning("%s: dropped %s of %s rows with a missing or unusable value (on_invalid: "
                    "drop)", name, f"{n_invalid:,}", f"{parsed.log.height:,}")
    n_duplicates = count_duplicates(df)
    if n_duplicates:
        log.warning("%s: %s rows repeat an earlier row's (user, item, timestamp): %s "
                    "(duplicates: %s)", name, f"{n_duplicates:,}",
                    "dropped" if duplicates == "drop" else "kept", duplicates)
        if duplicates == "drop":
            df = df.unique(keep="first", maintain_order=True)
    if df.height == 0:
        raise DataError(f"{name}: {path}: no usable (user, item, timestamp) rows after parsing.")
    report = {
        "rows": parsed.log.height,
        "invalid_rows": n_invalid,
        "on_invalid": on_invalid,
        "dropped_invalid": n_invalid,
        "duplicate_rows": n_duplicates,
        "duplicates": duplicates,
        "dropped_duplicates": n_duplicates if duplicates == "drop" else 0,
        "interactions": df.height,
    }
    return df, report


def prepare(name: str, spec: dict, raw_path: str | Path) -> tuple[pl.DataFrame, dict]:
    """Parse one dataset's raw file into the canonical log and verify it: (the log, its report of
    rows read, invalid, dropped and duplicate, see ``account_rows``).

    A file whose parsing would not fit in the memory available is refused before it is read
    (``ResourceError`` with the GiB it needs)."""
    raw_path = Path(raw_path)
    if not raw_path.exists():
        raise DataError(f"{name}: raw file {raw_path} is missing. Run the download rule first.")
    require(parse_memory_bytes(raw_path),
            f"{name}: parsing {raw_path.name} ({gib(uncompressed_bytes(raw_path))} uncompressed)",
            "Use a machine with more memory, or a smaller log (e.g. a smaller Yambda "
            "size_variant, or the file cut into a smaller one)")
    df, report = account_rows(name, source_of(name, spec).parse(raw_path, spec), spec, raw_path)
    verify_counts(df, spec.get("expected"), name, raw_path)
    log.info("%s: %s; %s", name, dataset_counts(df), report)
    return df, report
