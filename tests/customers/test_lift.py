"""The lift statistics on numbers worked out by hand (customers.lift)."""

from __future__ import annotations

import pytest

from customers import lift


def test_two_proportions_interval_and_p_value_by_hand():
    # 200 of 1,000 messaged ordered, 10 of 100 held out: 20% against 10%.
    # Unpooled spread: sqrt(.2 * .8 / 1000 + .1 * .9 / 100) = sqrt(.00106) = .0325576;
    # the 95% margin is 1.959964 * .0325576 = .0638117.
    # Pooled: 210 / 1100 = .1909091; spread sqrt(.1909091 * .8090909 * .011) = .0412200;
    # z = .1 / .04122 = 2.4260, two-sided p = .01527.
    found = lift.conversion_difference(treated_n=1000, treated_converted=200, control_n=100,
                                       control_converted=10)  # fmt: skip
    assert found.estimate == pytest.approx(0.1)
    assert found.low == pytest.approx(0.0361883, abs=1e-6)
    assert found.high == pytest.approx(0.1638117, abs=1e-6)
    assert found.p_value == pytest.approx(0.01527, abs=5e-5)
    assert found.clear
    assert lift.verdict(found, treated_n=1000, control_n=100) == "more"


def test_no_difference_is_not_called_one():
    found = lift.conversion_difference(treated_n=900, treated_converted=90, control_n=100,
                                       control_converted=10)  # fmt: skip
    assert found.estimate == pytest.approx(0.0)
    assert found.p_value == pytest.approx(1.0)
    assert lift.verdict(found, treated_n=900, control_n=100) == "unclear"


def test_worse_is_said_as_worse():
    found = lift.conversion_difference(treated_n=2000, treated_converted=100, control_n=2000,
                                       control_converted=200)  # fmt: skip
    assert found.high < 0
    assert lift.verdict(found, treated_n=2000, control_n=2000) == "fewer"


def test_welch_interval_by_hand():
    # Messaged spent 10, 0, 20, 0, 30 (mean 12, variance (1400 - 5 * 144) / 4 = 170);
    # held out 0, 0, 10 (mean 3.3333, variance (100 - 3 * 11.1111) / 2 = 33.3333).
    # Spread sqrt(170 / 5 + 33.3333 / 3) = sqrt(45.1111) = 6.71648; Welch-Satterthwaite
    # 45.1111² / (34² / 4 + 11.1111² / 2) = 5.802 degrees of freedom, so t = 2.571 (5 df);
    # the margin is 2.571 * 6.71648 = 17.268.
    treated = lift.Moments(n=5, total=60, squares=1400)
    control = lift.Moments(n=3, total=10, squares=100)
    assert treated.variance == pytest.approx(170)
    assert control.variance == pytest.approx(33.33333, abs=1e-4)
    assert lift.welch_degrees(treated, control) == pytest.approx(5.802, abs=1e-3)
    found = lift.mean_difference(treated=treated, control=control)
    assert found.estimate == pytest.approx(8.66667, abs=1e-4)
    assert found.low == pytest.approx(8.66667 - 17.268, abs=2e-3)
    assert found.high == pytest.approx(8.66667 + 17.268, abs=2e-3)
    assert not found.clear


@pytest.mark.parametrize(
    ("df", "table"),
    [(1, 12.706), (5, 2.571), (10, 2.228), (30, 2.042), (40, 2.021), (60, 2.000),
     (120, 1.980), (100_000, 1.960)],
)  # fmt: skip
def test_t_quantile_matches_the_published_table(df, table):
    assert lift.t_quantile_95(df) == pytest.approx(table, abs=1.5e-3)


def test_groups_too_small_or_missing_are_named():
    found = lift.conversion_difference(treated_n=20, treated_converted=15, control_n=5,
                                       control_converted=0)  # fmt: skip
    assert lift.verdict(found, treated_n=20, control_n=5) == "too_small"
    assert lift.verdict(None, treated_n=100, control_n=0) == "no_holdout"
    assert lift.conversion_difference(treated_n=10, treated_converted=1, control_n=0,
                                      control_converted=0) is None  # fmt: skip
    assert lift.mean_difference(treated=lift.Moments(5, 10, 30),
                                control=lift.Moments(1, 0, 0)) is None  # fmt: skip
