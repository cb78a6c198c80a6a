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
import tempfile
import zipfile
from pathlib import Path

import polars as pl
from polars.exceptions import PanicException

from recbench.data.sources import CANONICAL, Parsed, source_of
from recbench.errors import ConfigError, DataError
from recbench.io import atomic_path
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


def _invalid_message(name: str, path: Path, height: int, n: int, nulls: dict[str, int],
                     first: list[tuple[int, dict, set]], parsed: Parsed) -> DataError:
    """The error of a file with unusable rows: how many (``n`` of ``height``), which column
    (``nulls``), the first rows (row index, raw values, the bad keys), the fix."""
    cols = parsed.columns
    per_column = ", ".join(f"{key} (column {cols[key]!r}) in {nulls[key]:,}"
                           for key in CANONICAL if nulls[key])
    lines = [f"  row {i + 1:,}: " + ", ".join(
        f"{cols[k]}={_quoted(values[k])}" + (" <-" if k in bad else "") for k in CANONICAL)
        for i, values, bad in first]
    rule = ""
    if nulls["timestamp"]:
        rule = (f" The timestamp column is read by one rule for all its cells, the kind most "
                f"of them have: here a valid {cols['timestamp']!r} is {parsed.timestamp_rule}.")
    return DataError(
        f"{name}: {n:,} of {height:,} rows of {path} have a missing or unusable value: "
        f"{per_column}.{rule} The first {min(n, SHOWN_ROWS)} ({parsed.rows}; <- marks the bad "
        "value):\n" + "\n".join(lines) + "\n"
        f"Fix these values in the file, or add `on_invalid: drop` to datasets.{name} in the "
        "config to drop such rows (the count is logged and kept in split_summary.json)."
    )


def invalid_rows_error(name: str, parsed: Parsed, invalid: pl.Series, path: Path) -> DataError:
    """``_invalid_message`` of a parsed file held in memory (``invalid``: its bad rows)."""
    log = parsed.log
    first = []
    for i in invalid.arg_true().head(SHOWN_ROWS).to_list():
        bad = {k for k in CANONICAL if log[k][i] is None}
        first.append((i, {k: parsed.raw[k][i] for k in CANONICAL}, bad))
    return _invalid_message(name, path, log.height, int(invalid.sum()),
                            {k: log[k].null_count() for k in CANONICAL}, first, parsed)


def packed_key(df: pl.DataFrame, columns: list[str | pl.Expr]) -> pl.Series | None:
    """One int64 per row of ``df``, ordered as the rows' ``columns`` are lexicographically (so
    equal exactly where they all are): each column's offset from its minimum in its own bits.
    None where a column is not an integer, holds a null, or the offsets need over 63 bits
    together. A sort or a distinct count by it is the multi-column one, 4-18x faster: polars'
    two-key stable sort took 7.9 s on 10M rows, against 1.7 s by the key; a hash group-by on
    three keys 4 s and 1.9 GiB, against 0.6 s and 0.16 GiB."""
    exprs = [pl.col(c) if isinstance(c, str) else c for c in columns]
    types = df.lazy().select(exprs).collect_schema().dtypes()
    if df.is_empty() or not all(t.is_integer() for t in types):
        return None
    bounds = df.select([e.min().alias(f"lo{i}") for i, e in enumerate(exprs)]
                       + [e.max().alias(f"hi{i}") for i, e in enumerate(exprs)]
                       + [e.null_count().alias(f"nulls{i}") for i, e in enumerate(exprs)]).row(0)
    k = len(exprs)
    lo, hi, nulls = bounds[:k], bounds[k:2 * k], bounds[2 * k:]
    if any(nulls):
        return None
    bits = [(int(h) - int(l)).bit_length() for l, h in zip(lo, hi)]
    if sum(bits) > 63:
        return None
    key, shift = pl.lit(0, pl.Int64), sum(bits)
    for e, l, b in zip(exprs, lo, bits):
        shift -= b
        key = key + (e.cast(pl.Int64) - int(l)) * (1 << shift)
    return df.select(key.alias("key")).to_series()


