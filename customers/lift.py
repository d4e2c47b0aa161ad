"""What a campaign changed, defined once (docs/business-rules.md, lift): the difference
between the customers it messaged and the customers it held out, with a 95% interval.

Conversion (the share of a group who ordered) is compared as two proportions: the
interval is the unpooled normal (Wald) one, and the two-sided p-value is the pooled
z-test's. Revenue per customer is compared as two means with Welch's interval (unequal
variances, Welch-Satterthwaite degrees of freedom). Each takes plain totals, so whatever
query counted the groups, the definition is the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

Z_95 = NormalDist().inv_cdf(0.975)
# Student's t at 0.975 for 1…30 degrees of freedom (the published table); past 30 the
# Cornish-Fisher expansion below is within 0.001 of it.
_T_95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
# Below this many customers in either group the report says the groups are too small to
# compare, whatever the interval says: the normal approximations don't hold.
MIN_GROUP = 30


def t_quantile_95(df: float) -> float:
    """Student's t at 0.975 for `df` degrees of freedom; a fractional df below 30 takes the
    whole number below it (a slightly wider, so cautious, interval)."""
    if df < 1:
        return _T_95[0]
    if df <= len(_T_95):
        return _T_95[int(df) - 1]
    z = Z_95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class Difference:
    """treated - control, with its 95% interval; `clear` when the interval leaves out 0."""

    treated: float
    control: float
    estimate: float
    low: float
    high: float
    p_value: float | None = None

    @property
    def clear(self) -> bool:
        return self.low > 0 or self.high < 0


def conversion_difference(
    *, treated_n: int, treated_converted: int, control_n: int, control_converted: int
) -> Difference | None:
    """The difference in conversion rates (a fraction: 0.02 is two points); None when a
    group is empty."""
    if not treated_n or not control_n:
        return None
    p1, p2 = treated_converted / treated_n, control_converted / control_n
    estimate = p1 - p2
    spread = math.sqrt(p1 * (1 - p1) / treated_n + p2 * (1 - p2) / control_n)
    pooled = (treated_converted + control_converted) / (treated_n + control_n)
    null_spread = math.sqrt(pooled * (1 - pooled) * (1 / treated_n + 1 / control_n))
    p_value = 1.0 if null_spread == 0 else 2 * (1 - NormalDist().cdf(abs(estimate) / null_spread))
    return Difference(p1, p2, estimate, estimate - Z_95 * spread, estimate + Z_95 * spread,
                      p_value)  # fmt: skip


@dataclass(frozen=True)
class Moments:
    """A group's values as the database can total them: how many, their sum, and the sum
    of their squares."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The sample variance (n - 1 below)."""
        if self.n < 2:
            return 0.0
        return max(self.squares - self.n * self.mean**2, 0.0) / (self.n - 1)


def welch_degrees(treated: Moments, control: Moments) -> float:
    a, b = treated.variance / treated.n, control.variance / control.n
    if a + b == 0:
        return float(treated.n + control.n - 2)
    return (a + b) ** 2 / (a**2 / (treated.n - 1) + b**2 / (control.n - 1))


def mean_difference(*, treated: Moments, control: Moments) -> Difference | None:
    """The difference in means (revenue per customer) with Welch's 95% interval; None when
    a group has fewer than two customers."""
    if treated.n < 2 or control.n < 2:
        return None
    estimate = treated.mean - control.mean
    spread = math.sqrt(treated.variance / treated.n + control.variance / control.n)
    margin = t_quantile_95(welch_degrees(treated, control)) * spread
    return Difference(treated.mean, control.mean, estimate, estimate - margin, estimate + margin)


def verdict(difference: Difference | None, *, treated_n: int, control_n: int) -> str:
    """What the report says in words: "no_holdout", "too_small", "more", "fewer" (the
    messaged group did better or worse, and the interval leaves out no difference), or
    "unclear" (it doesn't)."""
    if control_n == 0:
        return "no_holdout"
    if difference is None or min(treated_n, control_n) < MIN_GROUP:
        return "too_small"
    if not difference.clear:
        return "unclear"
    return "more" if difference.estimate > 0 else "fewer"
