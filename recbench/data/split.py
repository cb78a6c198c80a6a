"""The two evaluation protocols' splits, as one module: ``make_split`` picks one by
``split.protocol``.

``global_temporal`` (default): the global temporal split of Gusak et al. (2025), as the CREATE
paper uses it (Section 4.2). On the whole log:
1. keep users with at least ``min_user_interactions`` (3) interactions;
2. T = the ``quantile`` (0.8) quantile of all timestamps (numpy's linear interpolation);
3. train = every interaction with timestamp <= T;
4. test users = users with at least one interaction <= T and at least one > T;
5. a test user's target is their last interaction; their input is every interaction before it,
   including those after T.
Validation repeats steps 2-5 inside train with the ``valid_quantile`` (0.9) quantile of the train
timestamps (no second user filter). Ties in time keep the log's row order, so "last" is exact.

``loom``: the leave-one-out setup LOOM (Li et al., CIKM 2025) evaluates in, used for the CREATE
paper's Table 3 (the README's "Table 3: the LOOM protocol" says where each rule comes from):
1. iterative ``k_core`` (5) filter: drop users and items with fewer than k interactions until
   none is left (duplicates count, as rows);
2. keep users with at least ``min_user_interactions`` (3) interactions, so that every user keeps
   a training row;
3. each user's interactions in time order (ties keep the log's row order) s_1..s_n: the test
   target is s_n with input s_1..s_{n-1}, the validation target s_{n-1} with input
   s_1..s_{n-2}, and train is s_1..s_{n-2}. Every user is a test and a validation user; the
   validation view fits on the same train.

Item and user ids are indexed on the training part. A test item never seen in training gets index
-1: as an input it is dropped (no model can represent it), as a target it stays, as a miss.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recbench.data.prepare import (BUCKET_ROWS, SCRATCH, collect, count_by, distinct, packed_key,
                                   streamed)
from recbench.errors import ConfigError, DataError
from recbench.io import atomic_path, write_json, write_parquet


@dataclass(frozen=True)
class GlobalTemporalSplit:
    quantile: float = 0.8
    valid_quantile: float | None = 0.9
    min_user_interactions: int = 3

    def __post_init__(self):
        for key in ("quantile", "valid_quantile"):
            q = getattr(self, key)
            if q is not None and not 0.0 < q < 1.0:
                raise ValueError(f"split.{key} must lie strictly between 0 and 1, got {q}")

    @staticmethod
    def cut(log: pl.DataFrame, quantile: float) -> tuple[float, pl.DataFrame, pl.DataFrame]:
        """Return (T, interactions <= T, every interaction of the users that span T).

        ``log`` must be sorted by (user, time, row order). The second frame is the evaluation
        frame: each spanning user's rows, the last one flagged ``is_target``.
        """
        T = float(np.quantile(log["timestamp"].to_numpy(), quantile))
        return (T, *GlobalTemporalSplit.cut_at(log, T))

    @staticmethod
    def cut_at(log: pl.DataFrame, T: float) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``cut`` at a given T: (interactions <= T, the evaluation frame). Per user, so a log
        cut into buckets of whole users is cut bucket by bucket (``split_to_folder``)."""
        before = log.filter(pl.col("timestamp") <= T)
        spanning = (
            log.group_by("user")
            .agg(
                (pl.col("timestamp") <= T).any().alias("before"),
                (pl.col("timestamp") > T).any().alias("after"),
            )
            .filter(pl.col("before") & pl.col("after"))
            .select("user")
        )
        evaluation = log.join(spanning, on="user", how="semi", maintain_order="left").with_columns(
            (pl.int_range(pl.len()).over("user") == pl.len().over("user") - 1).alias("is_target")
        )
        return before, evaluation

    def split(self, log: pl.DataFrame) -> dict:
        """Split a canonical log (user, item, timestamp). Returns frames keyed
        ``train``, ``test``, ``valid_train``, ``valid`` and the cut times ``T``, ``T_valid``."""
        log = log.with_row_index("_row")
        keep = log.group_by("user").len().filter(pl.col("len") >= self.min_user_interactions)
        log = log.join(keep.select("user"), on="user", how="semi")
        if log.height == 0:
            raise DataError(
                f"No user has at least {self.min_user_interactions} interactions: the log is "
                "empty after filtering. Check the dataset, or lower split.min_user_interactions."
            )
        log = log.sort("user", "timestamp", "_row")
        T, train, test = self.cut(log, self.quantile)
        if test.height == 0:
            raise DataError(
                f"No user has interactions on both sides of T={T:g}: the test split is empty. "
                "The log's timestamps may be constant, or users too short."
            )
        out = {"T": T, "train": train, "test": test, "T_valid": None, "valid": None,
               "valid_train": None, "filtered": log, "protocol": "global_temporal"}
        if self.valid_quantile is not None:
            T_v, valid_train, valid = self.cut(train, self.valid_quantile)
            out.update(T_valid=T_v, valid_train=valid_train, valid=valid)
        return out


