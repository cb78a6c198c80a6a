"""Verdicts against the paper: each published cell *reproduced*, *ours higher*, *ours lower* or
*undecided* against a stated margin; the paper's claims tested as claims (*holds*, *refuted*,
*undecided*); and the test users and seeds a run needs to see the paper's Gain.

``cell_verdict`` is the one verdict of a cell: Table 2 (``reports.add_verdicts``), Tables 3-5,
the figure notes and any other report that sets a number of ours beside one of the paper's call
it. ``paired_gain``, ``beats``, ``matches_gain`` and ``gain_power`` are the claims and their power
(``reports.reproduction_claims`` applies them to the paper's claims). The tests themselves are
recbench.protocol.stats' (``satterthwaite``, ``locate``, ``ttest_power``, ``sample_size``).

Assumptions (results/reproduction.md prints them):

1. *Our noise.* A cell is the mean over S seeds of the mean over n test users. Its variance is
   taken as s_user^2 / n + s_seed^2 / S: s_user the standard deviation over the test users of
   each user's value averaged over the seeds (which test users the split drew), s_seed that of
   the S seed means (training randomness; s_seed / sqrt(S) is Table 2's 95% half-width over its
   t quantile). The user-by-seed noise enters both terms, so this overstates the variance by that
   noise / (n S): a little on the safe side. Degrees of freedom: Welch-Satterthwaite. Coverage
   has no per-user value, so only its seed term (its test-user sampling is not accounted for).
   With one seed the seed noise is unknown and every verdict is *undecided*.
2. *The paper's noise.* Where the paper gives a ± (SASRec and CREATE in Table 2) the ± widens the
   margin. Elsewhere its seed noise is an assumption, ``paper_seed_noise``: ``ours`` (default)
   takes the paper's mean to be as noisy as our seed term (as many seeds, the same training
   noise); a number c takes its standard error as c x its value. The paper's test users are
   taken to be ours (the same split of the same data), so they add no noise of their own.
3. *The margin.* Ours - paper counts as the paper's within +-(margin x |paper| + the paper's ±),
   ``margin`` relative (``reproduction.margin``, default 0.10).
4. *The verdict*, by two one-sided t-tests at ``alpha`` each (TOST): *reproduced* when the
   (1 - 2 alpha) interval of ours - paper lies inside the margin, *ours higher* / *ours lower*
   when it lies beyond it, *undecided* otherwise.
5. *Claims*, on the paired per-user values of the same test users (each user averaged over the
   seeds of each model): the Gain g = mean(a) / mean(b) - 1, with the delta-method variance
   var(a_i - (1 + g) b_i) / (n mean(b)^2) plus both models' seed terms carried to the ratio.
   "A > B" *holds* when g is significantly above 0 (one-sided at alpha), is *refuted* when
   significantly below 0, else *undecided*. "The paper's Gain" G *holds* when g lies within
   G +- margin x (1 + G) (the relative margin on the ratio A / B) by TOST, is *refuted* (ours
   lower or higher) when significantly outside, else *undecided*. The paper's ± are per model and
   say nothing of how its Gain varies, so they do not widen this margin; the paper's Gain is
   instead taken to be as noisy as our seed share of it (or, with a number c, each of its two
   values has a standard error c x the value).
6. *Power*: the effect is the paper's Gain on our scale, G x mean(b) in points; the variance of
   the mean difference at n test users and S seeds is sd_diff^2 / n + tau^2 / S, sd_diff the
   per-user standard deviation of the paired difference a_i - b_i and tau^2 the variance of one
   seed's difference of the two models' means; a two-sided t-test at alpha with
   Welch-Satterthwaite df gives the run's power, the test users needed at the run's seeds and
   the seeds needed at its test users to reach ``power`` (default 80%). One seed: tau is
   unknown and left out, and the seeds needed are unknown.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from recbench.errors import ConfigError
from recbench.protocol.stats import locate, sample_size, satterthwaite, ttest_power

#: a cell's verdict; a claim's
VERDICTS = ("reproduced", "ours higher", "ours lower", "undecided")
CLAIM_VERDICTS = ("holds", "refuted", "undecided")
CELL_OF = {"inside": "reproduced", "above": "ours higher", "below": "ours lower",
           "undecided": "undecided"}


@dataclass(frozen=True)
class Rules:
    """The config's ``reproduction:`` section (config/schema.yaml documents each key)."""

    margin: float = 0.10
    alpha: float = 0.05
    power: float = 0.80
    paper_seed_noise: str | float = "ours"

    def __post_init__(self):
        if not (isinstance(self.margin, (int, float)) and 0 <= self.margin < 1):
            raise ConfigError(f"reproduction.margin must be a fraction in [0, 1), e.g. 0.10 for "
                              f"10% of the paper's value; got {self.margin!r}.")
        for key in ("alpha", "power"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and 0 < value < 1):
                raise ConfigError(f"reproduction.{key} must lie strictly between 0 and 1; got "
                                  f"{value!r}.")
        noise = self.paper_seed_noise
        if not (noise == "ours" or (isinstance(noise, (int, float)) and not isinstance(noise, bool)
                                    and noise >= 0)):
            raise ConfigError("reproduction.paper_seed_noise must be `ours` (the paper's seed "
                              "noise taken equal to ours) or a relative standard error >= 0 "
                              f"(e.g. 0.02); got {noise!r}.")

    @classmethod
    def from_config(cls, section: dict | None) -> "Rules":
        section = dict(section or {})
        unknown = set(section) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"reproduction: unknown key(s) {sorted(unknown)}; known: "
                              f"{sorted(cls.__dataclass_fields__)}.")
        return cls(**section)

    def describe(self) -> str:
        """One sentence for a report's caption: the margin, the tests and the paper's noise."""
        noise = ("taken equal to ours" if self.paper_seed_noise == "ours" else
                 f"a standard error of {100 * self.paper_seed_noise:g}% of its value")
        return (f"The rule (recbench/protocol/verdicts.py): margin ±{100 * self.margin:g}% of the paper's "
                "value, widened by the paper's ± where it gives one; *reproduced* when the "
                f"{100 * (1 - 2 * self.alpha):g}% interval of ours − paper lies inside the margin "
                f"(two one-sided t-tests at {100 * self.alpha:g}%), *ours higher* / *ours lower* "
                "when it lies beyond it, else *undecided*; our noise from seeds and test users, "
                f"the paper's seed noise where it gives no ± {noise}.")


