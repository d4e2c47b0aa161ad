from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from customers.models import Customer
from customers.services import CustomerData, RefundData, order_ingest, refund_record
from loyalty.models import PointsAccount, Program, TierChange
from loyalty.services.tiers import (
    basis_value_read,
    basis_value_sql,
    basis_values,
    basis_values_by_hand,
    tier_override,
    tiers_recalculate,
)
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.merchants.factories import UserFactory

pytestmark = pytest.mark.django_db
JAN = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def tiers(merchant):
    ProgramFactory(merchant=merchant, tier_window=Program.TierWindow.ROLLING_YEAR)
    return (
        TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100")),
        TierFactory(merchant=merchant, name="Gold", threshold=Decimal("500")),
    )


def _buy(merchant, name, total, at, who="ada"):
    with time_machine.travel(at, tick=False):
        order_ingest(merchant=merchant, data=order_data(
            name, customer=CustomerData(external_id=who), total=total, placed_at=at))  # fmt: skip


def _account(who="ada"):
    return PointsAccount.objects.select_related("tier").get(customer__external_id=who)


def test_downgrade_waits_for_the_grace_period_then_happens_at_recalculation(merchant, tiers):
    silver, gold = tiers
    _buy(merchant, "o-1", "600.00", JAN)
    assert _account().tier == gold
    # The window has rolled past the order, but the grace period (12 months from earning
    # Gold) keeps it until then.
    with time_machine.travel(JAN + timedelta(days=300), tick=False):
        assert tiers_recalculate(merchant=merchant) == 0
    assert _account().tier == gold
    _buy(merchant, "o-2", "150.00", JAN + timedelta(days=320))
    with time_machine.travel(JAN + timedelta(days=400), tick=False):
        assert tiers_recalculate(merchant=merchant) == 1
        assert tiers_recalculate(merchant=merchant) == 0
    account = _account()
    assert account.tier == silver
    change = account.tier_changes.first()
    assert (change.from_tier, change.to_tier, change.reason) == (
        gold, silver, TierChange.Reason.RECALCULATION)  # fmt: skip


def test_a_refund_does_not_downgrade_before_the_recalculation(merchant, tiers):
    _silver, gold = tiers
    _buy(merchant, "o-1", "600.00", JAN)
    with time_machine.travel(JAN + timedelta(days=1), tick=False):
        refund_record(merchant=merchant, data=RefundData(
            source="api", external_id="r-1", order_external_id="o-1",
            amount=Decimal("550.00"), refunded_at=JAN + timedelta(days=1)))  # fmt: skip
    assert _account().tier == gold


def test_a_staff_floor_holds_until_its_date(merchant, tiers):
    _silver, gold = tiers
    _buy(merchant, "o-1", "120.00", JAN)
    staff = UserFactory()
    with time_machine.travel(JAN, tick=False):
        tier_override(account=_account(), tier=gold, until=date(2025, 6, 30), by=staff,
                      note="VIP from the launch event")  # fmt: skip
    assert _account().tier == gold
    with time_machine.travel(datetime(2025, 6, 1, tzinfo=UTC), tick=False):
        assert tiers_recalculate(merchant=merchant) == 0
    # After the floor's date and the grace period, the spend decides again.
    with time_machine.travel(datetime(2026, 2, 1, tzinfo=UTC), tick=False):
        tiers_recalculate(merchant=merchant)
    assert _account().tier is None
    reasons = list(_account().tier_changes.values_list("reason", flat=True))
    assert TierChange.Reason.OVERRIDE in reasons


def test_recalculation_upgrades_what_no_order_did(merchant, tiers):
    silver, _gold = tiers
    _buy(merchant, "o-1", "120.00", JAN, who="bob")
    PointsAccount.objects.update(tier=None)
    with time_machine.travel(JAN + timedelta(days=10), tick=False):
        assert tiers_recalculate(merchant=merchant) == 1
    assert _account("bob").tier == silver


