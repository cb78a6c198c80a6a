"""Snakemake: the dry-run time of the paper's whole grid, and the default command, cold.

    python benchmarks/bench_pipeline.py [--tiny] [--default-run]

1. ``snakemake -n`` of every report of the paper's grid (Tables 2-5, Figures 2-5, the
   manifest; every dataset, model, seed, tuning trial and ablation point) with
   ``--configfile config/paper.yaml``, in a throw-away copy of the working tree (tracked and
   untracked-not-ignored files, no results), so nothing is written here. The job count is the
   "total" of Snakemake's "Job stats". The bare reference is a dry run of a Snakefile of the same
   number of trivial jobs (one rule with a wildcard and one aggregate), the cost of Snakemake
   itself; ``--tiny`` plans the default config's Table 2 instead.
2. ``--default-run``: ``git clone`` of this repository into a temporary folder, its committed
   results removed (so the run is cold: no data, no results, no .snakemake), then the README's
   main command, ``snakemake --cores 8 results/table2.md`` (``DEFAULT_COMMAND``), there, timed
   (goal: under 10 minutes on 2 CPU cores), in the environment of a researcher's clean shell:
   OMP_NUM_THREADS and its relatives (``recbench.threads.THREAD_ENV``) removed, so the run shows
   that the workflow sets every job's threads itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import ROOT
from recbench.provenance import usable_cores
from recbench.threads import THREAD_ENV

#: the paper config's reports (a config other than the default one reports under
#: results/runs/<run>/)
PAPER_TARGETS = tuple(f"results/runs/paper/{name}" for name in (
    "table2.md", "table3.md", "table4.md", "table5.md", "figures/fig2_training_curves.png",
    "figures/fig3_graph_size.png", "figures/fig4_warmup.png", "figures/fig5_barlow_weight.png",
    "manifest.json"))
DEFAULT_RUN_GOAL_S = 600.0
#: the README's main command, word for word (tests/benchmarks checks that the README says it)
DEFAULT_COMMAND = ("snakemake", "--cores", "8", "results/table2.md")
SKIP_TOP = {".git", ".snakemake", "data", "logs", "results", "benchmarks"}


def snakemake_cmd() -> list[str]:
    """This interpreter's Snakemake (``python -m snakemake``), so the benchmark's environment runs."""
    return [sys.executable, "-m", "snakemake"]


def copy_worktree(dest: Path, root: Path = ROOT) -> Path:
    """Copy the files a commit would hold (tracked + untracked-not-ignored), without outputs."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=root, capture_output=True,
                             check=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file
        files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        parts = Path(f).parts
        if parts[0] in SKIP_TOP or parts[0].endswith(".egg-info") or "__pycache__" in parts:
            continue
        if (root / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, dest / f)
    return dest


def job_stats(output: str) -> dict[str, int]:
    """{rule: jobs} of the first "Job stats" table of Snakemake's output, "total" included."""
    at = output.find("Job stats:")
    if at < 0:
        raise ValueError("no 'Job stats:' in Snakemake's output")
    counts = {}
    for line in output[at:].splitlines()[3:]:
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    if "total" not in counts:
        raise ValueError("no 'total' row in Snakemake's Job stats")
    return counts


def dry_run(workdir: Path, targets, configfile: str | None = None,
            timeout: float = 600) -> dict:
    """Seconds and job counts of ``snakemake -n <targets> [--configfile ...]`` in ``workdir``."""
    cmd = snakemake_cmd() + ["-n", "--cores", "1", *targets]
    if configfile:
        cmd += ["--configfile", configfile]  # after the targets (Snakemake 9 reads a list)
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env,
                          timeout=timeout)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"snakemake -n failed ({proc.returncode}): {' | '.join(tail)}")
    counts = job_stats(proc.stdout + proc.stderr)
    return {"seconds": seconds, "jobs": counts["total"], "job_counts": counts}


