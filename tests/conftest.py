"""Shared fixtures: a small synthetic split with the same planted structure as the default data."""

from __future__ import annotations

import os
import shutil

import pytest

from recbench.data.dataset import load_split, save_split
from recbench.data.split import GlobalTemporalSplit, index_split
from recbench.data.synthetic import SyntheticConfig, generate

SMALL = SyntheticConfig(n_users=800, n_items=600, n_communities=6, mean_length=25, seed=7)


def make_split(folder, cfg: SyntheticConfig = SMALL):
    save_split(index_split(GlobalTemporalSplit().split(generate(cfg))), folder)
    return load_split(folder)


@pytest.fixture(scope="session")
def small_split(tmp_path_factory):
    """SplitData of a small synthetic log (800 users, 600 items)."""
    return make_split(tmp_path_factory.mktemp("small_split"))


@pytest.fixture(scope="session", autouse=True)
def slurm_probe_fails_fast(tmp_path_factory):
    """Every Snakemake start imports every installed executor plugin, and
    snakemake-executor-plugin-slurm (2.8) runs ``scontrol show config`` while it is imported, for
    the help text of ``--slurm-status-command`` (it reads MinJobAge). Where SLURM's commands are
    installed but no controller answers (a machine where tests/cluster/slurm_up.sh ran and
    slurm_down.sh stopped it), scontrol retries the connection for the config's MessageTimeout
    (10 s by default) before it fails: 9 s measured on every start, ~60 starts in this suite.
    No test here contacts SLURM (tests/cluster/check_slurm.py does, outside pytest), so their
    processes read a minimal slurm.conf with MessageTimeout=1: scontrol and sinfo fail at once
    and the plugin writes the same fallback it writes after the wait."""
    if shutil.which("scontrol") is None:  # the plugin probes nothing without SLURM's commands
        yield
        return
    conf = tmp_path_factory.mktemp("slurm") / "slurm.conf"
    conf.write_text("ClusterName=tests\nSlurmctldHost=localhost\nMessageTimeout=1\n")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    yield
    if before is None:
        del os.environ["SLURM_CONF"]
    else:
        os.environ["SLURM_CONF"] = before