def k_core_filter(log: pl.DataFrame, k: int) -> pl.DataFrame:
    """The k-core of a log: repeatedly drop every row whose user or item has fewer than ``k``
    rows, until none does. The result is the unique largest sub-log in which every user and every
    item has at least ``k`` rows (the order of removals does not change it); row order is kept."""
    while True:
        kept = log.filter((pl.len().over("user") >= k) & (pl.len().over("item") >= k))
        if kept.height == log.height:
            return kept
        log = kept


@dataclass(frozen=True)
class LeaveOneOutSplit:
    """The LOOM protocol's split: k-core, then leave the last item out for test and the one
    before it for validation (see the module docstring)."""

    k_core: int | None = 5
    min_user_interactions: int = 3

    def __post_init__(self):
        if self.k_core is not None and self.k_core < 1:
            raise ValueError(f"split.k_core must be a positive integer or null, got {self.k_core}")
        if self.min_user_interactions < 3:
            raise ValueError(
                "split.min_user_interactions must be at least 3 under the loom protocol (one "
                "training, one validation and one test interaction), got "
                f"{self.min_user_interactions}"
            )

    def split(self, log: pl.DataFrame) -> dict:
        """Split a canonical log (user, item, timestamp). Returns the frames ``train``,
        ``valid_train`` (= train), ``valid`` and ``test``, the filtered log, and ``T``/``T_valid``
        as None (there is no cut time)."""
        log = log.with_row_index("_row")
        if self.k_core is not None:
            log = k_core_filter(log, self.k_core)
        log = log.filter(pl.len().over("user") >= self.min_user_interactions)
        if log.height == 0:
            raise DataError(
                f"No user is left after the {self.k_core}-core filter and the "
                f"{self.min_user_interactions}-interaction user filter: the log is empty. Check "
                "the dataset, or lower split.k_core."
            )
        log = log.sort("user", "timestamp", "_row").with_columns(
            pl.int_range(pl.len()).over("user").alias("_pos"), pl.len().over("user").alias("_n")
        )
        pos, n = pl.col("_pos"), pl.col("_n")
        cols = ["user", "item", "timestamp", "_row"]
        test = log.with_columns((pos == n - 1).alias("is_target")).select(*cols, "is_target")
        valid = log.filter(pos < n - 1).with_columns((pos == n - 2).alias("is_target")).select(
            *cols, "is_target")
        train = log.filter(pos < n - 2).select(cols)
        return {"T": None, "train": train, "test": test, "T_valid": None, "valid": valid,
                "valid_train": train, "filtered": log.select(cols), "protocol": "loom"}


PROTOCOLS: dict[str, type] = {"global_temporal": GlobalTemporalSplit, "loom": LeaveOneOutSplit}