def seed_var_of_mean(ci95: float, n_seeds: int) -> float:
    """s_seed^2 / S from a 95% Student-t half-width over ``n_seeds`` seeds (NaN below 2 seeds)."""
    if n_seeds < 2 or not math.isfinite(ci95):
        return math.nan
    return (ci95 / float(stats.t.ppf(0.975, n_seeds - 1))) ** 2


@dataclass(frozen=True)
class CellVerdict:
    """cell_verdict's result; values in the caller's unit (Table 2: percent)."""

    dataset: str
    model: str
    verdict: str            # one of VERDICTS
    diff: float             # ours - paper
    diff_low: float         # the (1 - 2 alpha) interval of ours - paper
    diff_high: float
    margin: float           # margin x |paper| + the paper's ±
    se: float
    df: float
    p_equivalent: float     # TOST p-value
    reason: str             # why undecided where it cannot be otherwise, else ""

    def as_dict(self) -> dict:
        return asdict(self)


def cell_verdict(dataset: str, model: str, mean: float, ci95: float, n_seeds: int, paper: float,
                 paper_pm: float = 0.0, *, user_sd: float = math.nan, n_users: int = 0,
                 rules: Rules = Rules()) -> CellVerdict:
    """The verdict on one cell: ours (``mean`` ± ``ci95``, the 95% Student-t half-width over
    ``n_seeds`` seeds) against the paper's ``paper`` (± ``paper_pm``, 0 or NaN where it gives
    none), under the assumptions of this module's docstring.

    ``user_sd`` and ``n_users``: the standard deviation over test users of each user's value
    averaged over the seeds, and their number (reports.per_user_spread); without them (a
    catalog-level metric such as coverage, or a report without per-user values) only the seed
    noise counts. Any unit works as long as all values share it.
    """
    pm = 0.0 if paper_pm is None or math.isnan(paper_pm) else float(paper_pm)
    seed_var = seed_var_of_mean(ci95, n_seeds)
    components = [(seed_var, n_seeds - 1)]
    if n_users > 1 and math.isfinite(user_sd):
        components.append((user_sd * user_sd / n_users, n_users - 1))
    if pm == 0:
        if rules.paper_seed_noise == "ours":
            components.append((seed_var, n_seeds - 1))
        else:
            components.append(((rules.paper_seed_noise * paper) ** 2, math.inf))
    se, df = satterthwaite(components)
    margin = rules.margin * abs(paper) + pm
    where = locate(mean - paper, se, df, -margin, margin, rules.alpha)
    reason = "one seed: its seed noise is unknown" if n_seeds < 2 else ""
    return CellVerdict(dataset, model, CELL_OF[where.location], mean - paper, where.ci_low,
                       where.ci_high, margin, se, df, where.p_inside, reason)


