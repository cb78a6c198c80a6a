"""Verdicts against the paper on hand-made cells and claims (recbench/protocol/verdicts.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from recbench.errors import ConfigError
from recbench.protocol.verdicts import (Rules, beats, cell_verdict, gain_margin, gain_power,
                               matches_gain, paired_gain, seed_var_of_mean)


def half_width(sd: float, n: int) -> float:
    """The 95% Student-t half-width of a mean of n values of standard deviation sd."""
    return float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


@pytest.mark.parametrize("mean, expected", [
    (10.1, "reproduced"),      # 1% off, well inside the 10% margin (±1.00)
    (12.5, "ours higher"),     # 25% above: the interval lies beyond +1.00
    (7.5, "ours lower"),
    (11.0, "undecided"),       # right on the margin: neither
])
def test_cell_verdicts(mean, expected):
    # 3 seeds with sd 0.1, 2,000 test users with sd 5: se about 0.13 points
    v = cell_verdict("ml", "SVD", mean, half_width(0.1, 3), 3, 10.0, user_sd=5.0, n_users=2000)
    assert v.verdict == expected
    assert v.margin == pytest.approx(1.0) and v.diff == pytest.approx(mean - 10.0)
    assert v.diff_low < v.diff < v.diff_high


def test_a_noisy_cell_is_undecided_not_different():
    # 150 test users with sd 5: the test users alone give se 0.41, the margin is 1.00
    v = cell_verdict("ml", "SVD", 11.3, half_width(0.1, 3), 3, 10.0, user_sd=5.0, n_users=150)
    assert v.verdict == "undecided"
    # the same difference measured on enough users is outside the margin
    assert cell_verdict("ml", "SVD", 11.3, half_width(0.1, 3), 3, 10.0, user_sd=5.0,
                        n_users=20000).verdict == "ours higher"


def test_the_papers_plusminus_widens_the_margin():
    ci = half_width(0.05, 3)
    without = cell_verdict("ml", "SASRec", 9.06, ci, 3, 7.96, user_sd=10.0, n_users=10000)
    widened = cell_verdict("ml", "SASRec", 9.06, ci, 3, 7.96, 0.66, user_sd=10.0, n_users=10000)
    assert without.verdict == "ours higher"         # 9.06 - 7.96 = 1.10 > 0.80, se 0.11
    assert widened.margin == pytest.approx(0.796 + 0.66)
    assert widened.verdict == "reproduced"          # 1.10 inside 1.46


def test_random_like_cells_from_the_issue_do_not_fail():
    # ML-1M Random Coverage@10: 95.02 ± 0.34 over 3 seeds against the paper's 95.41
    assert cell_verdict("ML-1M", "Random", 95.02, 0.34, 3, 95.41).verdict == "reproduced"
    # Random NDCG@100: 0.54 ± 0.11 against 0.70, a few hundred test users of per-user sd ~4 points
    v = cell_verdict("ML-1M", "Random", 0.54, 0.11, 3, 0.70, user_sd=4.0, n_users=700)
    assert v.verdict == "undecided"


def test_random_like_noise_alone_rarely_reads_as_a_difference():
    """A random recommender: every seed draws new hits for the same 400 test users at rate 1%;
    the paper's value is the true rate. Over 300 simulated runs almost none is 'different'."""
    rng = np.random.default_rng(0)
    n, seeds, runs, rate = 400, 3, 300, 0.01
    hits = rng.random((runs, seeds, n)) < rate          # [runs, seeds, users]
    seed_means = 100 * hits.mean(axis=2)                # [runs, seeds]
    user_sd = 100 * hits.mean(axis=1).std(axis=1, ddof=1)   # per-user values over seeds
    verdicts = [cell_verdict("syn", "Random", m.mean(), half_width(m.std(ddof=1), seeds), seeds,
                             100 * rate, user_sd=sd, n_users=n).verdict
                for m, sd in zip(seed_means, user_sd)]
    different = sum(v in ("ours higher", "ours lower") for v in verdicts)
    assert different <= 0.05 * runs
    assert verdicts.count("undecided") > 0.5 * runs     # 1% of 400 users: little to go on


def test_the_papers_assumed_seed_noise():
    ci = half_width(0.5, 3)  # our seed se 0.29
    ours = cell_verdict("ml", "SVD", 10.0, ci, 3, 10.0, rules=Rules(paper_seed_noise="ours"))
    exact = cell_verdict("ml", "SVD", 10.0, ci, 3, 10.0, rules=Rules(paper_seed_noise=0.0))
    coeff = cell_verdict("ml", "SVD", 10.0, ci, 3, 10.0, rules=Rules(paper_seed_noise=0.05))
    assert ours.se == pytest.approx(math.sqrt(2) * exact.se)
    assert coeff.se == pytest.approx(math.hypot(exact.se, 0.5))
    with_pm = cell_verdict("ml", "SASRec", 10.0, ci, 3, 10.0, 0.3)
    assert with_pm.se == pytest.approx(exact.se)  # a ± goes into the margin, not the noise


