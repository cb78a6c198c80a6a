"""Statistics over seeds (mean and a Student-t 95% confidence interval), paired tests
between two models on the same test users (t-test, Wilcoxon signed-rank), the correction of
a family of p-values for multiple comparisons (Holm, via statsmodels), and for an estimate with
several independent noise sources (seeds, test users): its standard error with
Welch-Satterthwaite degrees of freedom, where it lies against an interval by one-sided t-tests
(TOST equivalence), and the power and sample size of a t-test (statsmodels' ``TTestPower``).
recbench/protocol/verdicts.py builds the reproduction verdicts on these."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the two-sided t interval). The half-width is NaN for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1) * sem)


# ---------------------------------------------------------------------------------------------
# Paired tests between two models on the same test users
# ---------------------------------------------------------------------------------------------

PAIRED_METHODS = ("ttest", "wilcoxon")


@dataclass(frozen=True)
class PairedTest:
    """Result of paired_test. mean_diff = mean(a - b): positive when a scores higher."""

    method: str
    n: int                  # number of pairs (users)
    mean_a: float
    mean_b: float
    mean_diff: float
    statistic: float        # t for "ttest"; scipy's signed-rank statistic for "wilcoxon"
    pvalue: float

    def as_dict(self) -> dict:
        return asdict(self)


def paired_test(a, b, method: str = "ttest", *, zero_method: str = "wilcox",
                alternative: str = "two-sided") -> PairedTest:
    """Paired test of H0 "a and b have the same mean (ttest) / median difference (wilcoxon)".

    a, b: aligned per-user values (a[i] and b[i] belong to the same user), e.g. the arrays of
    paired_per_user. method: "ttest" (scipy.stats.ttest_rel) or "wilcoxon"
    (scipy.stats.wilcoxon). zero_method (wilcoxon only): "wilcox" (default) drops users whose
    difference is zero before ranking, the textbook test; with one target per user most users
    tie at 0 (both models miss), and "pratt" or "zsplit" keep them in the ranking instead.

    Identical inputs (every difference 0) give statistic 0 and p = 1 without calling scipy
    (whose statistics are 0/0 there). A constant non-zero difference gives t = ±inf and p = 0 for
    the t-test (zero variance). Raises ValueError on unequal lengths, NaN values, an unknown
    method, or fewer than 2 pairs where the test is undefined.
    """
    if method not in PAIRED_METHODS:
        raise ValueError(
            f"unknown paired test method {method!r}; expected one of {PAIRED_METHODS}")
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(
            f"alternative must be 'two-sided', 'less' or 'greater', not {alternative!r}")
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_test needs aligned arrays of equal length; got len(a)={a.size} "
                         f"and len(b)={b.size} (align per-user tables with paired_per_user)")
    if a.size == 0:
        raise ValueError("paired_test got empty arrays")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError(f"paired_test got NaN values ({int(np.isnan(a).sum())} in a, "
                         f"{int(np.isnan(b).sum())} in b)")
    d = a - b
    result = dict(method=method, n=int(a.size), mean_a=float(a.mean()), mean_b=float(b.mean()),
                  mean_diff=float(d.mean()))
    if not d.any():
        return PairedTest(**result, statistic=0.0, pvalue=1.0)
    if method == "ttest":
        if a.size < 2:
            raise ValueError("paired t-test needs at least 2 pairs")
        if np.ptp(d) == 0:  # zero variance, non-zero mean: t is infinite
            t = math.copysign(math.inf, float(d[0]))
            p = {"two-sided": 0.0, "greater": 0.0 if t > 0 else 1.0,
                 "less": 0.0 if t < 0 else 1.0}[alternative]
            return PairedTest(**result, statistic=t, pvalue=p)
        res = stats.ttest_rel(a, b, alternative=alternative)
    else:
        res = stats.wilcoxon(a, b, zero_method=zero_method, alternative=alternative)
    return PairedTest(**result, statistic=float(res.statistic), pvalue=float(res.pvalue))


def per_user_mean(tables, metric: str, user: str, name: str) -> pd.Series:
    """Average a model's per-user metric over seeds: one value per user, indexed by user."""
    frames = [tables] if isinstance(tables, pd.DataFrame) else list(tables)
    if not frames:
        raise ValueError(f"per-user tables of {name}: none given")
    for i, f in enumerate(frames):
        missing = [c for c in (user, metric) if c not in f.columns]
        if missing:
            raise ValueError(f"per-user table {i} of {name} lacks column(s) {missing}; it has "
                             f"{list(f.columns)}")
    long = pd.concat([f[[user, metric]] for f in frames], ignore_index=True)
    if long[metric].isna().any():
        raise ValueError(f"per-user tables of {name}: {int(long[metric].isna().sum())} NaN "
                         f"values in {metric!r}")
    counts = long.groupby(user).size()
    if counts.nunique() > 1:  # a seed whose test users differ from the others'
        raise ValueError(
            f"per-user tables of {name}: users appear {counts.min()} to {counts.max()} times; "
            "every seed must hold the same test users once each")
    return long.groupby(user)[metric].mean()


