"""The cluster profiles: a dry run with the real executor plugin plans every job.

Snakemake 9 validates a dry run against the executor it would use, so `-n --profile ...` loads
the plugin, parses its settings and the profile's resources, and refuses without the plugin.
No cluster is contacted: the dry-run executor replaces the plugin only for running the jobs.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from test_pipeline import snakemake  # tests/workflow is on sys.path (pytest's prepend import mode)

ROOT = Path(__file__).resolve().parents[2]


def require(*modules: str) -> None:
    """Fail (never skip) when a plugin is missing: a skipped profile test proves nothing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; `pip install -e '.[test]'` installs "
                    "the executor and storage plugins the profile tests need.", pytrace=False)


def job_counts(out: str) -> dict[str, int]:
    stats = out[out.index("Job stats:"):]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def train_resources(out: str) -> list[str]:
    """The resources line of every train job in the dry-run listing."""
    return [re.search(r"resources: (.*)", block)[1]
            for block in out.split("rule train:")[1:]]


def gpus(resources: str) -> int:
    return int(re.search(r"\bgpu=(\d+)", resources)[1])


def dry_run(repo, profile: str, *extra: str) -> str:
    proc = snakemake(repo, "-n", "--profile", f"profiles/{profile}", "results/table2.md", *extra)
    out = proc.stdout + proc.stderr
    assert f"Using profile profiles/{profile}" in out
    counts = job_counts(out)
    assert counts["table2"] == 1 and counts["split"] >= 1 and counts["train"] >= 1
    assert counts["evaluate"] == counts["train"]
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    for name in ("data", "logs", "results"):  # a dry run writes nothing but .snakemake/
        assert not (repo / name).exists(), name
    return out


@pytest.mark.parametrize("profile", ["slurm", "kubernetes"])
def test_profile_names_its_executor(profile):
    cfg = yaml.safe_load((ROOT / f"profiles/{profile}/config.yaml").read_text())
    assert cfg["executor"] == profile and cfg["jobs"] >= 1
    site = "partitions.yaml" if profile == "slurm" else "config.yaml"
    assert "CHANGE-ME" in (ROOT / f"profiles/{profile}/{site}").read_text()


def test_slurm_profile_dry_run(worktree_copy):
    require("snakemake_executor_plugin_slurm")
    out = dry_run(worktree_copy, "slurm")
    res = train_resources(out)
    # the rule's gpu resource (1 for the neural models of the default config, 0 for the others)
    # reaches the plugin, which turns it into sbatch --gpus=N
    assert {gpus(r) for r in res} == {0, 1}
    # no partition is fixed per rule: the plugin picks one per job from partitions.yaml (a
    # real cluster checks where the jobs land: tests/cluster/check_slurm.py)
    assert "slurm_partition" not in out


def test_kubernetes_profile_dry_run(worktree_copy, tmp_path):
    """The profile's S3 storage would need credentials and the bucket even for a dry run (every
    output's existence is checked in storage), so the test swaps in the file-system storage
    plugin on the command line; executor, image, namespace and resources come from the profile."""
    require("snakemake_executor_plugin_kubernetes", "snakemake_storage_plugin_fs")
    store = tmp_path / "storage"
    out = dry_run(worktree_copy, "kubernetes", "--default-storage-provider", "fs",
                  "--default-storage-prefix", str(store))
    res = train_resources(out)
    assert {gpus(r) for r in res} == {0, 1}
    assert all("gpu_manufacturer=nvidia" in r for r in res)  # the plugin refuses gpu without it
    assert f"{store}/results/table2.md (send to storage)" in out
    assert not store.exists()