def count_duplicates(df: pl.DataFrame, key: pl.Series | None = None) -> int:
    """Rows equal to an earlier row, exactly: the distinct ``packed_key``s (or ``key``, one of
    the rows' identity), else by sorting (about 2x the log's memory, where ``DataFrame.n_unique``
    and ``is_duplicated`` peak near 7x: 1.7 GiB on 10M int64 rows)."""
    if df.height < 2:
        return 0
    key = packed_key(df, df.columns) if key is None else key
    if key is not None:
        return df.height - key.n_unique()
    s = df.sort(df.columns)
    first = s.select(pl.any_horizontal(pl.all().ne_missing(pl.all().shift(1)))).to_series()
    return s.height - int(first.sum())


#: the compression of the out-of-core steps' own files, read back once and deleted: lz4 writes
#: and reads faster than the outputs' zstd, for a little more disk
SCRATCH = "lz4"

#: the most rows the out-of-core steps hold in memory at once (``prepare``'s duplicate count,
#: ``split``'s per-user work): a longer log is cut into buckets of whole users, each about this
#: long, written to disk beside the output and read back one at a time.
BUCKET_ROWS = 10_000_000


def streamed(path: Path, run):
    """``run()`` (a streaming collect or sink over ``path``), a DataError naming the file if its
    pages do not decode (a truncated or corrupt parquet, read lazily)."""
    try:
        return run()
    except (ConfigError, DataError):
        raise
    except (Exception, PanicException) as exc:  # noqa: BLE001 - a corrupt page can panic polars
        raise DataError(f"{path}: not readable to the end ({type(exc).__name__}: {exc}). The "
                        "file is cut short or corrupt: delete it and download again.") from exc


def collect(lf: pl.LazyFrame, path: Path) -> pl.DataFrame:
    return streamed(path, lambda: lf.collect(engine="streaming"))


def chunks(files: list[Path], path: Path, rows: int = BUCKET_ROWS):
    """The rows of the parquet ``files``, in order, as lazy slices of at most ``rows`` rows each
    (the reader skips to a slice's row groups): a query over one, collected in memory, holds that
    slice. Over 500M rows the streaming engine's group-bys held anything from 0.9 to 5 GiB from
    one run to the next; a group-by per slice holds 0.3."""
    import pyarrow.parquet as pq

    for f in files:
        n = streamed(path, lambda: pq.read_metadata(f).num_rows)
        for offset in range(0, n, rows):
            yield pl.scan_parquet(f).slice(offset, rows)


def count_by(files: list[Path], key: str | pl.Expr, path: Path, where: pl.Expr | None = None,
             rows: int = BUCKET_ROWS) -> pl.DataFrame:
    """How many rows of ``files`` (of those ``where`` holds) have each value of ``key``: a frame of
    the key and ``len``, sorted by the key, grouped slice by slice (``chunks``), in memory the
    per-key counts and one slice."""
    key = pl.col(key) if isinstance(key, str) else key
    name = key.meta.output_name()
    total = None
    for lf in chunks(files, path, rows):
        if where is not None:
            lf = lf.filter(where)
        part = streamed(path, lambda: lf.group_by(key).agg(pl.len().cast(pl.Int64)).collect())
        total = part if total is None else (pl.concat([total, part]).group_by(name)
                                            .agg(pl.col("len").sum()))
    if total is None:
        total = pl.DataFrame(schema={name: pl.Int64, "len": pl.Int64})
    return total.sort(name)


def lazy_counts(files: list[Path], path: Path) -> dict[str, int]:
    """``dataset_counts`` of a log in parquet files, without holding it: the per-user and
    per-item counts (``count_by``), not the rows."""
    return {"users": distinct(files, "user", path), "items": distinct(files, "item", path),
            "interactions": sum(streamed(path, lambda: int(pl.scan_parquet(f).select(pl.len())
                                                           .collect().item())) for f in files)}


def distinct(files: list[Path], column: str, path: Path) -> int:
    """How many distinct values the ``column`` of ``files`` has, in memory per value."""
    return count_by(files, column, path).height


