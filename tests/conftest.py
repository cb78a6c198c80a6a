"""Shared fixtures: a small synthetic split with the same planted structure as the default data."""

from __future__ import annotations

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
