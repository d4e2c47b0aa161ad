"""Each loyalty job run twice in a row, and by two workers at once, changes things once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction

from customers.models import Activity
from customers.services import CustomerData, order_ingest
from loyalty.models import Membership, MembershipPlan, PointsEntry, Program, TierChange
from loyalty.services.expiry import pending_confirm, points_expire
from loyalty.services.ledger import account_locked, entry_write
from loyalty.services.memberships import membership_payment_record, memberships_run
from loyalty.services.schedule import DAILY_JOBS, daily_job_run
from loyalty.services.tiers import tiers_recalculate
from tests.customers.factories import CustomerFactory, order_data
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.loyalty.helpers import account_with, ledger_matches
from tests.races import race

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _world():
    program = ProgramFactory(pending_days=10, expiry_mode=Program.Expiry.AFTER_EARNING,
                             expiry_months=1)  # fmt: skip
    merchant = program.merchant
    TierFactory(merchant=merchant, name="Silver", threshold=Decimal("50"))
    with time_machine.travel(NOW - timedelta(days=20), tick=False):
        for n in range(6):
            order_ingest(merchant=merchant, data=order_data(
                f"o-{n}", customer=CustomerData(external_id=f"c-{n}"), total="60.00",
                placed_at=NOW - timedelta(days=20)))  # fmt: skip
    old = account_with(merchant, 0)
    with transaction.atomic():
        entry_write(account=account_locked(account=old), kind=PointsEntry.Kind.EARN, points=70,
                    key="old-lot", available_at=NOW - timedelta(days=90),
                    expires_at=NOW - timedelta(days=1))  # fmt: skip
    plan = MembershipPlan.objects.create(merchant=merchant, name="Club", price=5, currency="USD",
                                         period="month", grace_days=0)  # fmt: skip
    membership_payment_record(customer=CustomerFactory(merchant=merchant), plan=plan,
                              external_id="pay-1", amount=Decimal(5), currency="USD",
                              paid_at=NOW - timedelta(days=40))  # fmt: skip
    return program


def _effects(merchant):
    return (
        list(PointsEntry.objects.filter(merchant=merchant).order_by("pk")
             .values_list("kind", "points")),
        TierChange.objects.filter(merchant=merchant).count(),
        Activity.objects.filter(merchant=merchant).count(),
        sorted(Membership.objects.filter(merchant=merchant).values_list("state", flat=True)),
    )  # fmt: skip


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_each_daily_job_by_two_workers_at_once_runs_once():
    program = _world()
    merchant = program.merchant
    with time_machine.travel(NOW, tick=False):
        for job in DAILY_JOBS:
            results = []
            errors = race(
                lambda _i, job=job, results=results: results.append(
                    daily_job_run(job=job, merchant_id=merchant.pk, local_date="2026-06-15")
                ),
                2,
            )
            assert errors == []
            assert sum(r is not None for r in results) == 1
        after_once = _effects(merchant)
        for job in DAILY_JOBS:
            assert daily_job_run(job=job, merchant_id=merchant.pk, local_date="2026-06-15") is None
    assert _effects(merchant) == after_once
    assert any(kind == "expire" for kind, _points in after_once[0])


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_the_services_themselves_change_things_once_when_two_workers_race():
    program = _world()
    merchant = program.merchant
    with time_machine.travel(NOW, tick=False):
        for job in (
            lambda: pending_confirm(merchant_id=merchant.pk),
            lambda: points_expire(program=program),
            lambda: tiers_recalculate(merchant=merchant),
            lambda: memberships_run(merchant_id=merchant.pk),
        ):
            assert race(lambda _i, job=job: job(), 2) == []
            once = _effects(merchant)
            job()
            assert _effects(merchant) == once
    from loyalty.models import PointsAccount

    assert all(ledger_matches(account) for account in PointsAccount.objects.filter(
        merchant=merchant))  # fmt: skip
    assert PointsEntry.objects.filter(merchant=merchant, kind="expire").count() == 1