def paired_per_user(per_user_a, per_user_b, metric: str = "ndcg@10",
                    user: str = "user") -> tuple[np.ndarray, np.ndarray]:
    """Align two models' per-user values for paired_test.

    per_user_a, per_user_b: each a DataFrame or a list of DataFrames, the per_user.parquet
    tables of one model (columns user, target, rank, ndcg@K, recall@K; see
    recbench.evaluation.evaluate), one per seed or already concatenated. Each user's metric is
    averaged over seeds, then both models are aligned on the user id (sorted). The two models
    must hold the same test users (the same split); otherwise ValueError with the counts.
    Returns (values_a, values_b), float arrays of equal length.
    """
    sa = per_user_mean(per_user_a, metric, user, "a")
    sb = per_user_mean(per_user_b, metric, user, "b")
    only_a, only_b = sa.index.difference(sb.index), sb.index.difference(sa.index)
    if len(only_a) or len(only_b):
        raise ValueError(
            f"the two per-user tables hold different test users: {len(sa)} vs {len(sb)} users, "
            f"{len(only_a)} only in a (e.g. {list(only_a[:5])}), {len(only_b)} only in b "
            f"(e.g. {list(only_b[:5])}); compare models evaluated on the same split")
    joined = pd.concat({"a": sa, "b": sb}, axis=1, join="inner").sort_index()
    return joined["a"].to_numpy(dtype=float), joined["b"].to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------
# Multiple comparisons
# ---------------------------------------------------------------------------------------------

#: corrections for a family of tests (statsmodels.stats.multitest.multipletests methods); "none"
#: keeps the raw p-values
CORRECTIONS = ("holm", "bonferroni", "none")


