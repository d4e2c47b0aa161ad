"""Points under concurrency, on PostgreSQL with real threads and connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.timezone import now

from loyalty.models import PointsEntry, Program, Redemption
from loyalty.services.expiry import points_expire
from loyalty.services.ledger import account_locked, entry_write, points_adjust
from loyalty.services.rewards import reward_redeem
from tests.loyalty.factories import ProgramFactory, RewardFactory
from tests.loyalty.helpers import account_with, ledger_matches
from tests.merchants.factories import UserFactory

REDEEMERS = 32
COST = 100


def _never_negative(account) -> bool:
    """Replays the account's available balance in the order entries were written."""
    running = 0
    for points, available_at in account.entries.order_by("pk").values_list(
        "points", "available_at"
    ):
        if available_at <= account.confirmed_through:
            running += points
            if running < 0:
                return False
    return True


def _run_together(pool, jobs):
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        try:
            return job()
        except ValidationError:
            return None

    return list(pool.map(run, jobs))


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_redemptions_spend_exactly_what_the_balance_covers():
    program = ProgramFactory(expiry_mode=Program.Expiry.AFTER_EARNING, expiry_months=12)
    merchant = program.merchant
    reward = RewardFactory(merchant=merchant, points_cost=COST)
    staff = UserFactory()
    violations = []
    with ThreadPoolExecutor(max_workers=REDEEMERS + 3) as pool:
        for round_ in range(40):  # each of the 20 coverings twice
            covered = round_ % 20  # 0 … 19 redemptions covered, of 32 asked for
            account = account_with(merchant, covered * COST + COST // 2)
            redeem = [
                (lambda i=i, a=account: reward_redeem(account=a, reward=reward, key=f"t{i}"))
                for i in range(REDEEMERS)
            ]
            results = _run_together(pool, redeem)
            succeeded = sum(1 for r in results if r is not None)
            account.refresh_from_db()
            if succeeded != covered or account.available != COST // 2:
                violations.append((round_, "pure", covered, succeeded, account.available))

            # Mixed: an old lot already past its expiry date, redemptions, the expiry job
            # and two staff adjustments, all at once.
            mixed = account_with(merchant, covered * COST)
            with transaction.atomic():
                entry_write(account=account_locked(account=mixed), kind=PointsEntry.Kind.EARN,
                            points=3 * COST, key=f"old:{mixed.pk}",
                            available_at=now() - timedelta(days=400),
                            expires_at=now() - timedelta(days=1))  # fmt: skip
            jobs = [
                (lambda i=i, a=mixed: reward_redeem(account=a, reward=reward, key=f"m{i}"))
                for i in range(REDEEMERS)
            ]
            jobs.append(lambda: points_expire(program=program))
            jobs += [
                (
                    lambda k=k, a=mixed: points_adjust(
                        account=a, points=COST, reason="Goodwill", by=staff, key=f"g{k}"
                    )
                )
                for k in range(2)
            ]
            results = _run_together(pool, jobs)
            mixed.refresh_from_db()
            spent = sum(1 for r in results[:REDEEMERS] if r is not None)
            expired = -sum(mixed.entries.filter(kind="expire").values_list("points", flat=True))
            total_in = covered * COST + 3 * COST + 2 * COST
            checks = [
                ledger_matches(mixed),
                _never_negative(mixed),
                mixed.available >= 0,
                spent == Redemption.objects.filter(account=mixed).count(),
                mixed.available == total_in - spent * COST - expired,
                # The old lot is either spent or expired, never both: FIFO.
                expired <= 3 * COST,
                spent >= covered,
            ]
            if not all(checks):
                violations.append((round_, "mixed", covered, spent, expired, checks))
        # Every worker thread closes its own connection, so the test database can be dropped.
        _run_together(pool, [lambda: connection.close()] * (REDEEMERS + 3))
    assert violations == []