BARE_SNAKEFILE = """\
N = int(config["count"])

rule all:
    input: expand("out/{i}.txt", i=range(N))

rule one:
    output: "out/{i}.txt"
    shell: "touch {output}"
"""


def bare_dry_run(n_jobs: int, workdir: Path, timeout: float = 600) -> dict:
    """A dry run of ``n_jobs`` trivial jobs (``n_jobs - 1`` outputs and the aggregate)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(BARE_SNAKEFILE)
    cmd = snakemake_cmd() + ["-n", "--cores", "1", "--config", f"count={max(n_jobs - 1, 1)}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"bare snakemake -n failed: {proc.stderr.strip().splitlines()[-1:]}")
    return {"seconds": seconds, "jobs": job_stats(proc.stdout + proc.stderr)["total"]}


def measure_dry_run(tiny: bool = False) -> dict:
    """The paper grid's dry run (``tiny``: the default config's Table 2) against the bare one."""
    targets, configfile = ((["results/table2.md"], None) if tiny
                           else (list(PAPER_TARGETS), "config/paper.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_worktree(Path(tmp) / "repo")
        ours = dry_run(copy, targets, configfile)
        bare = bare_dry_run(ours["jobs"], Path(tmp) / "bare")
    return {"targets": targets, "configfile": configfile or "config/config.yaml",
            "ours": ours, "bare": bare, "ratio": ours["seconds"] / bare["seconds"]}


def clean_env(pythonpath: str | os.PathLike) -> dict[str, str]:
    """This process's environment less the thread-pool variables (a researcher's clean shell),
    with ``pythonpath`` as PYTHONPATH."""
    return {**{k: v for k, v in os.environ.items() if k not in THREAD_ENV},
            "PYTHONPATH": str(pythonpath)}


def default_run(timeout: float = 3 * 3600) -> dict:
    """The README's main command (``DEFAULT_COMMAND``) in a fresh clone, cold, in a clean
    environment (``clean_env``); wall seconds."""
    target = DEFAULT_COMMAND[-1]
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                                text=True, check=True).stdout.strip()
        shutil.rmtree(clone / "results", ignore_errors=True)  # committed reports: not cold
        t0 = time.perf_counter()
        proc = subprocess.run(snakemake_cmd() + list(DEFAULT_COMMAND[1:]), cwd=clone,
                              capture_output=True, text=True, env=clean_env(clone),
                              timeout=timeout)
        seconds = time.perf_counter() - t0
        ok = proc.returncode == 0 and (clone / target).exists()
        counts = {}
        try:
            counts = job_stats(proc.stdout + proc.stderr)
        except ValueError:
            pass
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"command": " ".join(DEFAULT_COMMAND), "commit": commit,
            "cores": usable_cores(), "seconds": seconds, "ok": ok,
            "returncode": proc.returncode, "jobs": counts.get("total"), "goal_s": DEFAULT_RUN_GOAL_S,
            "ratio": seconds / DEFAULT_RUN_GOAL_S, "tail": "" if ok else " | ".join(tail)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="the default config's Table 2 only")
    ap.add_argument("--default-run", action="store_true", help="also time the default run, cold")
    args = ap.parse_args()
    r = measure_dry_run(args.tiny)
    print(f"snakemake -n {' '.join(r['targets'])} --configfile {r['configfile']}")
    print(f"  {r['ours']['jobs']:,} jobs planned in {r['ours']['seconds']:.1f} s; bare "
          f"{r['bare']['jobs']:,} trivial jobs in {r['bare']['seconds']:.1f} s; ratio {r['ratio']:.2f}")
    print("  " + ", ".join(f"{k} {v}" for k, v in r["ours"]["job_counts"].items()))
    if args.default_run:
        d = default_run()
        print(f"{d['command']} in a fresh clone of {d['commit'][:10]}: {d['seconds']:.0f} s "
              f"({'OK' if d['ok'] else 'FAILED ' + d['tail']}; goal < {DEFAULT_RUN_GOAL_S:.0f} s)")


if __name__ == "__main__":
    main()
