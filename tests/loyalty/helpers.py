"""Small steps the loyalty tests share: a customer with points, the ledger's own sums."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum

from loyalty.models import PointsAccount, PointsEntry
from loyalty.services.ledger import account_for, account_locked, balance_from_ledger, entry_write
from tests.customers.factories import CustomerFactory


def account_with(merchant, points: int) -> PointsAccount:
    """A new customer's account holding `points` available, earned by an adjustment-free
    earn entry (no order)."""
    account = account_for(customer=CustomerFactory(merchant=merchant))
    if points:
        with transaction.atomic():
            locked = account_locked(account=account)
            entry_write(
                account=locked, kind=PointsEntry.Kind.EARN, points=points,
                key=f"seed:{account.pk}", expires_at=None,
            )  # fmt: skip
    account.refresh_from_db()
    return account


def ledger_matches(account: PointsAccount) -> bool:
    account.refresh_from_db()
    return balance_from_ledger(account=account) == (account.available, account.pending)


def ledger_sum(account: PointsAccount) -> int:
    return account.entries.aggregate(total=Sum("points"))["total"] or 0
