"""The email figures of customers/metrics.py, on totals worked out by hand."""

from __future__ import annotations

from decimal import Decimal

from customers.metrics import click_rate, open_rate, unsubscribe_rate


def test_open_click_and_unsubscribe_rates_are_shares_of_delivered():
    # 40 delivered; 10 read (machine opens are not in `opened`), 6 clicked, 1 left.
    assert open_rate(delivered=40, opened=10) == Decimal("0.2500")
    assert click_rate(delivered=40, clicked=6) == Decimal("0.1500")
    assert unsubscribe_rate(delivered=40, unsubscribed=1) == Decimal("0.0250")
    # One in three, rounded half up at the fourth place.
    assert open_rate(delivered=3, opened=1) == Decimal("0.3333")
    assert click_rate(delivered=3, clicked=2) == Decimal("0.6667")


def test_no_delivered_mail_is_no_figure_not_zero():
    assert open_rate(delivered=0, opened=0) is None
    assert click_rate(delivered=0, clicked=0) is None
