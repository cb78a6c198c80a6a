"""Run a tiny pipeline through a SLURM profile on a real cluster and check what the scheduler did.

    bash tests/cluster/slurm_up.sh            # a one-node cluster on this machine (CI does this)
    python tests/cluster/check_slurm.py       # profiles/slurm + tests/cluster/site, about 5 min

On your own cluster, from a login node, with a site profile of yours (a folder whose config.yaml
fills in profiles/slurm's CHANGE-ME values: partitions, account, memory; see
tests/cluster/site/config.yaml):

    python tests/cluster/check_slurm.py --site my-site-profile

It copies the working tree twice, runs the same tiny config (a synthetic log; PopRnd, SVD and a
small SASRec, two seeds, ``device: auto``) once locally and once with ``--profile profiles/slurm
--workflow-profile <site>``, and checks, from the scheduler's own records (``scontrol show job``,
which keeps a finished job for the cluster's MinJobAge; not from the profile's text):

1. every job of the cluster run is an sbatch job of the cluster (none ran on the login node);
2. each job whose rule declares ``gpu: 1`` (SASRec's tune, train, evaluate) asked for
   ``--gpus=1`` (TresPerJob gres:gpu:1) and ran on the site's GPU partition; every other job
   asked for no GPU;
3. one SASRec train job, cancelled with ``scancel`` mid-training, was resubmitted (the profile's
   ``retries``) and resumed from its checkpoint (its log says ``resuming from``);
4. the cluster run's Table 2 equals the local run's (``recbench.reporting.compare``: every cell
   exactly, but SVD's, whose BLAS kernels depend on the CPU).

Exit status 0 when all hold; otherwise each failed check is printed. ``--keep DIR`` keeps both
copies there (with their logs and ``.snakemake/slurm_logs``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "workflow"), str(ROOT / "tests")]  # conftest: workflow's
from conftest import copy_worktree  # noqa: E402 - the workflow tests' copy of the working tree
from test_pipeline import TINY  # noqa: E402 - the end-to-end test's tiny synthetic log

RUN = "slurmcheck"
TARGETS = [f"results/runs/{RUN}/table2.md", f"results/runs/{RUN}/table2.csv"]
#: the SASRec seed-0 train job is cancelled after this many finished epochs
KILL_AFTER_EPOCHS = 3
CONFIG = {
    "seeds": [0, 1],
    "device": "auto",
    "threads": 1,
    "checkpoint_every": 2,
    "datasets": TINY["datasets"],
    "tuning": {"trials": 2, "seed": 0, "startup_trials": 2},
    "significance": {"reference": "SASRec"},
    "models": {
        "PopRnd": {},
        "SVD": {"params": {"rank": 16}, "search": {"rank": [4, 16]}},
        "SASRec": {"params": {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 20,
                              "epochs": 40, "patience": None, "batch_size": 32, "lr": 0.005,
                              "progress": False}},
    },
}


def snakemake(repo: Path, *args: str, log: Path) -> int:
    env = {**__import__("os").environ, "PYTHONPATH": str(repo)}
    with open(log, "w") as out:
        return subprocess.run([sys.executable, "-m", "snakemake", *args, "--configfile",
                               "config/slurmcheck.yaml"], cwd=repo, env=env, stdout=out,
                              stderr=subprocess.STDOUT).returncode


def make_copy(dest: Path) -> Path:
    copy_worktree(dest)
    (dest / "config" / "slurmcheck.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return dest


def jobs_of(workdir: Path) -> list[dict]:
    """Every job the scheduler knows whose working directory is ``workdir``, as key=value dicts
    of ``scontrol show job --oneliner`` (finished ones stay for the cluster's MinJobAge)."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True,
                         text=True).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(m.groups() for m in re.finditer(r"(\w[\w:/]*)=(\S*)", line))
        if fields.get("WorkDir") == str(workdir):
            jobs.append(fields)
    return jobs


def rule_of(job: dict) -> tuple[str, str]:
    """(rule, wildcards) from the comment the executor plugin gives each job."""
    m = re.match(r"rule_(\w+?)_wildcards_(.*)", job.get("Comment", ""))
    return (m[1], m[2]) if m else (job.get("JobName", "?"), "")