def verify_counts(df: pl.DataFrame | dict, expected: dict | None, name: str, path: Path) -> None:
    """Compare users, items and interactions (of a log, or its ``dataset_counts``) with
    ``expected`` (Table 1 for the paper's data)."""
    if not expected:
        return
    got = df if isinstance(df, dict) else dataset_counts(df)
    wrong = {k: (v, got[k]) for k, v in expected.items() if got.get(k) != v}
    if wrong:
        detail = ", ".join(f"{k}: expected {e:,}, got {g:,}" for k, (e, g) in wrong.items())
        raise DataError(
            f"{name}: {path} parses to counts that differ from the paper's Table 1 ({detail}). "
            "The raw file is a different release or was altered: delete it and download again. "
            f"To use it anyway, remove `expected:` from datasets.{name} in the config."
        )


def _bucket_files(lf: pl.LazyFrame, key: pl.Expr, folder: Path, path: Path) -> list[Path]:
    """``lf`` cut by ``key`` (a bucket number) into parquet files under ``folder``, one pass,
    streaming; each file keeps ``lf``'s row order."""
    streamed(path, lambda: lf.with_columns(key.alias("_b")).sink_parquet(
        pl.PartitionBy(folder, key="_b", include_key=False), mkdir=True, compression=SCRATCH))
    return sorted((f for f in folder.glob("_b=*/*.parquet")),
                  key=lambda f: (int(f.parent.name.split("=")[1]), f.name))


