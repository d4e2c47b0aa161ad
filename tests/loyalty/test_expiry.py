from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils.timezone import now

from customers.models import Activity
from loyalty.models import PointsEntry, Program
from loyalty.services.dates import months_after
from loyalty.services.expiry import expiry_reminders, points_expire
from loyalty.services.ledger import (
    account_for,
    account_locked,
    entry_write,
    lot_expiry,
    points_adjust,
)
from loyalty.services.rewards import reward_redeem
from tests.customers.factories import CustomerFactory
from tests.loyalty.factories import ProgramFactory, RewardFactory
from tests.loyalty.helpers import ledger_matches

pytestmark = pytest.mark.django_db
START = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)


def _earn(account, points, at, program):
    with transaction.atomic():
        entry_write(
            account=account_locked(account=account),
            kind=PointsEntry.Kind.EARN,
            points=points,
            key=f"earn:{account.pk}:{at.isoformat()}",
            at=at,
            expires_at=lot_expiry(program=program, available_at=at, zone=program.merchant.zone),
        )


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2025, 1, 31, tzinfo=UTC), 1, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2025, 1, 31, tzinfo=UTC), 2, datetime(2025, 3, 31, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), 12, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2025, 3, 31, tzinfo=UTC), -1, datetime(2025, 2, 28, tzinfo=UTC)),
    ],
)
def test_months_are_added_from_the_anchor(start, months, expected):
    assert months_after(start, months) == expected


def test_the_oldest_points_are_spent_first_and_the_rest_expire(merchant):
    program = ProgramFactory(merchant=merchant, expiry_mode=Program.Expiry.AFTER_EARNING,
                             expiry_months=6)  # fmt: skip
    account = account_for(customer=CustomerFactory(merchant=merchant))
    with time_machine.travel(START, tick=False):
        _earn(account, 100, START, program)
    with time_machine.travel(START + timedelta(days=60), tick=False):
        _earn(account, 50, now(), program)
        reward_redeem(account=account, reward=RewardFactory(merchant=merchant, points_cost=70),
                      key="spend")  # fmt: skip
    # Six months after the first lot: 70 of its 100 were spent, so 30 expire; the newer 50
    # stay.
    with time_machine.travel(months_after(START, 6) + timedelta(hours=1), tick=False):
        assert points_expire(program=program) == 30
        assert points_expire(program=program) == 0
    account.refresh_from_db()
    assert account.available == 50
    assert ledger_matches(account)
    with time_machine.travel(months_after(START + timedelta(days=60), 6) + timedelta(hours=1)):
        assert points_expire(program=program) == 50
    account.refresh_from_db()
    assert account.available == 0
    assert Activity.objects.filter(kind=Activity.Kind.POINTS_EXPIRED).count() == 2


def test_a_reminder_comes_once_before_points_expire(merchant):
    program = ProgramFactory(merchant=merchant, expiry_mode=Program.Expiry.AFTER_EARNING,
                             expiry_months=1, reminder_days=7)  # fmt: skip
    account = account_for(customer=CustomerFactory(merchant=merchant))
    with time_machine.travel(START, tick=False):
        _earn(account, 40, START, program)
        assert expiry_reminders(program=program) == 0
    with time_machine.travel(months_after(START, 1) - timedelta(days=3), tick=False):
        assert expiry_reminders(program=program) == 1
        assert expiry_reminders(program=program) == 0
    reminder = Activity.objects.get(kind=Activity.Kind.POINTS_EXPIRING)
    assert reminder.data["points"] == 40


def test_inactivity_expires_the_whole_balance_and_activity_keeps_it(merchant):
    program = ProgramFactory(merchant=merchant, expiry_mode=Program.Expiry.INACTIVITY,
                             expiry_months=12)  # fmt: skip
    quiet = account_for(customer=CustomerFactory(merchant=merchant))
    busy = account_for(customer=CustomerFactory(merchant=merchant))
    with time_machine.travel(START, tick=False):
        _earn(quiet, 80, START, program)
        _earn(busy, 80, START, program)
    with time_machine.travel(START + timedelta(days=300), tick=False):
        _earn(busy, 5, now(), program)
    with time_machine.travel(months_after(START, 12) + timedelta(days=1), tick=False):
        assert points_expire(program=program) == 80
    quiet.refresh_from_db()
    busy.refresh_from_db()
    assert (quiet.available, busy.available) == (0, 85)


def test_calendar_year_points_expire_on_new_years_day_in_the_merchants_zone(merchant):
    merchant.timezone = "Asia/Tehran"
    merchant.save()
    program = ProgramFactory(merchant=merchant, expiry_mode=Program.Expiry.CALENDAR_YEAR)
    expires = lot_expiry(program=program, available_at=datetime(2025, 12, 31, 21, 0, tzinfo=UTC),
                         zone=merchant.zone)  # fmt: skip
    # 21:00 UTC on Dec 31 is already Jan 1 in Tehran: those points last until the next year.
    assert expires.year == 2027
    assert expires.utcoffset() == timedelta(hours=3, minutes=30)


def test_a_manual_adjustment_needs_a_reason_and_is_audited(merchant):
    from django.core.exceptions import ValidationError

    from merchants.models import AuditEvent
    from tests.merchants.factories import UserFactory

    ProgramFactory(merchant=merchant)
    account = account_for(customer=CustomerFactory(merchant=merchant))
    staff = UserFactory()
    with pytest.raises(ValidationError, match="Say why"):
        points_adjust(account=account, points=10, reason=" ", by=staff, key="a")
    points_adjust(account=account, points=25, reason="Late delivery", by=staff, key="b")
    with pytest.raises(ValidationError, match="Not enough points"):
        points_adjust(account=account, points=-30, reason="Mistake", by=staff, key="c")
    account.refresh_from_db()
    assert account.available == 25
    event = AuditEvent.objects.get(action="loyalty.points_adjusted")
    assert event.after["reason"] == "Late delivery"
    assert event.actor == staff
