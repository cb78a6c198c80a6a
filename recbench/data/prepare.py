"""Raw file -> canonical parquet (user, item, timestamp), with counts verified against the paper."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from recbench.data.sources import source_of
from recbench.errors import DataError

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


def prepare(name: str, spec: dict, raw_path: str | Path) -> pl.DataFrame:
    """Parse one dataset's raw file into the canonical log and verify it."""
    raw_path = Path(raw_path)
    if not raw_path.exists():
        raise DataError(f"{name}: raw file {raw_path} is missing. Run the download rule first.")
    df = source_of(name, spec).parse(raw_path, spec)
    verify_counts(df, spec.get("expected"), name, raw_path)
    log.info("%s: %s", name, dataset_counts(df))
    return df
