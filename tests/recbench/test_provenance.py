"""Provenance manifest on a throw-away git repository and hand-written files."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess

import numpy as np
import pytest

from recbench.provenance import (config_hash, file_fingerprint, job_label, manifest,
                                 package_versions, read_benchmark)

BENCH = ("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
         "{s}\t0:00:12\t{rss}\t900.0\t500.0\t510.0\t1.00\t2.00\t95.0\t{cpu}\n")
CONFIG = {"seeds": [0, 1], "device": "cpu", "models": {"SVD": {"params": {"rank": 16}}},
          "datasets": {"tiny": {"source": "synthetic"}}}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           "-c", "commit.gpgsign=false", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture()
def run_dir(tmp_path):
    """A git repository with one commit, a dataset's files and two benchmark files."""
    if shutil.which("git") is None:
        pytest.fail("git is not installed; the provenance test needs it", pytrace=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("data/\nlogs/\n")
    (repo / "Snakefile").write_text("# workflow\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    (repo / "data/raw/tiny").mkdir(parents=True)
    (repo / "data/prepared").mkdir(parents=True)
    (repo / "data/raw/tiny/log.csv").write_bytes(b"user,item,ts\n1,2,3\n")
    (repo / "data/prepared/tiny.parquet").write_bytes(bytes(range(256)) * 5000)  # > 1 chunk
    for rel, s, rss, cpu in [("train/tiny/SVD/seed0.tsv", 12.5, 310.2, 20.0),
                             ("prepare/tiny.tsv", 0.75, 95.0, 0.7)]:
        p = repo / "logs/benchmarks" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(BENCH.format(s=s, rss=rss, cpu=cpu))
    return repo


def make(repo, **kw):
    files = {"tiny": [repo / "data/raw/tiny/log.csv", repo / "data/prepared/tiny.parquet"]}
    benches = [repo / "logs/benchmarks/train/tiny/SVD/seed0.tsv",
               repo / "logs/benchmarks/prepare/tiny.tsv"]
    return manifest(CONFIG, files, benches, seeds=[0, 1], repo=repo, **kw)


def test_manifest_of_a_clean_git_repository(run_dir):
    m = make(run_dir)
    json.dumps(m)  # serialisable as is
    assert m["git"] == {"commit": git(run_dir, "rev-parse", "HEAD"), "dirty": False,
                        "changes": []}
    assert m["seeds"] == [0, 1]
    assert m["config"] == CONFIG
    canonical = json.dumps(CONFIG, sort_keys=True, separators=(",", ":"))
    assert m["config_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()

    raw, prepared = m["datasets"]["tiny"]
    for rec, path in [(raw, "data/raw/tiny/log.csv"), (prepared, "data/prepared/tiny.parquet")]:
        data = (run_dir / path).read_bytes()
        assert rec == {"path": str(run_dir / path), "bytes": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()}

    assert list(m["jobs"]) == ["prepare/tiny", "train/tiny/SVD/seed0"]
    job = m["jobs"]["train/tiny/SVD/seed0"]
    assert (job["s"], job["max_rss_mb"], job["cpu_s"], job["repeats"]) == (12.5, 310.2, 20.0, 1)
    assert m["jobs"]["prepare/tiny"]["s"] == 0.75

    assert m["packages"]["python"] == platform.python_version()
    assert m["packages"]["numpy"] == np.__version__
    assert set(m["packages"]) == {"python", "torch", "numpy", "pandas", "polars", "scipy",
                                  "implicit", "scikit-learn", "snakemake", "optuna"}
    assert isinstance(m["device"]["cpu"], str) and m["device"]["cpu"]
    import torch
    if torch.cuda.is_available():
        assert m["device"]["cuda"] == torch.cuda.get_device_name(0)
    else:
        assert m["device"]["cuda"] is None


def test_manifest_records_each_datasets_row_counts(run_dir):
    report = {"rows": 10, "invalid_rows": 2, "on_invalid": "drop", "dropped_invalid": 2,
              "duplicate_rows": 1, "duplicates": "keep", "dropped_duplicates": 0,
              "interactions": 8}
    (run_dir / "data/prepared/tiny.json").write_text(json.dumps(report))
    m = make(run_dir, prepare_reports={"tiny": run_dir / "data/prepared/tiny.json"})
    assert m["prepare"] == {"tiny": report}
    assert make(run_dir)["prepare"] == {}


def test_a_file_fingerprint_changes_with_the_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("u,i,t\n1,2,3\n")
    first = file_fingerprint(path)
    assert first == {"path": str(path.resolve()), "bytes": 12, "mtime_ns": path.stat().st_mtime_ns}
    stat = path.stat()
    path.write_text("u,i,t\n1,2,4\n")  # same size, an older mtime set back
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))
    assert file_fingerprint(path) != first


def test_dirty_tree_and_no_repository(run_dir, tmp_path):
    (run_dir / "Snakefile").write_text("# edited\n")
    m = make(run_dir)
    assert m["git"]["dirty"] is True and m["git"]["changes"] == [" M Snakefile"]
    git(run_dir, "checkout", "--", "Snakefile")
    (run_dir / "mymodel.py").write_text("")  # an untracked module changes results too
    assert make(run_dir)["git"]["dirty"] is True
    (run_dir / "mymodel.py").unlink()
    assert make(run_dir)["git"]["dirty"] is False  # ignored data/ and logs/ never count

    shutil.rmtree(run_dir / ".git")
    assert make(run_dir)["git"] == {"commit": None, "dirty": None, "changes": None}


def test_config_hash_is_canonical():
    a = {"b": 1, "a": {"y": [1, 2], "x": "é"}}
    b = {"a": {"x": "é", "y": [1, 2]}, "b": 1}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "b": 2})