def kill_mid_training(repo: Path, done: threading.Event, found: dict) -> None:
    """Cancel the SASRec seed-0 train job once it has finished KILL_AFTER_EPOCHS epochs."""
    history = repo / "results/tiny/SASRec/seed0/training/history.csv"
    while not done.is_set():
        job = next((j for j in jobs_of(repo) if rule_of(j) == ("train", "tiny_SASRec_0")
                    and j.get("JobState") == "RUNNING"), None)
        if job is not None and history.exists():
            try:
                epochs = len(pd.read_csv(history))
            except (pd.errors.EmptyDataError, OSError):
                epochs = 0
            if epochs >= KILL_AFTER_EPOCHS:
                subprocess.run(["scancel", job["JobId"]], check=True)
                found.update(job=job["JobId"], epochs=epochs)
                return
        time.sleep(0.5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="check_slurm.py", description=__doc__.split("\n\n")[0],
        epilog="The checks, and how to run them on your cluster: this file's docstring.")
    ap.add_argument("--profile", default="profiles/slurm", help="the SLURM profile (folder)")
    ap.add_argument("--site", default="tests/cluster/site",
                    help="the workflow profile with your site's values (partitions, account)")
    ap.add_argument("--gpu-partition", default="gpu",
                    help="where the site's partitions send a job with gpu=1")
    ap.add_argument("--cpu-partition", default="cpu", help="and every other job")
    ap.add_argument("--keep", type=Path, help="keep the two copies in this folder")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="slurmcheck-")) if args.keep is None else args.keep
    profile, site = Path(args.profile).resolve(), Path(args.site).resolve()
    local, cluster = make_copy(base / "local"), make_copy(base / "cluster")
    failures = []

    t0 = time.time()
    if snakemake(local, "--cores", "2", *TARGETS, log=base / "local.log"):
        print(f"the local run failed: {base / 'local.log'}")
        return 1
    print(f"local run: {time.time() - t0:.0f} s")

    t0, done, killed = time.time(), threading.Event(), {}
    killer = threading.Thread(target=kill_mid_training, args=(cluster, done, killed))
    killer.start()
    code = snakemake(cluster, "--profile", str(profile), "--workflow-profile", str(site),
                     *TARGETS, log=base / "cluster.log")
    done.set()
    killer.join()
    print(f"cluster run: {time.time() - t0:.0f} s (exit {code})")
    if code:
        print((base / "cluster.log").read_text()[-4000:])
        return 1

    jobs = jobs_of(cluster)
    log = (base / "cluster.log").read_text()
    planned = int(re.search(r"^total\s+(\d+)$", log, re.M)[1])
    print(f"{len(jobs)} sbatch jobs for {planned} planned jobs")
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(rule_of(job)[0], []).append(job)
    # 1. every job went through sbatch: one per planned job, the cancelled one twice
    if len(jobs) != planned + 1:
        failures.append(f"{len(jobs)} scheduler jobs for {planned} planned (+1 resubmitted)")
    # 2. the GPU requests, from the scheduler's record
    for job in jobs:
        rule, wildcards = rule_of(job)
        wants_gpu = "SASRec" in wildcards and rule in ("tune", "train", "evaluate")
        tres, part = job.get("TresPerJob", ""), job.get("Partition")
        if wants_gpu and (tres != "gres:gpu:1" or part != args.gpu_partition):
            failures.append(f"job {job['JobId']} ({rule} {wildcards}) declares gpu: 1 but was "
                            f"given TresPerJob={tres!r} on partition {part}")
        if not wants_gpu and ("gpu" in tres or part != args.cpu_partition):
            failures.append(f"job {job['JobId']} ({rule} {wildcards}) declares no GPU but was "
                            f"given TresPerJob={tres!r} on partition {part}")
    on = {p: sum(j.get("Partition") == p for j in jobs) for p in (args.gpu_partition,
                                                                   args.cpu_partition)}
    gpu_jobs = sum(j.get("TresPerJob") == "gres:gpu:1" for j in jobs)
    print(f"{gpu_jobs} jobs with --gpus=1; {on[args.gpu_partition]} on partition "
          f"{args.gpu_partition}, {on[args.cpu_partition]} on {args.cpu_partition}")
    # 3. the cancelled job: resubmitted and resumed
    if not killed:
        failures.append("no SASRec train job was seen running long enough to be cancelled")
    else:
        # the plugin's comment joins the wildcard values: dataset, model, seed
        states = [j["JobState"] for j in by_rule.get("train", [])
                  if rule_of(j)[1] == "tiny_SASRec_0"]
        train_log = (cluster / "logs/train/tiny/SASRec/seed0.log").read_text()
        resumed = re.search(r"resuming from \S+ after (.*)", train_log)
        print(f"cancelled job {killed['job']} after {killed['epochs']} epochs; that train job's "
              f"attempts: {states}; the rerun {'resumed after ' + resumed[1] if resumed else 'did not resume'}")
        if "CANCELLED" not in states or "COMPLETED" not in states:
            failures.append(f"the cancelled job was not resubmitted and completed: {states}")
        if not resumed:
            failures.append("the resubmitted train job did not resume from its checkpoint")
    # 4. the tables
    compare = subprocess.run([sys.executable, "-m", "recbench.reporting.compare", str(local),
                              str(cluster), *TARGETS], capture_output=True, text=True)
    print("Table 2 of the cluster run against the local run's (reported as 'the committed file'):")
    print(compare.stdout.strip() or compare.stderr.strip())
    if compare.returncode:
        failures.append("the cluster run's Table 2 differs from the local run's")

    for failure in failures:
        print("FAILED:", failure)
    if args.keep is None and not failures:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"both runs kept in {base}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
