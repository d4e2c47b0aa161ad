"""Tiers as the calendar turns: windows across year ends in the merchant's own time zone,
grace periods, DST days, month ends and leap days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from customers.services import CustomerData, RefundData, order_ingest, refund_record
from loyalty.models import PointsAccount, PointsEntry, Program
from loyalty.services.schedule import daily_job_run, programs_due
from loyalty.services.tiers import basis_values, grace_until, tiers_recalculate, window_start
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, TierFactory

pytestmark = pytest.mark.django_db


def _shop(merchant, zone: str, window: str) -> Program:
    merchant.timezone = zone
    merchant.save()
    program = ProgramFactory(merchant=merchant, tier_window=window)
    TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100"))
    TierFactory(merchant=merchant, name="Gold", threshold=Decimal("500"))
    return program


def _buy(merchant, name, total, at, who="ada"):
    with time_machine.travel(at, tick=False):
        order_ingest(merchant=merchant, data=order_data(
            name, customer=CustomerData(external_id=who), total=total, placed_at=at))  # fmt: skip


def _tier(who="ada"):
    account = PointsAccount.objects.select_related("tier").get(customer__external_id=who)
    return account.tier.name if account.tier else None


@pytest.mark.parametrize(
    ("zone", "counts_in"),
    [("America/New_York", 2025), ("Asia/Tehran", 2026)],
)
def test_the_calendar_year_turns_in_the_merchants_zone(merchant, zone, counts_in):
    program = _shop(merchant, zone, Program.TierWindow.CALENDAR_YEAR)
    # 02:00 UTC on Jan 1 2026: still New Year's Eve in New York, already Jan 1 in Tehran.
    placed = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    _buy(merchant, "o-1", "120.00", placed)
    customer_id = PointsAccount.objects.get().customer_id
    in_2026 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    value = basis_values(program=program, customer_ids=[customer_id], at=in_2026).get(customer_id)
    assert (value is not None) == (counts_in == 2026)


def test_a_calendar_year_tier_is_kept_through_the_next_year(merchant):
    program = _shop(merchant, "Europe/Berlin", Program.TierWindow.CALENDAR_YEAR)
    earned = datetime(2025, 12, 31, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    _buy(merchant, "o-1", "600.00", earned)
    assert _tier() == "Gold"
    assert grace_until(program=program, since=earned).isoformat() == "2027-01-01T00:00:00+01:00"
    with time_machine.travel(datetime(2026, 12, 31, 12, 0, tzinfo=UTC), tick=False):
        assert tiers_recalculate(merchant=merchant) == 0
    with time_machine.travel(datetime(2027, 1, 1, 12, 0, tzinfo=UTC), tick=False):
        assert tiers_recalculate(merchant=merchant) == 1
    assert _tier() is None


def test_a_rolling_window_drops_an_order_a_year_later_to_the_day(merchant):
    program = _shop(merchant, "America/New_York", Program.TierWindow.ROLLING_YEAR)
    placed = datetime(2025, 1, 31, 15, 0, tzinfo=UTC)
    _buy(merchant, "o-1", "150.00", placed)
    customer_id = PointsAccount.objects.get().customer_id

    def counted(at):
        return customer_id in basis_values(program=program, customer_ids=[customer_id], at=at)

    assert counted(placed + timedelta(days=364))
    assert not counted(datetime(2026, 1, 31, 15, 1, tzinfo=UTC))


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tehran"])
def test_a_leap_day_window_starts_on_feb_28_a_year_before(merchant, zone):
    program = _shop(merchant, zone, Program.TierWindow.ROLLING_YEAR)
    leap = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    assert window_start(program=program, at=leap).date().isoformat() == "2027-02-28"


@pytest.mark.parametrize(
    ("day", "hours_utc"),
    [
        ("2026-03-08", (6, 7, 8, 12)),  # New York springs forward: 02:00 local never happens
        ("2026-11-01", (5, 6, 7, 12)),  # and falls back: 01:00 to 02:00 comes twice
    ],
)
def test_the_daily_jobs_run_once_on_dst_days(merchant, day, hours_utc):
    _shop(merchant, "America/New_York", Program.TierWindow.ROLLING_YEAR)
    ran = []
    for hour in hours_utc:
        at = datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")
        with time_machine.travel(at, tick=False):
            for merchant_id, local_date in programs_due():
                if daily_job_run(job="loyalty.tiers", merchant_id=merchant_id,
                                 local_date=local_date) is not None:  # fmt: skip
                    ran.append(local_date)
    assert ran == [day]


def test_a_refund_after_a_tier_change_takes_back_what_the_order_earned(merchant):
    ProgramFactory(merchant=merchant)
    TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100"),
                multiplier=Decimal("1.25"))  # fmt: skip
    TierFactory(merchant=merchant, name="Gold", threshold=Decimal("200"),
                multiplier=Decimal("2"))  # fmt: skip
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    _buy(merchant, "o-1", "120.00", now - timedelta(days=3))  # base rate, then Silver
    _buy(merchant, "o-2", "100.00", now - timedelta(days=2))  # at Silver x1.25, then Gold
    assert _tier() == "Gold"
    earned = PointsEntry.objects.get(order__external_id="o-2", kind="earn").points
    assert earned == 125
    with time_machine.travel(now, tick=False):
        refund_record(merchant=merchant, data=RefundData(
            source="api", external_id="r-1", order_external_id="o-2",
            amount=Decimal("100.00"), refunded_at=now))  # fmt: skip
    reversal = PointsEntry.objects.get(kind="reverse")
    assert reversal.points == -125  # not the Gold rate of today
    assert PointsAccount.objects.get().available == 120
