"""Statistics over seeds (mean and a Student-t 95% confidence interval), paired tests
between two models on the same test users (t-test, Wilcoxon signed-rank) and the correction of
a family of p-values for multiple comparisons (Holm, via statsmodels)."""

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


def _per_user_mean(tables, metric: str, user: str, name: str) -> pd.Series:
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
    sa = _per_user_mean(per_user_a, metric, user, "a")
    sb = _per_user_mean(per_user_b, metric, user, "b")
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
