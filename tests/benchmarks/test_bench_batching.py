"""The logs section 9 of the benchmarks times epochs on are shaped as the issue describes."""

import numpy as np
import pytest

from benchmarks.bench_batching import SHAPES, shaped_log


@pytest.mark.parametrize("shape, events, real", [("ml-1m", 165, 109), ("beauty", 9, 8)])
def test_the_logs_have_the_datasets_lengths(shape, events, real):
    """ML-1M: ~165 events per user, a mean training window of ~109 real items of 200 (45 %
    padding); Beauty: ~9 events, ~80 % padding at 50; one interaction per (user, item)."""
    log = shaped_log(shape)
    counts = np.bincount(log.users, minlength=log.n_users)
    window = np.minimum(counts, SHAPES[shape]["max_len"] + 1) - 1  # SASRec's inputs
    assert log.n_users == SHAPES[shape]["users"] and counts.min() == SHAPES[shape]["min_events"]
    assert abs(counts.mean() - events) < 0.05 * events
    assert abs(window.mean() - real) < 0.05 * real
    assert log.csr().nnz == len(log)  # a graph edge per interaction