@pytest.mark.needs_postgres
def test_the_history_written_in_bulk_is_the_same_as_row_by_row(merchant, tiers, monkeypatch):
    from customers import inserts
    from customers.models import Activity

    def history():
        changes = TierChange.objects.order_by("account__customer__external_id").values_list(
            "account__customer__external_id", "from_tier__name", "to_tier__name", "reason"
        )
        lines = (
            Activity.objects.filter(kind="tier.changed")
            .order_by("customer__external_id")
            .values_list("customer__external_id", "data")
        )
        return list(changes), list(lines)  # fmt: skip

    for n, total in enumerate(["120.00", "600.00", "30.00"]):
        _buy(merchant, f"o-{n}", total, JAN, who=f"c-{n}")
    results = []
    for use_copy in (True, False):
        monkeypatch.setattr(inserts, "USE_COPY", use_copy)
        PointsAccount.objects.update(tier=None, tier_since=None)
        TierChange.objects.all().delete()
        Activity.objects.filter(kind="tier.changed").delete()
        with time_machine.travel(JAN + timedelta(days=1), tick=False):
            assert tiers_recalculate(merchant=merchant) == 2
        results.append(history())
    assert results[0] == results[1]
    assert [to for _who, _from, to, _reason in results[0][0]] == ["Silver", "Gold"]


@pytest.mark.needs_postgres
def test_a_recalculation_leaves_alone_an_account_changed_since_it_was_read(merchant, tiers):
    from loyalty.services.tiers import ACCOUNT_TIER_FIELDS, _guarded_update

    _silver, gold = tiers
    _buy(merchant, "o-1", "120.00", JAN)
    row = PointsAccount.objects.values_list(*ACCOUNT_TIER_FIELDS).get()
    move = (row[0], row[1], row[2], row[3], gold.pk, "recalculation", row)
    PointsAccount.objects.update(tier=None)  # an order or a member of staff got there first
    assert _guarded_update([move], JAN) == set()
    assert _account("ada").tier is None
    fresh = PointsAccount.objects.values_list(*ACCOUNT_TIER_FIELDS).get()
    assert _guarded_update([(*move[:6], fresh)], JAN) == {row[0]}
    assert _account("ada").tier == gold


@pytest.mark.parametrize("basis", list(Program.TierBasis))
@pytest.mark.parametrize("window", list(Program.TierWindow))
def test_the_rewards_pages_tier_value_is_the_recalculations(merchant, tiers, basis, window):
    """The rewards page reads the value in its own statement (basis_value_sql): for every
    basis and window it is what the recalculation counts, down to how it reads."""
    program = Program.objects.get(merchant=merchant)
    program.tier_basis, program.tier_window = basis, window
    program.save()
    program.merchant = merchant
    _buy(merchant, "o-1", "120.35", JAN - timedelta(days=400))  # before any window but lifetime
    _buy(merchant, "o-2", "80.10", JAN - timedelta(days=20))  # last calendar year
    _buy(merchant, "o-3", "45.99", JAN - timedelta(days=5))
    _buy(merchant, "o-4", "60.00", JAN + timedelta(days=30))  # after the moment read
    _buy(merchant, "b-1", "19.95", JAN - timedelta(days=3), who="bea")
    with time_machine.travel(JAN - timedelta(days=2), tick=False):
        refund_record(merchant=merchant, data=RefundData(
            source="api", external_id="r-1", order_external_id="o-3",
            amount=Decimal("10.49"), refunded_at=JAN - timedelta(days=2)))  # fmt: skip
        order_ingest(merchant=merchant, data=order_data(
            "b-2", customer=CustomerData(external_id="bea"), total="30.00",
            placed_at=JAN - timedelta(days=2), status="cancelled"))  # fmt: skip
        order_ingest(merchant=merchant, data=order_data(
            "c-1", customer=CustomerData(external_id="cy"), total="0.00",
            placed_at=JAN - timedelta(days=2), status="cancelled"))  # fmt: skip
    for who in ("ada", "bea", "cy"):
        customer_id = Customer.objects.get(merchant=merchant, external_id=who).pk
        expected = (
            basis_values(program=program, customer_ids=[customer_id], at=JAN).get(customer_id) or 0
        )
        sql, params = basis_value_sql(program=program, at=JAN, customer="c.id")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {sql} FROM customers_customer c WHERE c.id = %(customer)s",
                           {**params, "customer": customer_id})  # fmt: skip
            (value,) = cursor.fetchone()
        read = basis_value_read(program=program, value=value)
        assert (type(read), str(read)) == (type(expected), str(expected)), (who, value)
    # The order's tier check reads all of them in one hand-written statement: the same
    # values, the same types, and the same customers left out (cy: nothing on the basis).
    ids = list(Customer.objects.filter(merchant=merchant).values_list("pk", flat=True))
    by_orm = basis_values(program=program, customer_ids=ids, at=JAN)
    by_hand = basis_values_by_hand(program=program, customer_ids=ids, at=JAN)
    assert {k: (type(v), str(v)) for k, v in by_hand.items()} == {
        k: (type(v), str(v)) for k, v in by_orm.items()
    }
