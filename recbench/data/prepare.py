"""Raw file -> canonical parquet (user, item, timestamp), with counts verified against the paper."""

from __future__ import annotations

import logging
import struct
import zipfile
from pathlib import Path

import polars as pl

from recbench.data.sources import source_of
from recbench.errors import DataError
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


def prepare(name: str, spec: dict, raw_path: str | Path) -> pl.DataFrame:
    """Parse one dataset's raw file into the canonical log and verify it.

    A file whose parsing would not fit in the memory available is refused before it is read
    (``ResourceError`` with the GiB it needs)."""
    raw_path = Path(raw_path)
    if not raw_path.exists():
        raise DataError(f"{name}: raw file {raw_path} is missing. Run the download rule first.")
    require(parse_memory_bytes(raw_path),
            f"{name}: parsing {raw_path.name} ({gib(uncompressed_bytes(raw_path))} uncompressed)",
            "Use a machine with more memory, or a smaller log (e.g. a smaller Yambda "
            "size_variant, or the file cut into a smaller one)")
    df = source_of(name, spec).parse(raw_path, spec)
    verify_counts(df, spec.get("expected"), name, raw_path)
    log.info("%s: %s", name, dataset_counts(df))
    return df
