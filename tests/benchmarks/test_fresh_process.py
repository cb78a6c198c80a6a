"""benchmarks._common.in_fresh_process: each case's peak is its own process's, and a failing case
comes back as an error, never as a hang."""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks._common import MiB, in_fresh_process, peak_rss_bytes


# the cases: module-level, so that the fresh process imports them by name
def allocate(mib: int) -> dict:
    block = np.ones(mib * MiB // 8)  # written, so resident
    return {"held_bytes": block.nbytes}


def nothing() -> dict:
    return {}


def fail() -> dict:
    raise ValueError("no such case\nsecond line")


def die() -> dict:
    os._exit(3)


def hang() -> dict:
    time.sleep(60)
    return {}


def test_a_child_reports_its_own_peak_and_the_parents_does_not_leak_into_it():
    big = in_fresh_process(allocate, mib=200)
    assert big["held_bytes"] == 200 * MiB
    assert big["peak_rss_bytes"] > 200 * MiB  # the whole process: interpreter, imports, block
    assert big["peak_rss_bytes"] - big["base_rss_bytes"] > 190 * MiB  # pages of the base may go
    held = np.ones(400 * MiB // 8)  # this process now peaks above 400 MiB
    small = in_fresh_process(nothing)
    assert peak_rss_bytes() > held.nbytes
    # a peak inherited over fork + exec (ru_maxrss) would be at least the parent's
    assert small["peak_rss_bytes"] < big["peak_rss_bytes"] - 150 * MiB
    assert small["peak_rss_bytes"] < held.nbytes - 200 * MiB


def test_a_failing_child_comes_back_as_an_error():
    assert in_fresh_process(fail) == {"error": "ValueError: no such case second line"}
    assert in_fresh_process(die) == {
        "error": "the process ended with exit status 3 before returning"}
    t0 = time.perf_counter()
    assert in_fresh_process(hang, timeout=1) == {"error": "timed out after 1 s"}
    assert time.perf_counter() - t0 < 30
