"""Prepare + split beyond the paper's scale: Yambda-shaped flat parquet files of 10M, 100M and
500M rows, each prepared and split in a fresh process, out of core.

    python benchmarks/bench_yambda_scale.py [--rows 10000000,100000000,500000000] [--tmp /tmp]

Each file has Yambda's flat listens layout (uid, timestamp, item_id uint32, is_organic uint8,
played_ratio_pct uint16), users and items in the 500M release's proportions (100,000 users and
3.0M items per 466.5M listens), items drawn from a Zipf law (heavy-tailed popularity, as real
listens), users and timestamps uniform, rows in random order (no locality to lean on). The
dataset is ``source: yambda, event: listens, min_played_ratio: null`` (every row counts: the
most work). In a fresh process: ``prepare_to`` (streamed parse, duplicate count in buckets),
then ``split_to_folder`` (the global temporal split in user buckets, indexed, saved). Peaks are
the whole process's resident set (VmHWM, interpreter and imports included); disk is the work
folder's size (raw file, prepared log, buckets, split), sampled every second, at its largest.
The folder is deleted after each size. Goals: peak <= 6 GiB at 500M rows; the peak's straight
line through the measured sizes, extrapolated to 4.65B rows (Yambda-5B listens), <= 24 GiB;
<= 1 s per million rows.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks._common import GiB, in_fresh_process

PEAK_GOAL_500M = 6 * GiB
PEAK_GOAL_5B = 24 * GiB
SECONDS_PER_MILLION = 1.0
FIVE_B_LISTENS = 4_650_000_000
#: the 500M release: users and items per listen
USERS_PER_ROW = 100_000 / 466_500_000
ITEMS_PER_ROW = 3_000_000 / 466_500_000
CHUNK = 10_000_000


def make_flat(path: str, rows: int, seed: int = 0, zipf: float = 1.3) -> dict:
    """Write a Yambda-shaped listens file of ``rows`` rows, ``CHUNK`` rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    users, items = max(int(rows * USERS_PER_ROW), 10), max(int(rows * ITEMS_PER_ROW), 100)
    rng = np.random.default_rng(seed)
    schema = pa.schema([("uid", pa.uint32()), ("timestamp", pa.uint32()),
                        ("item_id", pa.uint32()), ("is_organic", pa.uint8()),
                        ("played_ratio_pct", pa.uint16())])
    t0 = time.perf_counter()
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            writer.write_table(pa.table({
                "uid": rng.integers(0, users, n, dtype=np.uint32),
                "timestamp": rng.integers(0, 26_000_000, n, dtype=np.uint32),
                "item_id": ((rng.zipf(zipf, n) - 1) % items).astype(np.uint32),
                "is_organic": rng.integers(0, 2, n, dtype=np.uint8),
                "played_ratio_pct": rng.integers(0, 101, n, dtype=np.uint16),
            }, schema=schema))
    return {"rows": rows, "users": users, "items": items, "file_bytes": Path(path).stat().st_size,
            "generate_s": time.perf_counter() - t0}


def prepare_and_split(raw: str, work: str) -> dict:
    """The workflow's prepare and split jobs on ``raw``, timed."""
    from recbench.data.prepare import prepare_to
    from recbench.data.split import split_to_folder

    work = Path(work)
    spec = {"source": "yambda", "event": "listens", "min_played_ratio": None,
            "check_release": False}
    t0 = time.perf_counter()
    report = prepare_to("bench", spec, raw, work / "prepared.parquet")
    t1 = time.perf_counter()
    summary = split_to_folder(work / "prepared.parquet", {}, work / "split", {"prepare": report})
    t2 = time.perf_counter()
    return {"prepare_s": t1 - t0, "split_s": t2 - t1, "total_s": t2 - t0,
            "prepared_bytes": (work / "prepared.parquet").stat().st_size,
            "split_bytes": sum(f.stat().st_size for f in (work / "split").iterdir()),
            "summary": summary}