def test_one_seed_is_undecided_with_its_reason():
    v = cell_verdict("ml", "SVD", 30.0, math.nan, 1, 10.0, user_sd=5.0, n_users=5000)
    assert v.verdict == "undecided" and "one seed" in v.reason


def test_rules_refuse_bad_values():
    with pytest.raises(ConfigError, match="reproduction.margin"):
        Rules(margin=10)
    with pytest.raises(ConfigError, match="paper_seed_noise"):
        Rules(paper_seed_noise="theirs")
    with pytest.raises(ConfigError, match="unknown key"):
        Rules.from_config({"margn": 0.1})
    assert "±10%" in Rules().describe() and "90% interval" in Rules().describe()


# ---------------------------------------------------------------------------------------------
# Claims on paired per-user values
# ---------------------------------------------------------------------------------------------

def paired(n: int, gain: float, noise: float, seed: int = 0):
    """Per-user values of a rival b and of a = b x (1 + gain) plus per-user noise, in %."""
    rng = np.random.default_rng(seed)
    b = 100 * (rng.random(n) < 0.2) * rng.random(n)
    return b * (1 + gain) + rng.normal(0, noise, n), b


def test_claims_hold_are_refuted_or_undecided():
    seed_var = seed_var_of_mean(half_width(0.2, 3), 3)
    a, b = paired(5000, 0.15, 2.0)
    up = paired_gain(a, b, seed_var, seed_var, 3, 3)
    assert up.value == pytest.approx(a.mean() / b.mean() - 1)
    assert beats(up).verdict == "holds"
    a, b = paired(5000, -0.15, 2.0)
    down = beats(paired_gain(a, b, seed_var, seed_var, 3, 3))
    assert down.verdict == "refuted" and down.direction == "ours lower"
    a, b = paired(80, 0.05, 8.0)
    assert beats(paired_gain(a, b, seed_var, seed_var, 3, 3)).verdict == "undecided"
    one = beats(paired_gain(*paired(5000, 0.15, 2.0), math.nan, math.nan, 1, 1))
    assert one.verdict == "undecided" and "one seed" in one.reason


def test_the_papers_gain_as_a_claim():
    rules = Rules()
    seed_var = seed_var_of_mean(half_width(0.05, 3), 3)
    half = gain_margin(0.13, rules)
    assert half == pytest.approx(0.1 * 1.13)  # 10% of the ratio 1.13: +1.7% .. +24.3% count
    verdict = {}
    for name, gain in [("same", 0.13), ("none", 0.0), ("double", 0.40)]:
        g = paired_gain(*paired(20000, gain, 1.0), seed_var, seed_var, 3, 3)
        verdict[name] = matches_gain(g, 0.13, rules)
        assert (verdict[name].low, verdict[name].high) == (0.13 - half, 0.13 + half)
    assert verdict["same"].verdict == "holds"
    assert (verdict["none"].verdict, verdict["none"].direction) == ("refuted", "ours lower")
    assert (verdict["double"].verdict, verdict["double"].direction) == ("refuted", "ours higher")
    # the paper's Gain has seed noise of its own: a noisier paper makes "holds" harder
    g = paired_gain(*paired(20000, 0.13, 1.0), seed_var, seed_var, 3, 3)
    assert matches_gain(g, 0.13, Rules(paper_seed_noise=0.2)).verdict == "undecided"


def test_gain_power_against_the_textbook_sample_size():
    """With negligible seed noise the users needed are TTestPower's for effect / sd."""
    from statsmodels.stats.power import TTestPower

    a, b = paired(300, 0.0, 3.0)
    g = paired_gain(a, b, 1e-12, 1e-12, 3, 3)
    p = gain_power(g, 0.10)
    assert p.effect == pytest.approx(0.10 * b.mean())
    assert p.diff_sd == pytest.approx(np.std(a - b, ddof=1))
    expected = TTestPower().solve_power(effect_size=p.effect / p.diff_sd, power=0.8, alpha=0.05)
    assert p.users_needed == math.ceil(expected)
    assert p.power == pytest.approx(TTestPower().power(p.effect / p.diff_sd, 300, 0.05), rel=1e-6)
    # a run with ten times the users needed is adequately powered; noisy seeds need more seeds
    big = paired_gain(*paired(10 * p.users_needed, 0.0, 3.0), 1e-12, 1e-12, 3, 3)
    assert gain_power(big, 0.10).power > 0.8
    noisy = paired_gain(a, b, 1.0, 1.0, 3, 3)
    more = gain_power(noisy, 0.10)
    assert more.power < p.power and more.seed_noise_known
    assert more.users_needed is None or more.users_needed > p.users_needed
