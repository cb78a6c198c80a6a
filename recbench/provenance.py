"""Provenance of a run: what code, config, data, software and hardware produced the results.

``manifest`` gathers, as one JSON-serialisable dict:

- ``git``: the commit of the repository and whether its tree is dirty (None outside git);
- ``config_sha256`` (and the ``config`` itself): SHA-256 of the canonical JSON of the config
  (keys sorted, no whitespace), so two runs with equal hashes ran the same settings;
- ``datasets``: SHA-256 and size of each dataset's raw and prepared files;
- ``prepare``: each dataset's rows read, invalid, dropped and duplicate (prepare's report);
- ``packages``: versions of Python and the key packages (None when one is not installed);
- ``device``: CPU model, and the CUDA device when torch sees one;
- ``seeds``;
- ``jobs``: wall time (and peak memory) of every job, read from Snakemake's benchmark files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

# Distribution names as pip knows them (scikit-learn, not sklearn).
PACKAGES = ("torch", "numpy", "pandas", "polars", "scipy", "implicit", "scikit-learn",
            "snakemake", "optuna")

_CHUNK = 1 << 20


def manifest(
    config: dict,
    dataset_files: dict[str, list[str | os.PathLike]],
    job_benchmarks: list[str | os.PathLike],
    seeds,
    *,
    prepare_reports: dict[str, str | os.PathLike] | None = None,
    repo: str | os.PathLike | None = None,
) -> dict:
    """The provenance record of a run (see the module docstring for its keys).

    config: the Snakemake config as loaded. dataset_files: dataset name -> its files (raw and
    prepared), hashed in the order given. job_benchmarks: Snakemake benchmark TSV files, e.g.
    logs/benchmarks/train/<dataset>/<model>/seed<seed>.tsv; each becomes a job labelled by its
    path below ``benchmarks/`` without ``.tsv`` ("train/<dataset>/<model>/seed<seed>"). seeds:
    the run's seeds. prepare_reports: dataset name -> the JSON report prepare wrote of its
    rows (``recbench.data.prepare.account_rows``). repo: the repository whose commit is recorded
    (default: the current
    directory, which is the workflow's working directory inside a Snakemake job).
    A missing dataset or benchmark file raises FileNotFoundError.
    """
    # where runs are tracked (recbench.tracking) changes no result: not part of the record
    config = {k: v for k, v in config.items() if k != "tracking"}
    return {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(Path.cwd() if repo is None else Path(repo)),
        "config_sha256": config_hash(config),
        "config": json.loads(canonical_json(config)),
        "datasets": {name: [file_record(f) for f in files]
                     for name, files in sorted(dataset_files.items())},
        "prepare": {name: json.loads(Path(f).read_text())
                    for name, f in sorted((prepare_reports or {}).items())},
        "packages": package_versions(),
        "device": device_info(),
        "seeds": [int(s) for s in seeds],
        "jobs": job_times(job_benchmarks),
    }


def canonical_json(obj) -> str:
    """Keys sorted, no whitespace, UTF-8 kept; values JSON lacks (paths, ...) as strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(config: dict) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_record(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"provenance: dataset file {path} does not exist")
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def file_fingerprint(path: str | os.PathLike) -> dict:
    """{"path": resolved, "bytes", "mtime_ns"} of a file, from its metadata alone (no read):
    what tells a changed input file in a params value, at the cost of a stat per plan."""
    path = Path(path)
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(repo: str | os.PathLike) -> dict:
    """{"commit", "dirty", "changes"}: HEAD's hash; whether tracked files outside results/ differ
    from HEAD or untracked, non-ignored files exist (a new baseline module counts); the `git
    status --porcelain` lines. All None outside a git repository (or without git)."""
    repo = Path(repo)
    commit = _git(repo, "rev-parse", "--verify", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "changes": None}
    # results/ is what the run itself rewrites (the committed reports), not a change of the code
    status = _git(repo, "status", "--porcelain", "--", ".", ":(exclude)results")
    changes = None if status is None else [line for line in status.splitlines() if line]
    return {"commit": commit.strip(), "dirty": None if changes is None else bool(changes),
            "changes": changes}


def package_versions(packages=PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a job's or container's share), or
    the machine's count where the OS has none (macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes (MemTotal, MemAvailable, ...); {} where there is none (not Linux)."""
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields = value.split()
            if fields and fields[0].isdigit():
                out[key] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    except OSError:
        pass
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_info() -> dict:
    """CPU model and core count; CUDA device name and count when torch sees a GPU."""
    info = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "cuda": None, "cuda_device_count": 0, "torch_cuda_version": None}
    try:
        import torch
    except ImportError:
        return info
    info["torch_cuda_version"] = torch.version.cuda
    if torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
        info["cuda_device_count"] = torch.cuda.device_count()
    return info


def job_label(path: str | os.PathLike) -> str:
    """logs/benchmarks/train/ds/SASRec/seed0.tsv -> "train/ds/SASRec/seed0": the path below the
    last ``benchmarks`` folder, without the suffix (the whole path when there is none)."""
    parts = Path(path).with_suffix("").parts
    if "benchmarks" in parts:
        i = len(parts) - 1 - parts[::-1].index("benchmarks")
        parts = parts[i + 1:]
    return "/".join(parts)


def _number(value: str | None) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def read_benchmark(path: str | os.PathLike) -> dict:
    """One Snakemake benchmark TSV: wall seconds (`s`), peak RSS in MB (`max_rss`) and CPU
    seconds (`cpu_time`), each the mean over the file's rows (a rule with repeat() has several);
    `repeats` the number of rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"provenance: benchmark file {path} does not exist")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"provenance: {path} is not a Snakemake benchmark file (no `s` column)")

    def mean(col):
        xs = [x for x in (_number(r.get(col)) for r in rows) if x is not None]
        return sum(xs) / len(xs) if xs else None

    return {"s": mean("s"), "max_rss_mb": mean("max_rss"), "cpu_s": mean("cpu_time"),
            "repeats": len(rows), "file": str(path)}


def job_times(job_benchmarks) -> dict[str, dict]:
    """job label -> read_benchmark of its file, sorted by label."""
    jobs = {}
    for path in job_benchmarks:
        label = job_label(path)
        if label in jobs:
            raise ValueError(f"provenance: two benchmark files map to job {label!r}: "
                             f"{jobs[label]['file']} and {path}")
        jobs[label] = read_benchmark(path)
    return dict(sorted(jobs.items()))
