"""Under "12 months after earning", every lot earned expires twelve months after it became
available, whatever earned it: an order, an event, a birthday, an adjustment, a paid
membership period or a referral. A lot written without an expiry would outlive the lots
earned after it and never be counted by the expiry job or its reminders."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from customers.services import CustomerData, event_record, order_ingest
from loyalty.models import EarningRule, MembershipPlan, PointsEntry, Program
from loyalty.services.dates import months_after
from loyalty.services.ledger import account_for, points_adjust
from loyalty.services.memberships import membership_payment_record
from loyalty.services.referrals import referral_record
from loyalty.services.schedule import birthdays_reward
from tests.customers.factories import CustomerFactory, order_data
from tests.loyalty.factories import EarningRuleFactory, ProgramFactory
from tests.merchants.factories import UserFactory

pytestmark = pytest.mark.django_db
AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ADA = CustomerData(external_id="ada", email="ada@example.test")


@pytest.fixture
def program(merchant):
    return ProgramFactory(merchant=merchant, expiry_mode=Program.Expiry.AFTER_EARNING,
                          expiry_months=12, pending_days=0)  # fmt: skip


def _lots(**filters) -> list[PointsEntry]:
    lots = list(PointsEntry.objects.filter(kind__in=["earn", "adjust"], points__gt=0, **filters))
    assert lots
    return lots


def _expire_a_year_after_they_became_available(lots: list[PointsEntry]) -> None:
    for lot in lots:
        zone = lot.account.merchant.zone
        assert lot.expires_at is not None, lot.note
        assert lot.expires_at == months_after(lot.available_at.astimezone(zone), 12), lot.note


def test_order_points_expire(merchant, program):
    with time_machine.travel(AT, tick=False):
        order_ingest(merchant=merchant, data=order_data("o-1", customer=ADA, total="40.00",
                                                         placed_at=AT))  # fmt: skip
    _expire_a_year_after_they_became_available(_lots(order__external_id="o-1"))


def test_event_points_expire(merchant, program):
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.EVENT,
                       event=EarningRule.Event.REVIEW, points=25)  # fmt: skip
    with time_machine.travel(AT, tick=False):
        event_record(merchant=merchant, customer=ADA, key="review", source="api")
    _expire_a_year_after_they_became_available(_lots(points=25))


def test_birthday_points_expire(merchant, program):
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.EVENT,
                       event=EarningRule.Event.BIRTHDAY, points=100)  # fmt: skip
    account_for(customer=CustomerFactory(merchant=merchant, birth_date=date(1990, 3, 10)))
    with time_machine.travel(AT, tick=False):
        assert birthdays_reward(program=program) == 1
    _expire_a_year_after_they_became_available(_lots(points=100))


def test_adjusted_points_expire(merchant, program):
    account = account_for(customer=CustomerFactory(merchant=merchant))
    with time_machine.travel(AT, tick=False):
        points_adjust(account=account, points=300, reason="Goodwill", key="k",
                      by=UserFactory())  # fmt: skip
    _expire_a_year_after_they_became_available(_lots(points=300))


def test_membership_points_expire(merchant, program):
    plan = MembershipPlan.objects.create(merchant=merchant, name="Club", price=Decimal("9"),
                                         currency="USD", period="month",
                                         recurring_points=200)  # fmt: skip
    with time_machine.travel(AT, tick=False):
        membership_payment_record(customer=CustomerFactory(merchant=merchant), plan=plan,
                                  external_id="pay-1", amount=Decimal("9"), currency="USD",
                                  paid_at=AT)  # fmt: skip
    _expire_a_year_after_they_became_available(_lots(points=200))


def test_referral_points_expire(merchant, program):
    program.referrer_points = 500
    program.save()
    referrer = account_for(customer=CustomerFactory(merchant=merchant, email="sam@example.test"))
    friend = CustomerData(external_id="friend", email="friend@example.test")
    with time_machine.travel(AT, tick=False):
        referral_record(merchant=merchant, code=referrer.referral_code, friend=friend)
        order_ingest(merchant=merchant, data=order_data("f-1", customer=friend, total="30.00",
                                                         placed_at=AT))  # fmt: skip
    _expire_a_year_after_they_became_available(_lots(account=referrer))
