"""Indexed data as models see it: a training log, evaluation sets of histories, padded batches.

A model never touches raw ids or files: ``load_split`` gives a ``SplitData`` whose ``train`` is an
``Interactions`` log (user, item and time arrays, sorted by user then time) and whose ``test`` and
``valid`` are ``EvalSet``s (one history and one target per user). ``EvalSet.batches`` yields
``HistoryBatch``es: histories as a left-padded [B, L] tensor with pad index ``n_items``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from recbench.errors import DataError
from recbench.io import write_json, write_parquet

SPLIT_FILES = ("train.parquet", "test.parquet", "valid.parquet", "items.parquet", "users.parquet",
               "meta.json")


@dataclass
class Interactions:
    """A training log in index space, sorted by (user, time)."""

    users: np.ndarray  # [n] int64
    items: np.ndarray  # [n] int64
    timestamps: np.ndarray  # [n] int64
    n_users: int
    n_items: int

    def __len__(self) -> int:
        return len(self.users)

    def csr(self, binary: bool = True) -> sp.csr_matrix:
        """users x items matrix; repeated interactions count once when ``binary``."""
        m = sp.csr_matrix(
            (np.ones(len(self), dtype=np.float32), (self.users, self.items)),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def popularity(self) -> np.ndarray:
        """Interactions per item, [n_items]."""
        return np.bincount(self.items, minlength=self.n_items)

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets [n_users + 1], items): user u's items in time order are items[offsets[u]:offsets[u+1]]."""
        counts = np.bincount(self.users, minlength=self.n_users)
        return np.concatenate([[0], np.cumsum(counts)]), self.items

    def until(self, t: float) -> "Interactions":
        keep = self.timestamps <= t
        return Interactions(self.users[keep], self.items[keep], self.timestamps[keep],
                            self.n_users, self.n_items)


@dataclass
class HistoryBatch:
    """A batch of input histories, left-padded with ``pad`` (= n_items)."""

    items: torch.Tensor  # [B, L] int64
    lengths: torch.Tensor  # [B] int64, number of real items (<= L)
    users: torch.Tensor  # [B] int64 training user index
    pad: int

    @property
    def mask(self) -> torch.Tensor:  # [B, L] True at real items
        return self.items != self.pad

    def multi_hot(self) -> torch.Tensor:
        """[B, n_items] float: 1 where the item occurs in the history (repeats count once)."""
        out = torch.zeros(len(self.items), self.pad + 1, device=self.items.device)
        out.scatter_(1, self.items, 1.0)
        return out[:, : self.pad]

    def to(self, device) -> "HistoryBatch":
        return HistoryBatch(self.items.to(device), self.lengths.to(device),
                            self.users.to(device), self.pad)


@dataclass
class EvalSet:
    """One history and one target per evaluated user."""

    users: np.ndarray  # [n] training user index
    offsets: np.ndarray  # [n + 1] into items
    items: np.ndarray  # history items, known ones only, in time order
    targets: np.ndarray  # [n] item index, -1 for an item never seen in training
    n_items: int

    def __len__(self) -> int:
        return len(self.users)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, start: int, stop: int, max_len: int | None = None) -> HistoryBatch:
        """Histories of users [start, stop), the last ``max_len`` items of each (all if None)."""
        return self.take(np.arange(start, stop), max_len)

    def take(self, rows: np.ndarray, max_len: int | None = None) -> HistoryBatch:
        """Histories of the users at ``rows`` [B], the last ``max_len`` items of each (all if
        None), left-padded to the longest of them."""
        full = self.lengths[rows]
        L = int(full.max()) if len(full) else 0
        L = max(1, min(L, max_len) if max_len else L)
        lens = np.minimum(full, L)
        B = len(rows)
        out = np.full((B, L), self.n_items, dtype=np.int64)
        rows_out = np.repeat(np.arange(B), lens)
        # position of each kept item inside its own history tail
        within = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        src = np.repeat(self.offsets[rows + 1] - lens, lens) + within
        out[rows_out, L - np.repeat(lens, lens) + within] = self.items[src]
        return HistoryBatch(
            items=torch.from_numpy(out),
            lengths=torch.from_numpy(lens.astype(np.int64)),
            users=torch.from_numpy(self.users[rows].astype(np.int64)),
            pad=self.n_items,
        )

    def by_length(self, max_len: int | None = None) -> np.ndarray:
        """[n] the users ordered by the length of the history a model reads (at most
        ``max_len`` items), stable: batches of them hold histories of similar length."""
        lengths = self.lengths if max_len is None else np.minimum(self.lengths, max_len)
        return np.argsort(lengths, kind="stable")

    def batches(self, batch_size: int, max_len: int | None = None) -> Iterator[tuple[int, HistoryBatch]]:
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            yield start, self.batch(start, stop, max_len)