# ---------------------------------------------------------------------------------------------
# Claims: the Gain of one model over another on the same test users, and the power to see it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gain:
    """Relative gain of model a over model b (a fraction: 0.13 is +13%), from paired_gain."""

    value: float
    se: float
    df: float
    components: tuple       # (variance, df) of the test users' share, then each model's seeds'
    n_users: int
    n_seeds: int            # the fewer of the two models' seeds
    mean_a: float
    mean_b: float
    diff_sd: float          # standard deviation over users of a_i - b_i (seed-averaged values)
    seed_var: float         # both models' seed variance of the mean difference, a - b

    @property
    def seed_components(self) -> tuple:
        return self.components[1:]


def paired_gain(a, b, seed_var_a: float, seed_var_b: float, n_seeds_a: int,
                n_seeds_b: int) -> Gain:
    """Gain of a over b, mean(a) / mean(b) - 1, on aligned per-user values (a[i], b[i] the same
    user, each averaged over its model's seeds: stats.paired_per_user).

    Variance (delta method): var(a_i - (1 + g) b_i) / (n mean(b)^2) for the test users, plus
    (seed_var_a + (1 + g)^2 seed_var_b) / mean(b)^2 for the seeds (seed_var_*: each model's
    s_seed^2 / S, seed_var_of_mean); Welch-Satterthwaite degrees of freedom.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = a.size
    if n < 2 or b.size != n:
        raise ValueError(f"paired_gain needs at least 2 aligned users; got {a.size} and {b.size}")
    mean_a, mean_b = float(a.mean()), float(b.mean())
    diff_sd, seeds = float(np.std(a - b, ddof=1)), min(n_seeds_a, n_seeds_b)
    if mean_b <= 0:
        nan = math.nan
        return Gain(nan, nan, nan, (), n, seeds, mean_a, mean_b, diff_sd, nan)
    ratio = mean_a / mean_b
    z = (a - ratio * b) / mean_b
    components = ((float(z.var(ddof=1)) / n, n - 1),
                  (seed_var_a / mean_b ** 2, n_seeds_a - 1),
                  (ratio * ratio * seed_var_b / mean_b ** 2, n_seeds_b - 1))
    se, df = satterthwaite(components)
    return Gain(ratio - 1, se, df, components, n, seeds, mean_a, mean_b, diff_sd,
                seed_var_a + seed_var_b)


@dataclass(frozen=True)
class ClaimVerdict:
    verdict: str            # one of CLAIM_VERDICTS
    direction: str          # refuted: "ours lower" or "ours higher"; else ""
    low: float              # the claim's interval of gains (a point for "a > b")
    high: float
    ci_low: float           # the (1 - 2 alpha) interval of our gain
    ci_high: float
    p_value: float          # the one-sided p-value of "holds" (TOST's for an interval)
    reason: str


def _claim(gain: Gain, where, low: float, high: float) -> ClaimVerdict:
    point = low == high
    holds = where.location == ("above" if point else "inside")
    refuted = where.location == "below" or (not point and where.location == "above")
    verdict = "holds" if holds else "refuted" if refuted else "undecided"
    direction = ("ours lower" if where.location == "below" else "ours higher") if refuted else ""
    reason = "one seed: its seed noise is unknown" if gain.n_seeds < 2 else ""
    return ClaimVerdict(verdict, direction, low, high, where.ci_low, where.ci_high,
                        where.p_above if point else where.p_inside, reason)


def beats(gain: Gain, rules: Rules = Rules()) -> ClaimVerdict:
    """The claim "a > b": holds when the gain is significantly above 0 (one-sided at alpha),
    refuted when significantly below 0, else undecided."""
    return _claim(gain, locate(gain.value, gain.se, gain.df, 0.0, 0.0, rules.alpha), 0.0, 0.0)


def gain_margin(paper_gain: float, rules: Rules) -> float:
    """Half-width of the gains that count as the paper's: margin x (1 + G), the relative margin
    on the ratio a / b."""
    return rules.margin * (1 + paper_gain)


def matches_gain(gain: Gain, paper_gain: float, rules: Rules = Rules()) -> ClaimVerdict:
    """The claim "the gain is the paper's G": holds when our gain lies within G +- gain_margin
    by two one-sided tests, refuted (ours lower / higher) when significantly outside. The
    paper's G has seed noise of its own (its ± are per model, not of its gain): taken equal to
    our seed share of the gain (``paper_seed_noise: ours``), or a standard error of c x its
    value for each of the two models (c x (1 + G) x sqrt 2 on the ratio)."""
    if rules.paper_seed_noise == "ours":
        paper = gain.seed_components
    else:
        paper = ((2 * (rules.paper_seed_noise * (1 + paper_gain)) ** 2, math.inf),)
    se, df = satterthwaite((*gain.components, *paper))
    low, high = paper_gain - gain_margin(paper_gain, rules), paper_gain + gain_margin(
        paper_gain, rules)
    return _claim(gain, locate(gain.value, se, df, low, high, rules.alpha), low, high)


@dataclass(frozen=True)
class Power:
    effect: float           # the paper's gain on our scale: G x mean(b)
    diff_sd: float
    n_users: int
    n_seeds: int
    power: float            # of this run, two-sided t-test at alpha
    users_needed: int | None    # at this run's seeds; None: no number of users suffices
    seeds_needed: int | None    # at this run's users; None: no number of seeds suffices
    seed_noise_known: bool


def gain_power(gain: Gain, paper_gain: float, rules: Rules = Rules()) -> Power:
    """The power of the run behind ``gain`` to detect the paper's Gain, and what would reach
    ``rules.power``. The effect is G x mean(b); the variance of the mean difference at n test
    users and S seeds (of each model) is diff_sd^2 / n (df n - 1) + tau^2 / S (df S - 1), tau^2
    the variance of one seed's difference of means (recbench.protocol.stats.ttest_power). The run's power
    is that at its own n and S, the users needed are the smallest n at its S, the seeds needed
    the smallest S at its n (recbench.protocol.stats.sample_size): so a run with 80% power needs no more
    of either. One seed: tau is unknown, left out, and the seeds needed are unknown."""
    effect = paper_gain * gain.mean_b
    known = math.isfinite(gain.seed_var)
    tau2 = gain.seed_var * gain.n_seeds if known else 0.0

    def power_at(n: int, seeds: int) -> float:
        return ttest_power(effect, [(gain.diff_sd ** 2 / n, n - 1), (tau2 / seeds, seeds - 1)],
                           rules.alpha)

    n, seeds = gain.n_users, max(gain.n_seeds, 2)
    users = sample_size(lambda k: power_at(k, seeds), rules.power)
    more = sample_size(lambda k: power_at(n, k), rules.power) if known else None
    return Power(effect, gain.diff_sd, n, gain.n_seeds, power_at(n, seeds), users, more, known)
