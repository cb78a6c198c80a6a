"""Seed statistics and paired tests, checked against scipy on fixed numbers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recbench.protocol.stats import PairedTest, adjust_pvalues, mean_ci, paired_per_user, paired_test

A = np.array([0.31, 0.28, 0.35, 0.40, 0.22, 0.30, 0.27, 0.33, 0.38, 0.25])
B = np.array([0.29, 0.27, 0.30, 0.41, 0.20, 0.26, 0.27, 0.30, 0.33, 0.21])


def test_mean_ci_equals_scipy_t_interval():
    x = [0.3125, 0.2980, 0.3051]
    mean, half = mean_ci(x)
    lo, hi = stats.t.interval(0.95, df=len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert mean == pytest.approx(np.mean(x))
    assert (mean - half, mean + half) == (pytest.approx(lo), pytest.approx(hi))
    # another confidence level and size
    y = np.arange(1.0, 8.0) ** 1.5
    mean, half = mean_ci(y, confidence=0.9)
    lo, hi = stats.t.interval(0.9, df=len(y) - 1, loc=y.mean(), scale=stats.sem(y))
    assert (mean - half, mean + half) == (pytest.approx(lo), pytest.approx(hi))


def test_mean_ci_edge_cases():
    assert all(math.isnan(v) for v in mean_ci([]))
    mean, half = mean_ci([0.5])
    assert mean == 0.5 and math.isnan(half)


def test_paired_ttest_equals_scipy():
    res = paired_test(A, B, "ttest")
    ref = stats.ttest_rel(A, B)
    assert isinstance(res, PairedTest) and res.method == "ttest" and res.n == len(A)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.pvalue == pytest.approx(ref.pvalue)
    assert res.mean_diff == pytest.approx(np.mean(A - B))
    assert (res.mean_a, res.mean_b) == (pytest.approx(A.mean()), pytest.approx(B.mean()))
    assert paired_test(B, A).statistic == pytest.approx(-ref.statistic)
    one = paired_test(A, B, alternative="greater")
    assert one.pvalue == pytest.approx(stats.ttest_rel(A, B, alternative="greater").pvalue)


def test_paired_wilcoxon_equals_scipy():
    res = paired_test(A, B, "wilcoxon")
    ref = stats.wilcoxon(A, B, zero_method="wilcox")  # one zero difference (0.27, 0.27): dropped
    assert res.method == "wilcoxon" and res.n == len(A)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.pvalue == pytest.approx(ref.pvalue)
    pratt = paired_test(A, B, "wilcoxon", zero_method="pratt")
    assert pratt.pvalue == pytest.approx(stats.wilcoxon(A, B, zero_method="pratt").pvalue)


def test_paired_test_as_dict():
    d = paired_test(A, B).as_dict()
    assert set(d) == {"method", "n", "mean_a", "mean_b", "mean_diff", "statistic", "pvalue"}


@pytest.mark.parametrize("method", ["ttest", "wilcoxon"])
def test_identical_arrays_give_p_one_without_warnings(method):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = paired_test(A, A.copy(), method)
    assert res.pvalue == 1.0 and res.statistic == 0.0 and res.mean_diff == 0.0


def test_constant_nonzero_difference_ttest():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = paired_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], "ttest")
    assert res.statistic == math.inf and res.pvalue == 0.0
    assert paired_test([0.5, 1.5], [1.0, 2.0]).statistic == -math.inf


def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"len\(a\)=10 and len\(b\)=9"):
        paired_test(A, B[:9])


@pytest.mark.parametrize("a, b, message", [
    ([], [], "empty"),
    ([0.1, np.nan], [0.1, 0.2], "NaN"),
    ([0.3], [0.1], "at least 2"),
])
def test_paired_test_refuses_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_test(a, b)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown paired test method 'sign'"):
        paired_test(A, B, "sign")


def per_user(users, values, k=10):
    return pd.DataFrame({"user": users, "target": 0, "rank": 0, f"ndcg@{k}": values,
                         f"recall@{k}": np.asarray(values) > 0})


def test_paired_per_user_averages_seeds_and_aligns_users():
    seeds_a = [per_user([3, 1, 2], [0.3, 0.1, 0.2]), per_user([1, 2, 3], [0.3, 0.0, 0.5])]
    seeds_b = [per_user([2, 3, 1], [0.6, 0.0, 0.2])]
    a, b = paired_per_user(seeds_a, seeds_b)
    np.testing.assert_allclose(a, [0.2, 0.1, 0.4])   # users 1, 2, 3
    np.testing.assert_allclose(b, [0.2, 0.6, 0.0])
    # one concatenated frame per model is the same; another metric column
    a2, b2 = paired_per_user(pd.concat(seeds_a), seeds_b[0], metric="recall@10")
    np.testing.assert_allclose(a2, [1.0, 0.5, 1.0])
    np.testing.assert_allclose(b2, [1.0, 1.0, 0.0])
    res = paired_test(a, b)
    assert res.pvalue == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_paired_per_user_refuses_different_users():
    with pytest.raises(ValueError, match=r"different test users: 3 vs 2 users, 1 only in a"):
        paired_per_user(per_user([1, 2, 3], [0.1] * 3), per_user([1, 2], [0.1] * 2))
    with pytest.raises(ValueError, match="every seed must hold the same test users"):
        paired_per_user([per_user([1, 2], [0.1] * 2), per_user([1], [0.1])],
                        per_user([1, 2], [0.1] * 2))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['ndcg@100'\]"):
        paired_per_user(per_user([1], [0.1]), per_user([1], [0.1]), metric="ndcg@100")


def test_holm_adjusted_p_values_equal_the_hand_computed_ones():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, but the
    # step-down keeps it at least the previous 0.06); back in the input order:
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])
    np.testing.assert_allclose(adjust_pvalues(p, "none"), p)
    # adjusted values are capped at 1; a NaN (no test) is no member of the family
    np.testing.assert_allclose(adjust_pvalues([0.5, np.nan, 0.4], "holm"), [0.8, np.nan, 0.8])
    with pytest.raises(ValueError, match="correction"):
        adjust_pvalues(p, "sidak-ish")


# ---------------------------------------------------------------------------------------------
# Estimates with several noise sources: Welch-Satterthwaite, TOST, power
# ---------------------------------------------------------------------------------------------

def test_satterthwaite_is_welchs_df():
    from recbench.protocol.stats import satterthwaite

    x, y = A * 3, B[:7]
    se, df = satterthwaite([(x.var(ddof=1) / x.size, x.size - 1),
                            (y.var(ddof=1) / y.size, y.size - 1)])
    welch = stats.ttest_ind(x, y, equal_var=False)
    assert df == pytest.approx(welch.df)
    assert (x.mean() - y.mean()) / se == pytest.approx(welch.statistic)
    assert satterthwaite([(0.0, 4), (0.0, math.inf)]) == (0.0, math.inf)
    assert all(math.isnan(v) for v in satterthwaite([(0.1, 9), (math.nan, 0)]))  # one seed


def test_locate_is_tost_and_equals_statsmodels_on_paired_data():
    from statsmodels.stats.weightstats import ttost_paired

    from recbench.protocol.stats import locate

    rng = np.random.default_rng(3)
    a, b = rng.normal(0.30, 0.2, 150), rng.normal(0.28, 0.2, 150)
    d = a - b
    se, df = d.std(ddof=1) / math.sqrt(d.size), d.size - 1
    for low, high in [(-0.05, 0.05), (-0.1, 0.2), (0.0, 0.3)]:
        where = locate(d.mean(), se, df, low, high)
        assert where.p_inside == pytest.approx(ttost_paired(a, b, low, high)[0])
        assert (where.location == "inside") == (where.p_inside < 0.05)
        # the verdict reads off the 90% interval
        lo, hi = stats.t.interval(0.90, df, loc=d.mean(), scale=se)
        assert (where.ci_low, where.ci_high) == (pytest.approx(lo), pytest.approx(hi))


@pytest.mark.parametrize("estimate, se, expected", [
    (0.0, 1.0, "inside"),      # interval [-1.65, 1.65] inside [-5, 5]
    (9.0, 1.0, "above"),       # [7.35, 10.65] beyond 5
    (-9.0, 1.0, "below"),
    (5.0, 1.0, "undecided"),   # straddles the margin
    (0.0, 4.0, "undecided"),   # too noisy to say either
    (6.0, 0.0, "above"),       # no noise: the estimate itself decides
    (1.0, math.nan, "undecided"),
])
def test_locate_cases(estimate, se, expected):
    from recbench.protocol.stats import locate

    assert locate(estimate, se, 1000, -5.0, 5.0).location == expected


def test_locate_against_a_point_is_a_one_sided_test_each_way():
    from recbench.protocol.stats import locate

    up = locate(2.0, 1.0, 50, 0.0, 0.0)
    assert up.location == "above" and up.p_above == pytest.approx(stats.t.sf(2.0, 50))
    assert locate(-2.0, 1.0, 50, 0.0, 0.0).location == "below"
    assert locate(1.0, 1.0, 50, 0.0, 0.0).location == "undecided"


def test_sample_size_is_the_textbook_paired_t_test_value():
    from statsmodels.stats.power import TTestPower

    from recbench.protocol.stats import sample_size, ttest_power

    def paired(d, extra=()):
        return lambda n: ttest_power(d, [(1.0 / n, n - 1), *extra])

    # d = 0.5, two-sided 5%, 80% power: 33.4 pairs, so 34 (Cohen 1988; G*Power)
    assert sample_size(paired(0.5)) == 34
    assert ttest_power(0.5, [(1 / 34, 33)]) == pytest.approx(
        TTestPower().power(effect_size=0.5, nobs=34, alpha=0.05))
    for d in (0.2, 0.8, 1.3):
        assert sample_size(paired(d)) == math.ceil(TTestPower().solve_power(d, power=0.8,
                                                                            alpha=0.05))
    assert sample_size(paired(3.0)) == 4  # a huge effect: the t quantiles of df 1 and 2 lose it
    assert paired(3.0)(3) < 0.8 <= paired(3.0)(4)
    # the mean's variance has a seed share (10 seeds) that more users do not reduce: more users
    # are needed, and where that share alone keeps the power below 80%, no number suffices
    seeds = [(0.01, 9)]
    n = sample_size(paired(0.5, seeds))
    assert n > 34 and paired(0.5, seeds)(n) >= 0.8 > paired(0.5, seeds)(n - 1)
    assert sample_size(paired(0.5, [(0.05, 2)])) is None
    assert sample_size(paired(0.0)) is None
    assert ttest_power(0.5, [(1e-7, 10**7 - 1)]) == pytest.approx(1.0)  # beyond the noncentral t