def make_split(split_config: dict | None = None) -> GlobalTemporalSplit | LeaveOneOutSplit:
    """The splitter a config's ``split:`` section asks for: ``protocol`` (``global_temporal`` by
    default, or ``loom``) picks the class, the other keys are its parameters."""
    config = dict(split_config or {})
    protocol = config.pop("protocol", "global_temporal")
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"split.protocol: unknown protocol {protocol!r}; use one of {sorted(PROTOCOLS)}."
        )
    cls = PROTOCOLS[protocol]
    allowed = sorted(cls.__dataclass_fields__)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ConfigError(
            f"split: key(s) {unknown} do not apply to protocol {protocol!r}; its keys are "
            f"{['protocol'] + allowed}."
        )
    try:
        return cls(**config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _indexed(df: pl.DataFrame | None, item_map: pl.DataFrame,
             user_map: pl.DataFrame) -> pl.DataFrame | None:
    """``df`` with its raw user and item ids replaced by their training indices (-1: unseen)."""
    if df is None:
        return None
    cols = ["user", "item", "timestamp"] + (["is_target"] if "is_target" in df.columns else [])
    df = (
        df.join(item_map, on="item", how="left", maintain_order="left")
        .join(user_map, on="user", how="left", maintain_order="left")
        .with_columns(
            pl.col("item_idx").cast(pl.Int64).fill_null(-1).alias("item"),
            pl.col("user_idx").cast(pl.Int64).fill_null(-1).alias("user"),
            pl.col("timestamp").cast(pl.Int64),
        )
    )
    return df.select(cols)


def index_split(parts: dict) -> dict:
    """Map raw ids to contiguous indices built on the training part.

    Returns ``train``/``test``/``valid`` frames with int64 ``user``/``item`` indices (test or
    valid items unseen in train become -1), ``item_ids``/``user_ids`` (index -> raw id) and the
    split summary.
    """
    train = parts["train"]
    item_ids = train.select(pl.col("item").unique().sort())
    user_ids = train.select(pl.col("user").unique().sort())
    item_map = item_ids.with_row_index("item_idx")
    user_map = user_ids.with_row_index("user_idx")

    def index(df: pl.DataFrame | None) -> pl.DataFrame | None:
        return _indexed(df, item_map, user_map)

    test, valid = parts["test"], parts["valid"]
    filtered = parts["filtered"]
    summary = {
        "users": int(filtered["user"].n_unique()),
        "items": int(filtered["item"].n_unique()),
        "interactions": int(filtered.height),
        "train_users": int(user_ids.height),
        "train_items": int(item_ids.height),
        "train_interactions": int(train.height),
        "test_users": int(test["user"].n_unique()),
        "test_targets_unseen_item": _unseen_targets(test, item_map),
        "validation_users": int(valid["user"].n_unique()) if valid is not None else 0,
        "T": parts["T"],
        "T_valid": parts["T_valid"],
        "protocol": parts.get("protocol", "global_temporal"),
    }
    return {
        "train": index(train),
        "test": index(test),
        "valid": index(valid),
        "item_ids": item_ids,
        "user_ids": user_ids,
        "summary": summary,
    }


def _unseen_targets(test: pl.DataFrame, item_map: pl.DataFrame) -> int:
    return int(test.filter(pl.col("is_target")).join(item_map, on="item", how="anti").height)


# ----------------------------------------------------------------------------- out of core

EMPTY_SPLIT = {"user": pl.Int64, "item": pl.Int64, "timestamp": pl.Int64, "is_target": pl.Boolean}
#: a value range holding at most this many timestamps is read whole by ``kth_value``
_SELECT_ROWS = 2_000_000


def kth_value(ts: pl.LazyFrame, k: int, n: int, path: Path, lo: int | None = None,
              hi: int | None = None) -> int:
    """The ``k``-th smallest (from 0) of the ``n`` values of ``ts``'s ``timestamp`` column (of
    those in [``lo``, ``hi``] where given), exactly, holding at most ``_SELECT_ROWS`` values or a
    65,536-bin histogram: the value range is narrowed by a histogram of the values in it until
    few enough are left to sort."""
    t = pl.col("timestamp")
    if lo is None or hi is None:
        lo, hi = (int(v) for v in collect(ts.select(t.min(), t.max().alias("hi")), path).row(0))
    while n > _SELECT_ROWS and lo < hi:
        width = 1 << max((hi - lo).bit_length() - 16, 0)
        hist = collect(ts.filter(t.is_between(lo, hi)).group_by(((t - lo) // width).alias("bin"))
                       .len(), path).sort("bin")
        cum = hist["len"].cum_sum()
        i = int((cum <= k).sum())  # the first bin whose cumulative count passes k
        k -= int(cum[i - 1]) if i else 0
        n = int(hist["len"][i])
        b = int(hist["bin"][i])
        lo, hi = lo + b * width, min(hi, lo + (b + 1) * width - 1)
    if lo == hi:
        return lo
    values = collect(ts.filter(t.is_between(lo, hi)), path)["timestamp"].sort()
    return int(values[k])


class OrderStatistics:
    """The order statistics of the values of the ``timestamp`` column of ``files`` (``values``: the
    k-th smallest, from 0, for each k asked) and the count at or below a value, exactly, without
    holding the column: one 65,536-bin histogram of the whole range, kept, finds each k's bin;
    the bins asked for that hold at most ``_SELECT_ROWS`` values are read whole, all in one pass
    and kept, and a larger one is narrowed by ``kth_value``. The split's two cut times take four
    passes over the timestamps (range, histogram, two reads), where a ``kth_value`` per order
    statistic took three each and the train count one more: 13 in all."""

    def __init__(self, files: list[Path], path: Path):
        t = pl.col("timestamp")
        self.ts, self.path = pl.scan_parquet(files).select("timestamp"), path
        lo, hi = collect(self.ts.select(t.min(), t.max().alias("hi")), path).row(0)
        self.lo, self.hi = int(lo), int(hi)
        self.width = 1 << max((self.hi - self.lo).bit_length() - 16, 0)
        hist = count_by(files, self._bin(t).alias("bin"), path)
        self.bins = hist["bin"].to_numpy()  # [non-empty bins] their numbers, ascending
        self.counts = hist["len"].to_numpy().astype(np.int64)
        self.cum = np.cumsum(self.counts)  # values in this bin and those below it
        self.n = int(self.cum[-1])
        self.read: dict[int, np.ndarray] = {}  # bin -> its values, sorted

    def _bin(self, t):
        return (t - self.lo) // self.width

    def _bounds(self, b: int) -> tuple[int, int]:
        return self.lo + b * self.width, min(self.hi, self.lo + (b + 1) * self.width - 1)

    def _read(self, bins) -> None:
        bins = sorted({int(b) for b in bins} - set(self.read))
        if not bins:
            return
        t = pl.col("timestamp")
        inside = pl.any_horizontal([t.is_between(*self._bounds(b)) for b in bins])
        got = collect(self.ts.filter(inside).select(t, self._bin(t).alias("bin")), self.path)
        got = got.sort("bin", "timestamp")
        starts = np.searchsorted(got["bin"].to_numpy(), bins + [bins[-1] + 1])
        values = got["timestamp"].to_numpy()
        for b, a, z in zip(bins, starts[:-1], starts[1:]):
            self.read[b] = values[a:z]

    def values(self, ks) -> list[int]:
        ks = [int(k) for k in ks]
        at = np.searchsorted(self.cum, ks, side="right")  # the bin whose cumulative count passes k
        self._read(self.bins[i] for i in at if self.counts[i] <= _SELECT_ROWS)
        out = []
        for k, i in zip(ks, at):
            k -= int(self.cum[i - 1]) if i else 0
            b = int(self.bins[i])
            if b in self.read:
                out.append(int(self.read[b][k]))
            else:
                out.append(kth_value(self.ts, k, int(self.counts[i]), self.path, *self._bounds(b)))
        return out

    def count_at_most(self, x: float) -> int:
        """How many values are <= ``x``."""
        if x < self.lo:
            return 0
        if x >= self.hi:
            return self.n
        x = int(np.floor(x))
        b = (x - self.lo) // self.width
        i = int(np.searchsorted(self.bins, b))  # bins below b: all theirs
        below = int(self.cum[i - 1]) if i else 0
        if i == len(self.bins) or self.bins[i] != b:
            return below
        if b not in self.read and self.counts[i] <= _SELECT_ROWS:
            self._read([b])
        if b in self.read:
            return below + int(np.searchsorted(self.read[b], x, side="right"))
        t = pl.col("timestamp")
        lo = self._bounds(b)[0]
        return below + int(collect(self.ts.filter(t.is_between(lo, x)).select(pl.len()),
                                   self.path).item())


def linear_quantile(stats: OrderStatistics, n: int, q: float) -> float:
    """``np.quantile(values, q)`` (its default "linear" method, the same float operations) of
    the ``n`` smallest values of ``stats`` (all of them, or those at or below a cut: the k-th
    smallest of those is the k-th smallest of all, for k < n), without holding them: the two
    order statistics it interpolates."""
    virtual = float(n - 1) * q
    if virtual >= n - 1:
        return float(stats.values([n - 1])[0])
    prev = int(np.floor(virtual))
    gamma = virtual - prev
    a, b = stats.values([prev, prev + 1])
    if gamma == 0:
        b = a
    diff = float(b - a)
    return float(a + diff * gamma) if gamma < 0.5 else float(b - diff * (1 - gamma))


def _cut_sorted(log: pl.DataFrame, T: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``GlobalTemporalSplit.cut_at`` of a log sorted by (user, time, row order), in one pass
    without group-bys: a user's first row holds its earliest time, its last row its latest
    (and is its target); the same frames (the out-of-core tests compare the bytes)."""
    t = pl.col("timestamp")
    flags = log.select(
        first=pl.col("user").ne_missing(pl.col("user").shift(1)).fill_null(True),
        last=pl.col("user").ne_missing(pl.col("user").shift(-1)).fill_null(True))
    group = flags["first"].cum_sum() - 1  # [rows] the user's number
    ends = log.select(
        lo=t.filter(flags["first"]).gather(group), hi=t.filter(flags["last"]).gather(group))
    spanning = (ends["lo"] <= T) & (ends["hi"] > T)
    before = log.filter(t <= T)
    evaluation = log.with_columns(flags["last"].alias("is_target")).filter(spanning)
    return before, evaluation


def split_to_folder(prepared: str | Path, split_config: dict | None, folder: str | Path,
                    extra_summary: dict | None = None, *, bucket_rows: int = BUCKET_ROWS) -> dict:
    """Split the prepared log ``prepared`` as ``split_config`` says and save it in ``folder``
    (the files of ``recbench.data.dataset.save_split``, meta.json last); return the summary
    (with ``extra_summary``'s keys, e.g. prepare's report).

    The global temporal split runs out of core: the log is streamed into buckets of whole users
    (each about ``bucket_rows`` rows, in user order), T and T_valid are exact quantiles found
    by histograms (``linear_quantile``), and each bucket is cut and indexed in memory and
    appended; the peak is one bucket and the per-user and per-item arrays. Its files are the
    same, byte for byte, as ``index_split(GlobalTemporalSplit(...).split(log))`` saved. The
    LOOM protocol's iterative k-core is done in memory."""
    prepared, folder = Path(prepared), Path(folder)
    splitter = make_split(split_config)
    if not isinstance(splitter, GlobalTemporalSplit):
        from recbench.data.dataset import save_split  # (torch: only where it is needed)

        indexed = index_split(splitter.split(pl.read_parquet(prepared)))
        indexed["summary"].update(extra_summary or {})
        save_split(indexed, folder)
        return indexed["summary"]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".split.", dir=folder) as tmp:
        summary = _split_buckets(splitter, prepared, Path(tmp), folder, bucket_rows)
        summary.update(extra_summary or {})
        write_json(summary, folder / "meta.json")  # written last: marks a complete split
    return summary


def _split_buckets(splitter: GlobalTemporalSplit, prepared: Path, tmp: Path, folder: Path,
                   bucket_rows: int) -> dict:
    log = pl.scan_parquet(prepared)
    per_user = count_by([prepared], "user", prepared)
    per_user = per_user.filter(pl.col("len") >= splitter.min_user_interactions)
    n = int(per_user["len"].sum())
    if n == 0:
        raise DataError(
            f"No user has at least {splitter.min_user_interactions} interactions: the log is "
            "empty after filtering. Check the dataset, or lower split.min_user_interactions."
        )
    # whole users in user order, a bucket starting wherever the rows before it pass bucket_rows;
    # bin_intervals and is_in are elementwise, so the streaming sink keeps the file's row order
    # in each bucket (a join would not)
    bucket = (pl.col("len").cum_sum() - pl.col("len")) // bucket_rows
    starts = per_user.filter(bucket != bucket.shift(1).fill_null(-1))["user"]
    kept = log.filter(pl.col("user").is_in(per_user["user"].implode()))
    (tmp / "buckets").mkdir()
    if len(starts) == 1:
        streamed(prepared, lambda: kept.sink_parquet(tmp / "buckets" / "0.parquet",
                                                         compression=SCRATCH))
        files = [tmp / "buckets" / "0.parquet"]
    else:
        streamed(prepared, lambda: kept.with_columns(
            pl.col("user").bin_intervals(starts[1:], labels=False).alias("_b")).sink_parquet(
                pl.PartitionBy(tmp / "buckets", key="_b", include_key=False), mkdir=True,
                compression=SCRATCH))
        files = sorted(tmp.glob("buckets/_b=*/*.parquet"),
                       key=lambda f: (int(f.parent.name.split("=")[1]), f.name))
    del per_user
    stats = OrderStatistics(files, prepared)
    T = linear_quantile(stats, n, splitter.quantile)
    n_train = stats.count_at_most(T)
    T_v = None
    if splitter.valid_quantile is not None:  # (of the train timestamps: the n_train smallest)
        T_v = linear_quantile(stats, n_train, splitter.valid_quantile)
    del stats
    train = pl.col("timestamp") <= T
    item_ids = count_by(files, "item", prepared, where=train).select("item")
    user_ids = count_by(files, "user", prepared, where=train).select("user")
    item_map = item_ids.with_row_index("item_idx")
    user_map = user_ids.with_row_index("user_idx")
    keys = ("train", "test", "valid")
    counts = dict.fromkeys(("users", "test_users", "unseen", "validation_users"), 0)
    idx = [pl.col("item_idx").cast(pl.Int64).fill_null(-1).alias("item"),
           pl.col("user_idx").cast(pl.Int64).fill_null(-1).alias("user"),
           pl.col("timestamp").cast(pl.Int64)]
    for i, f in enumerate(files):
        # (user, time, row order): a stable sort keeps the file's order among ties, as _row does
        b = pl.read_parquet(f)
        order = packed_key(b, ["user", "timestamp"])
        b = b.sort(["user", "timestamp"] if order is None else order, maintain_order=True)
        del order
        counts["users"] += b["user"].n_unique()
        # indexed once per bucket (as _indexed does each part), the raw user kept for the cut
        b = (b.join(item_map, on="item", how="left", maintain_order="left")
             .join(user_map, on="user", how="left", maintain_order="left"))
        train, test = _cut_sorted(b, T)
        valid = _cut_sorted(train, T_v)[1] if T_v is not None else None
        counts["test_users"] += test["user"].n_unique()
        counts["unseen"] += test.filter(pl.col("is_target") & pl.col("item_idx").is_null()).height
        counts["validation_users"] += valid["user"].n_unique() if valid is not None else 0
        del b
        for key, df in zip(keys, (train, test, valid)):
            if df is None:
                df = pl.DataFrame(schema=EMPTY_SPLIT)
            else:
                df = df.with_columns(idx).select(
                    ["user", "item", "timestamp"] + (["is_target"] if key != "train" else []))
            (tmp / key).mkdir(exist_ok=True)
            df.write_parquet(tmp / key / f"{i:06d}.parquet", compression=SCRATCH)
    if counts["test_users"] == 0:
        raise DataError(
            f"No user has interactions on both sides of T={T:g}: the test split is empty. "
            "The log's timestamps may be constant, or users too short."
        )
    for key in keys:
        with atomic_path(folder / f"{key}.parquet") as out:
            parts = sorted((tmp / key).glob("*.parquet"))
            streamed(prepared, lambda: pl.scan_parquet(parts).sink_parquet(out))
    write_parquet(item_ids, folder / "items.parquet")
    write_parquet(user_ids, folder / "users.parquet")
    items = distinct(files, "item", prepared)
    return {
        "users": int(counts["users"]),
        "items": int(items),
        "interactions": n,
        "train_users": int(user_ids.height),
        "train_items": int(item_ids.height),
        "train_interactions": n_train,
        "test_users": int(counts["test_users"]),
        "test_targets_unseen_item": int(counts["unseen"]),
        "validation_users": int(counts["validation_users"]),
        "T": T,
        "T_valid": T_v,
        "protocol": "global_temporal",
    }