def adjust_pvalues(pvalues, method: str = "holm") -> np.ndarray:
    """p-values of one family of tests adjusted for multiple comparisons.

    method: "holm" (Holm-Bonferroni step-down, controls the family-wise error rate at any
    dependence between the tests), "bonferroni", or "none". NaN entries (no test) stay NaN
    and do not count in the family. Computed by statsmodels' ``multipletests``.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown multiple-comparison correction {method!r}; expected one of "
                         f"{CORRECTIONS} (config significance.correction)")
    p = np.asarray(pvalues, dtype=float).ravel()
    out = p.copy()
    ok = ~np.isnan(p)
    if method != "none" and ok.any():
        from statsmodels.stats.multitest import multipletests

        out[ok] = multipletests(p[ok], method=method)[1]
    return out


# ---------------------------------------------------------------------------------------------
# An estimate with several noise sources: its standard error, where it lies, the power to see it
# ---------------------------------------------------------------------------------------------


def satterthwaite(components) -> tuple[float, float]:
    """(se, df) of a sum of independent variance components.

    components: (variance of the estimate's component, its degrees of freedom) pairs, e.g.
    (s_user^2 / n, n - 1) for test users and (s_seed^2 / S, S - 1) for seeds; a component known
    exactly has df = inf. The df is Welch-Satterthwaite's, (sum v)^2 / sum(v^2 / df). A zero
    total variance gives (0, inf); a NaN component (one seed: no variance) gives NaN.
    """
    comps = [(float(v), float(d)) for v, d in components]
    if any(math.isnan(v) or math.isnan(d) for v, d in comps):
        return math.nan, math.nan
    if any(v < 0 for v, _ in comps):
        raise ValueError(f"satterthwaite: negative variance component in {comps}")
    var = sum(v for v, _ in comps)
    if var == 0:
        return 0.0, math.inf
    denom = sum(v * v / d for v, d in comps if v > 0 and math.isfinite(d))
    return math.sqrt(var), (var * var / denom if denom > 0 else math.inf)


#: where an estimate lies against an interval [low, high] (see ``locate``)
LOCATIONS = ("inside", "above", "below", "undecided")


@dataclass(frozen=True)
class Location:
    """Result of locate: the verdict, the (1 - 2 alpha) interval of the estimate and the
    one-sided p-values. p_inside is the TOST p-value (the larger of the two one-sided tests
    against the outside), p_above tests H0 "estimate <= high", p_below H0 "estimate >= low"."""

    location: str
    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_inside: float
    p_above: float
    p_below: float


def locate(estimate: float, se: float, df: float, low: float, high: float,
           alpha: float = 0.05) -> Location:
    """Where ``estimate`` lies against [low, high], by one-sided t-tests at level ``alpha`` each.

    - "inside": both one-sided tests reject the outside (estimate <= low, estimate >= high):
      equivalence by two one-sided tests (TOST; Schuirmann 1987), i.e. the (1 - 2 alpha)
      interval lies inside [low, high];
    - "above": significantly above ``high`` (the interval lies above it); "below" likewise;
    - "undecided": neither.
    With low == high it is a one-sided test in each direction against that value. se = 0 (no
    noise, e.g. a deterministic model's coverage) decides on the estimate itself; a NaN se or df
    (a noise source that could not be estimated) is "undecided". The t distribution is scipy's;
    statsmodels' ``ttost_paired`` gives the same p_inside on raw paired data (tested).
    """
    if low > high:
        raise ValueError(f"locate: empty interval [{low}, {high}]")
    estimate, se, df = float(estimate), float(se), float(df)
    nan = math.nan
    if any(math.isnan(v) for v in (estimate, se, df)):
        return Location("undecided", estimate, se, df, nan, nan, nan, nan, nan)
    if se == 0:
        where = ("inside" if low < estimate < high else "above" if estimate > high
                 else "below" if estimate < low else "undecided")
        p = {True: 0.0, False: 1.0}
        return Location(where, estimate, 0.0, df, estimate, estimate, p[where == "inside"],
                        p[where == "above"], p[where == "below"])
    t = stats.t(df)
    half = float(t.ppf(1 - alpha)) * se
    p_above = float(t.sf((estimate - high) / se))   # H0: estimate <= high
    p_below = float(t.cdf((estimate - low) / se))   # H0: estimate >= low
    p_inside = max(float(t.sf((estimate - low) / se)), float(t.cdf((estimate - high) / se)))
    where = ("inside" if p_inside < alpha and low < high else "above" if p_above < alpha
             else "below" if p_below < alpha else "undecided")
    return Location(where, estimate, se, df, estimate - half, estimate + half, p_inside,
                    p_above, p_below)


def ttest_power(effect: float, components, alpha: float = 0.05) -> float:
    """Power of a two-sided t-test at level ``alpha`` to detect a true ``effect`` with an
    estimate whose variance is the sum of ``components`` ((variance, df) pairs, as for
    ``satterthwaite``: e.g. the test users' s^2 / n with n - 1 and the seeds' with S - 1).

    The noncentral t of statsmodels' ``TTestPower`` with the noncentrality effect / se and the
    Welch-Satterthwaite df: for one component (sd^2 / n, n - 1) exactly the textbook one-sample
    (paired) t-test of n observations. Where the noncentral t is out of numerical reach (a
    noncentrality in the tens, or infinite df) the normal approximation stands in (statsmodels'
    ``normal_power``), which it then equals to many digits."""
    from statsmodels.stats.power import TTestPower, normal_power

    se, df = satterthwaite(components)
    if effect == 0 or math.isnan(se):
        return alpha if effect == 0 else math.nan
    if se == 0:
        return 1.0
    nobs = df + 1 if math.isfinite(df) else 1e12
    size = abs(effect) / se / math.sqrt(nobs)  # TTestPower: noncentrality size x sqrt(nobs)
    power = float(TTestPower().power(effect_size=size, nobs=nobs, alpha=alpha,
                                     alternative="two-sided"))
    return power if math.isfinite(power) else float(normal_power(size, nobs, alpha))


def sample_size(power_at, power: float = 0.8, start: int = 2, max_n: int = 10**9) -> int | None:
    """The smallest integer n >= ``start`` at which ``power_at(n)`` (non-decreasing in n, e.g.
    ``ttest_power`` of a design with n test users or n seeds) reaches ``power``; None where even
    ``max_n`` falls short (the effect is 0, or a share of the variance that n does not reduce
    keeps the power below ``power``). With power_at(n) = ttest_power(d, [(1 / n, n - 1)]) this is
    statsmodels' ``TTestPower().solve_power`` rounded up: d = 0.5 at 5% two-sided needs 34
    pairs for 80% power (Cohen 1988; G*Power)."""
    if not power_at(max_n) >= power:
        return None
    low, high = start, start
    while power_at(high) < power:  # doubling, then bisection: O(log n) evaluations
        low, high = high + 1, min(2 * high, max_n)
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if power_at(mid) < power else (low, mid)
    return high
