"""Prepare + split time and peak memory for a large download-free log, against a bare
read-sort-write of the same file.

    python benchmarks/bench_data.py [--rows 10000000]

Writes a random log (power-law items) as a custom-dataset parquet, then, in a fresh process,
times the workflow's path: parse it as a custom dataset and save the prepared log
(``prepare_to``, with its memory check), then the global temporal split, indexed and saved
(``split_to_folder``, out of core). The bare
reference, in another fresh process, reads the same file with polars, sorts it by time and
writes it back: the least any data layer does with a log. Peaks are each process's resident set
above what it held before the work (VmHWM; ``_common.peak_rss_bytes``). Goal: at most 10 s per
million rows; ``prepare``'s up-front estimate (``recbench.data.prepare.parse_memory_bytes``)
must bound its measured peak.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import (GiB, MiB, current_rss_bytes, in_fresh_process, peak_rss_bytes,
                                reset_peak_rss)

SECONDS_PER_MILLION = 10.0  # goal: prepare + split at most this per million rows
YAMBDA_500M_ROWS = 500_000_000


def make_log(path: str, rows: int, users: int | None = None, items: int | None = None,
             seed: int = 0) -> dict:
    """Write a random (uid, iid, ts) parquet of ``rows`` rows; users = rows / 30, items = rows / 50."""
    import polars as pl

    from recbench.io import write_parquet

    users, items = users or max(rows // 30, 1), items or max(rows // 50, 1)
    rng = np.random.default_rng(seed)
    log = pl.DataFrame({"uid": rng.integers(0, users, rows),
                        "iid": (rng.zipf(1.3, rows) - 1) % items,
                        "ts": rng.integers(0, 10**9, rows)})
    write_parquet(log, path)
    return {"rows": rows, "users": users, "items": items, "file_bytes": Path(path).stat().st_size}


def prepare_and_split(path: str, out: str) -> dict:
    """The workflow's prepare and split jobs on ``path`` (``prepare_to``, ``split_to_folder``);
    seconds and peak bytes above the starting resident set."""
    from recbench.data.prepare import parse_memory_bytes, prepare_to, uncompressed_bytes
    from recbench.data.split import split_to_folder

    out = Path(out)
    spec = {"path": path, "columns": {"user": "uid", "item": "iid", "timestamp": "ts"}}
    reset_peak_rss()
    base = current_rss_bytes()
    t0 = time.perf_counter()
    report = prepare_to("bench", spec, path, out / "prepared.parquet")
    prepare_peak = peak_rss_bytes() - base
    t1 = time.perf_counter()
    summary = split_to_folder(out / "prepared.parquet", {}, out / "split", {"prepare": report})
    t2 = time.perf_counter()
    return {"prepare_s": t1 - t0, "split_s": t2 - t1, "total_s": t2 - t0,
            "prepare_peak_bytes": prepare_peak, "peak_bytes": peak_rss_bytes() - base,
            "uncompressed_bytes": uncompressed_bytes(path),
            "parse_estimate_bytes": parse_memory_bytes(path),
            "test_users": summary["test_users"],
            "validation_users": summary["validation_users"]}


def bare_read_sort_write(path: str, out: str) -> dict:
    """polars: read the log, sort it by time, write it; seconds and peak bytes."""
    import polars as pl

    reset_peak_rss()
    base = current_rss_bytes()
    t0 = time.perf_counter()
    pl.read_parquet(path).sort("ts").write_parquet(Path(out) / "bare.parquet")
    return {"total_s": time.perf_counter() - t0, "peak_bytes": peak_rss_bytes() - base}


def measure(rows: int = 10_000_000, timeout: float | None = None) -> dict:
    """Make the log here, run both paths in fresh processes; times, peaks and ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        log = make_log(str(Path(tmp) / "log.parquet"), rows)
        ours = in_fresh_process(prepare_and_split, timeout=timeout,
                                path=str(Path(tmp) / "log.parquet"), out=tmp)
        bare = in_fresh_process(bare_read_sort_write, timeout=timeout,
                                path=str(Path(tmp) / "log.parquet"), out=tmp)
    r = {**log, "ours": ours, "bare": bare, "goal_s": SECONDS_PER_MILLION * rows / 1e6}
    if "error" not in ours and "error" not in bare:
        r["time_ratio"] = ours["total_s"] / bare["total_s"]
        r["memory_ratio"] = ours["peak_bytes"] / max(bare["peak_bytes"], 1)
        r["estimate_ratio"] = ours["prepare_peak_bytes"] / ours["parse_estimate_bytes"]
        r["peak_bytes_per_row"] = ours["peak_bytes"] / rows
        r["extrapolated_500m_bytes"] = r["peak_bytes_per_row"] * YAMBDA_500M_ROWS
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    r = measure(args.rows)
    print(f"rows={r['rows']:,} users={r['users']:,} items={r['items']:,} "
          f"(parquet {r['file_bytes'] / MiB:,.0f} MiB)")
    for name in ("ours", "bare"):
        if "error" in r[name]:
            print(f"{name}: failed: {r[name]['error']}")
    if "time_ratio" not in r:
        return
    o, b = r["ours"], r["bare"]
    print(f"prepare: {o['prepare_s']:.2f} s   split+index+save: {o['split_s']:.2f} s   total: "
          f"{o['total_s']:.2f} s (goal < {r['goal_s']:.0f} s: "
          f"{'OK' if o['total_s'] < r['goal_s'] else 'MISSED'})")
    print(f"bare read+sort+write: {b['total_s']:.2f} s; ratio {r['time_ratio']:.2f}")
    print(f"peak memory: {o['peak_bytes'] / MiB:,.0f} MiB ({r['peak_bytes_per_row']:.0f} bytes/row; "
          f"bare {b['peak_bytes'] / MiB:,.0f} MiB); prepare {o['prepare_peak_bytes'] / MiB:,.0f} MiB "
          f"of its {o['parse_estimate_bytes'] / MiB:,.0f} MiB estimate")
    if args.rows >= 1_000_000:  # below, fixed costs dominate the bytes per row
        print(f"at 500M rows: about {r['extrapolated_500m_bytes'] / GiB:,.0f} GiB")
    print(f"test users: {o['test_users']:,}  validation users: {o['validation_users']:,}")


if __name__ == "__main__":
    main()