def test_missing_packages_are_none():
    assert package_versions(("no-such-package-recbench",)) == {
        "python": platform.python_version(), "no-such-package-recbench": None}


def test_job_labels_and_benchmark_files(tmp_path):
    assert job_label("logs/benchmarks/train/ml-1m/CREATE/seed2.tsv") == "train/ml-1m/CREATE/seed2"
    assert job_label("/abs/logs/benchmarks/report/table2.tsv") == "report/table2"
    assert job_label("elsewhere/job.tsv") == "elsewhere/job"
    rep = tmp_path / "rep.tsv"  # repeat(): one row per repetition, NA where psutil had nothing
    rep.write_text(BENCH.format(s=1.0, rss="NA", cpu=1.0)
                   + BENCH.format(s=3.0, rss="NA", cpu=2.0).split("\n", 1)[1])
    assert read_benchmark(rep) | {"file": None} == {"s": 2.0, "max_rss_mb": None, "cpu_s": 1.5,
                                                     "repeats": 2, "file": None}


def test_missing_or_bad_files_raise(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.parquet"):
        manifest(CONFIG, {"tiny": [tmp_path / "nothere.parquet"]}, [], [0], repo=run_dir)
    with pytest.raises(FileNotFoundError, match="seed9.tsv"):
        manifest(CONFIG, {}, [tmp_path / "seed9.tsv"], [0], repo=run_dir)
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="no `s` column"):
        manifest(CONFIG, {}, [bad], [0], repo=run_dir)
    with pytest.raises(ValueError, match="two benchmark files map to job"):
        manifest(CONFIG, {}, [run_dir / "logs/benchmarks/prepare/tiny.tsv"] * 2, [0],
                 repo=run_dir)


def test_rewritten_reports_under_results_do_not_make_the_tree_dirty(tmp_path):
    import subprocess

    from recbench.provenance import git_state

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table2.md").write_text("old")
    (tmp_path / "code.py").write_text("x = 1")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (tmp_path / "results" / "table2.md").unlink()  # Snakemake removes an output it reruns
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2")
    assert git_state(tmp_path)["dirty"] is True