def _folder_bytes(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*"):
        try:
            if f.is_file():
                total += f.stat().st_blocks * 512
        except OSError:  # removed while walking (a bucket file)
            pass
    return total


class DiskSampler(threading.Thread):
    """The largest size of ``folder`` seen, sampled every ``every`` seconds."""

    def __init__(self, folder: Path, every: float = 1.0):
        super().__init__(daemon=True)
        self.folder, self.every, self.peak = folder, every, 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, _folder_bytes(self.folder))
            self._done.wait(self.every)

    def stop(self) -> int:
        self._done.set()
        self.join()
        self.peak = max(self.peak, _folder_bytes(self.folder))
        return self.peak


def measure_one(rows: int, tmp: str | None = None, timeout: float | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="yambda-scale-", dir=tmp))
    try:
        gen = make_flat(str(work / "listens.parquet"), rows)
        disk = DiskSampler(work)
        disk.start()
        r = in_fresh_process(prepare_and_split, timeout=timeout, raw=str(work / "listens.parquet"),
                             work=str(work))
        r["disk_peak_bytes"] = disk.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r.update(gen)
    r["cleaned_up"] = not work.exists()
    if "error" not in r:
        r["seconds_per_million"] = r["total_s"] / (rows / 1e6)
    return r


def extrapolate(points: list[dict], rows: int) -> float | None:
    """The peak at ``rows`` on the least-squares line through the measured (rows, peak)."""
    ok = [p for p in points if "error" not in p]
    if len(ok) < 2:
        return None
    slope, intercept = np.polyfit([p["rows"] for p in ok],
                                  [p["peak_rss_bytes"] for p in ok], 1)
    return float(intercept + slope * rows)


def measure(sizes=(10_000_000, 100_000_000, 500_000_000), tmp: str | None = None,
            log=print) -> dict:
    points = []
    for rows in sizes:
        r = measure_one(rows, tmp)
        points.append(r)
        if "error" in r:
            log(f"  {rows:,} rows: failed: {r['error']}")
        else:
            log(f"  {rows:,} rows: {r['total_s']:.0f} s ({r['seconds_per_million']:.2f} s/M rows; "
                f"prepare {r['prepare_s']:.0f} s, split {r['split_s']:.0f} s), peak "
                f"{r['peak_rss_bytes'] / GiB:.2f} GiB, disk {r['disk_peak_bytes'] / GiB:.1f} GiB")
    out = {"points": points, "extrapolated_rows": FIVE_B_LISTENS,
           "extrapolated_peak_bytes": extrapolate(points, FIVE_B_LISTENS)}
    at_500m = [p for p in points if p["rows"] == 500_000_000 and "error" not in p]
    out["peak_500m_bytes"] = at_500m[0]["peak_rss_bytes"] if at_500m else None
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [p for p in results["points"] if "error" not in p]
    rows = np.array([p["rows"] for p in ok], dtype=float)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(rows / 1e6, [p["peak_rss_bytes"] / GiB for p in ok], "o-", label="measured")
    if results["extrapolated_peak_bytes"] is not None:
        a.plot([rows[0] / 1e6, FIVE_B_LISTENS / 1e6],
               [extrapolate(ok, rows[0]) / GiB, results["extrapolated_peak_bytes"] / GiB], "--",
               label="least-squares line")
    a.axhline(24, color="r", lw=0.8, label="24 GiB")
    a.set(xscale="log", xlabel="rows (millions)", ylabel="peak RSS (GiB)",
          title="prepare + split, peak memory")
    a.legend()
    b.plot(rows / 1e6, [p["seconds_per_million"] for p in ok], "o-")
    b.axhline(SECONDS_PER_MILLION, color="r", lw=0.8, label="goal")
    b.set(xscale="log", xlabel="rows (millions)", ylabel="seconds per million rows",
          title="prepare + split, wall time")
    b.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="10000000,100000000,500000000")
    ap.add_argument("--tmp", default=None, help="where the work folders go (default: $TMPDIR)")
    ap.add_argument("--plot", default=None, help="write the plot here (PNG)")
    args = ap.parse_args()
    r = measure([int(x) for x in args.rows.split(",")], args.tmp)
    if r["extrapolated_peak_bytes"] is not None:
        print(f"extrapolated to {FIVE_B_LISTENS:,} rows: "
              f"{r['extrapolated_peak_bytes'] / GiB:.1f} GiB")
    if args.plot:
        plot(r, Path(args.plot))


if __name__ == "__main__":
    main()