def _account(name: str, parsed: Parsed, spec: dict, path: Path, out: Path,
             bucket_rows: int) -> dict:
    """Write the canonical log of ``parsed`` to ``out`` (a temporary path) and return its report:
    unusable rows refused or dropped, duplicates counted and kept or dropped, streaming; at most
    ``bucket_rows`` rows (or the parsed frame itself) in memory."""
    on_invalid, duplicates = spec.get("on_invalid", "error"), spec.get("duplicates", "keep")
    for key, value, allowed in (("on_invalid", on_invalid, ON_INVALID),
                                ("duplicates", duplicates, DUPLICATES)):
        if value not in allowed:
            raise ConfigError(f"datasets.{name}.{key}: {value!r}; use one of {list(allowed)}.")
    lazy = isinstance(parsed.log, pl.LazyFrame)
    lf = parsed.log if lazy else parsed.log.lazy()
    filtered = parsed.keep is not None
    keep = pl.col("_keep") if filtered else pl.lit(True)
    bad = pl.any_horizontal(pl.col(CANONICAL).is_null())
    stats = collect(lf.select(
        pl.len().alias("rows"), (keep.sum() if filtered else pl.len()).alias("kept"), (keep & bad).sum().alias("invalid"),
        *((keep & pl.col(k).is_null()).sum().alias(k) for k in CANONICAL)), path).row(0, named=True)
    rows, kept, n_invalid = stats["rows"], int(stats["kept"]), int(stats["invalid"])
    if n_invalid and on_invalid == "error":
        if not lazy:
            raise invalid_rows_error(name, parsed, parsed.log.select(bad).to_series(), path)
        first = collect(lf.with_row_index("_i").filter(keep & bad).head(SHOWN_ROWS), path)
        raise _invalid_message(
            name, path, kept, n_invalid, stats,
            [(r["_i"], r, {k for k in CANONICAL if r[k] is None}) for r in first.iter_rows(named=True)],
            parsed)
    if n_invalid:
        log.warning("%s: dropped %s of %s rows with a missing or unusable value (on_invalid: "
                    "drop)", name, f"{n_invalid:,}", f"{kept:,}")
    usable = kept - n_invalid
    if usable == 0:
        raise DataError(f"{name}: {path}: no usable (user, item, timestamp) rows after parsing.")
    valid = lf
    if filtered or n_invalid:
        valid = lf.filter(keep & ~bad)
    valid = valid.select(CANONICAL)
    if usable <= bucket_rows:  # one bucket: the frame itself
        whole = not (lazy or filtered or n_invalid)
        df = parsed.log.select(CANONICAL) if whole else collect(valid, path)
        n_duplicates = count_duplicates(df)
        if n_duplicates and duplicates == "drop":
            df = df.unique(keep="first", maintain_order=True)
        df.write_parquet(out)
        counts = dataset_counts(df)
    else:
        n_duplicates, dropped = 0, []
        n = -(-usable // bucket_rows)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.buckets.", dir=out.parent) as tmp:
            rows_of = valid.with_row_index("_row") if duplicates == "drop" else valid
            # integer users by their remainder: a bucket's users are then told apart by their
            # quotient, a narrow range, so that its rows' (user, item, time) pack into one key
            integer = valid.collect_schema()["user"].is_integer()
            user = pl.col("user") // n if integer else pl.col("user")
            by = pl.col("user") % n if integer else pl.col("user").hash(0) % n
            for f in _bucket_files(rows_of, by, Path(tmp), path):
                b = pl.read_parquet(f)
                key = packed_key(b, [user, pl.col("item"), pl.col("timestamp")])
                d = count_duplicates(b.select(CANONICAL), key)
                n_duplicates += d
                if d and duplicates == "drop":
                    first = (key.is_first_distinct() if key is not None else
                             b.select(pl.struct(CANONICAL).is_first_distinct()).to_series())
                    dropped.append(b.filter(~first)["_row"])
                del b, key
        if dropped:
            drop = pl.concat(dropped)
            valid = (valid.with_row_index("_row").filter(~pl.col("_row").is_in(drop.implode()))
                     .drop("_row"))
        streamed(path, lambda: valid.sink_parquet(out))
        counts = lazy_counts([out], out)
    if n_duplicates:
        log.warning("%s: %s rows repeat an earlier row's (user, item, timestamp): %s "
                    "(duplicates: %s)", name, f"{n_duplicates:,}",
                    "dropped" if duplicates == "drop" else "kept", duplicates)
    report = {
        "rows": kept,
        "invalid_rows": n_invalid,
        "on_invalid": on_invalid,
        "dropped_invalid": n_invalid,
        "duplicate_rows": n_duplicates,
        "duplicates": duplicates,
        "dropped_duplicates": n_duplicates if duplicates == "drop" else 0,
        "interactions": counts["interactions"],
    }
    if filtered:  # the file's rows, and those its event filter left out
        report.update(file_rows=rows, event_filter=parsed.keep_rule, filtered_out=rows - kept)
    return {"report": report, "counts": counts}


def prepare_to(name: str, spec: dict, raw_path: str | Path, out_path: str | Path, *,
               bucket_rows: int = BUCKET_ROWS) -> dict:
    """Parse one dataset's raw file into the canonical parquet ``out_path`` (written atomically,
    once its counts are verified) and return its report of rows read, invalid, dropped and
    duplicate (see ``_account``).

    A source read lazily (Yambda: ``Source.scan``) is streamed: its peak memory is the per-user
    and per-item sets and at most ``bucket_rows`` rows, whatever the file's length. Another
    source's file is parsed in memory, and refused before it is read where its parsing would
    not fit (``ResourceError`` with the GiB it needs)."""
    raw_path = Path(raw_path)
    if not raw_path.exists():
        raise DataError(f"{name}: raw file {raw_path} is missing. Run the download rule first.")
    source = source_of(name, spec)
    if source.scan is not None:
        parsed = source.scan(raw_path, spec)
    else:
        require(parse_memory_bytes(raw_path),
                f"{name}: parsing {raw_path.name} ({gib(uncompressed_bytes(raw_path))} "
                "uncompressed)", "Use a machine with more memory, or a smaller log (the file "
                "cut into a smaller one)")
        parsed = source.parse(raw_path, spec)
    with atomic_path(out_path) as tmp:
        done = _account(name, parsed, spec, raw_path, tmp, bucket_rows)
        report, counts = done["report"], done["counts"]
        verify_counts(counts, spec.get("expected"), name, raw_path)
        if source.check is not None:
            source.check(name, spec, report.get("file_rows", report["rows"]), counts, raw_path)
    log.info("%s: %s; %s", name, counts, report)
    return report


def prepare(name: str, spec: dict, raw_path: str | Path) -> tuple[pl.DataFrame, dict]:
    """``prepare_to``, read back: (the canonical log, its report)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "prepared.parquet"
        report = prepare_to(name, spec, raw_path, out)
        return pl.read_parquet(out), report