def eval_set_from_frame(df: pl.DataFrame, n_items: int) -> EvalSet:
    """Build an EvalSet from an indexed frame sorted by (user, time) with an ``is_target`` flag."""
    target = df.filter(pl.col("is_target"))
    hist = df.filter(~pl.col("is_target") & (pl.col("item") >= 0))
    users = target["user"].to_numpy()
    counts = hist.group_by("user").len()
    lens = (
        target.select("user").join(counts, on="user", how="left", maintain_order="left")["len"]
        .fill_null(0).to_numpy().astype(np.int64)
    )
    # hist rows are grouped by user in the same user order as target rows
    return EvalSet(
        users=users.astype(np.int64),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        items=hist["item"].to_numpy().astype(np.int64),
        targets=target["item"].to_numpy().astype(np.int64),
        n_items=n_items,
    )


@dataclass
class SplitData:
    """Everything a model and the evaluator need for one dataset."""

    train: Interactions
    test: EvalSet | None  # None when loaded with test=False
    valid: EvalSet | None
    valid_train: Interactions | None
    item_ids: pl.DataFrame
    user_ids: pl.DataFrame
    summary: dict

    @property
    def n_items(self) -> int:
        return self.train.n_items

    @property
    def n_users(self) -> int:
        return self.train.n_users

    def for_tuning(self) -> "SplitData":
        """The validation view: fit on train up to T_valid, evaluate on the validation users."""
        if self.valid is None:
            raise DataError("This split has no validation part (split.valid_quantile is null).")
        return SplitData(self.valid_train, self.valid, None, None, self.item_ids, self.user_ids,
                         self.summary)


def save_split(indexed: dict, folder: str | Path) -> None:
    folder = Path(folder)
    for key in ("train", "test", "valid"):
        df = indexed[key]
        if df is None:
            df = pl.DataFrame(schema={"user": pl.Int64, "item": pl.Int64, "timestamp": pl.Int64,
                                      "is_target": pl.Boolean})
        write_parquet(df, folder / f"{key}.parquet")
    write_parquet(indexed["item_ids"], folder / "items.parquet")
    write_parquet(indexed["user_ids"], folder / "users.parquet")
    write_json(indexed["summary"], folder / "meta.json")  # written last: marks a complete split


#: the split files a validation-only job reads (``load_split(folder, test=False)``)
VALIDATION_FILES = tuple(f for f in SPLIT_FILES if f != "test.parquet")


def load_split(folder: str | Path, test: bool = True) -> SplitData:
    """The split saved in ``folder``. ``test=False`` never opens test.parquet (its ``test`` is
    None): a job that must not see the test users (a reading candidate, recbench/
    reading_selection.py) reads only the files it declares."""
    folder = Path(folder)
    missing = [f for f in (SPLIT_FILES if test else VALIDATION_FILES) if not (folder / f).exists()]
    if missing:
        raise DataError(f"{folder}: split file(s) {missing} missing. Re-run the split rule.")
    summary = json.loads((folder / "meta.json").read_text())
    item_ids = pl.read_parquet(folder / "items.parquet")
    user_ids = pl.read_parquet(folder / "users.parquet")
    n_items, n_users = item_ids.height, user_ids.height
    tr = pl.read_parquet(folder / "train.parquet")
    train = Interactions(tr["user"].to_numpy(), tr["item"].to_numpy(), tr["timestamp"].to_numpy(),
                         n_users, n_items)
    test = eval_set_from_frame(pl.read_parquet(folder / "test.parquet"), n_items) if test else None
    valid_df = pl.read_parquet(folder / "valid.parquet")
    if summary.get("protocol") == "loom":
        # leave-one-out: each validation target follows its user's training rows, so the
        # validation view fits on the whole training part
        has_valid = valid_df.height > 0
        valid_train = train if has_valid else None
    else:
        has_valid = summary.get("T_valid") is not None and valid_df.height > 0
        valid_train = train.until(summary["T_valid"]) if has_valid else None
    return SplitData(
        train=train,
        test=test,
        valid=eval_set_from_frame(valid_df, n_items) if has_valid else None,
        valid_train=valid_train,
        item_ids=item_ids,
        user_ids=user_ids,
        summary=summary,
    )
