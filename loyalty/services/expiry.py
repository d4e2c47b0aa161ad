"""Time passing: pending points becoming available, points expiring by the program's mode,
and the reminder before they do. Each works through the merchant's accounts a chunk at a
time, locking the chunk's accounts in id order, so memory stays flat and a customer's own
writes wait for the chunk instead of racing it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils.timezone import now

from customers.models import Activity
from loyalty.models import PointsAccount, PointsEntry, Program
from loyalty.services.dates import months_after
from loyalty.services.ledger import entry_write, pending_catch_up

CHUNK = 1000


def _chunks(accounts, *, lock: bool = True):
    """Yields locked chunks of the given accounts, each inside its own transaction."""
    last_id = 0
    while True:
        with transaction.atomic():
            query = accounts.filter(pk__gt=last_id).order_by("pk")
            if lock:
                query = query.select_for_update(of=("self",))
            chunk = list(query[:CHUNK])
            if not chunk:
                return
            last_id = chunk[-1].pk
            yield chunk


def pending_confirm(*, merchant_id: int, at: datetime | None = None) -> int:
    """Points whose return window has passed become available. Returns how many accounts
    moved points; running it again at once moves none."""
    at = at or now()
    with_due_entries = PointsAccount.objects.filter(
        merchant_id=merchant_id,
        entries__available_at__lte=at,
        entries__available_at__gt=F("confirmed_through"),
    ).values("pk")
    due = PointsAccount.objects.filter(pk__in=with_due_entries)
    moved = 0
    for chunk in _chunks(due):
        for account in chunk:
            before = account.pending
            pending_catch_up(account, at)
            if account.pending != before:
                moved += 1
            account.save(update_fields=["available", "pending", "confirmed_through"])
    return moved


def _lots_left(account: PointsAccount, through: datetime) -> int:
    """Points of lots expiring by `through` that nothing has spent yet. Spending takes the
    oldest lots first, so of the lots due the part left is what they hold beyond everything
    ever spent, expired or deducted (never less than nothing)."""
    entries = account.entries.filter(available_at__lte=account.confirmed_through)
    due = (
        entries.filter(expires_at__isnull=False, expires_at__lte=through).aggregate(
            s=Sum("points")
        )["s"]
        or 0
    )
    spent = -(
        entries.filter(expires_at__isnull=True, points__lt=0).aggregate(s=Sum("points"))["s"] or 0
    )
    return max(0, due - spent)


def points_expire(*, program: Program, at: datetime | None = None) -> int:
    """Expires what the program's mode says is due: lots past their date (after earning,
    end of year) or the whole balance after months without earning or spending. Returns the
    points expired; a second run at the same time expires nothing."""
    at = at or now()
    merchant_id = program.merchant_id
    accounts = PointsAccount.objects.filter(merchant_id=merchant_id, available__gt=0)
    if program.expiry_mode == Program.Expiry.NEVER:
        return 0
    if program.expiry_mode == Program.Expiry.INACTIVITY:
        cutoff = months_after(at, -program.expiry_months)
        accounts = accounts.filter(
            Q(last_activity_at__lt=cutoff) | Q(last_activity_at__isnull=True, created_at__lt=cutoff)
        )
    else:
        accounts = accounts.filter(
            pk__in=PointsEntry.objects.filter(merchant_id=merchant_id, expires_at__lte=at).values(
                "account_id"
            )
        )
    expired = 0
    day = at.astimezone(program.merchant.zone).date().isoformat()
    for chunk in _chunks(accounts):
        for account in chunk:
            pending_catch_up(account, at)
            if program.expiry_mode == Program.Expiry.INACTIVITY:
                points = max(account.available, 0)
            else:
                points = min(_lots_left(account, at), max(account.available, 0))
            if points <= 0:
                account.save(update_fields=["available", "pending", "confirmed_through"])
                continue
            entry_write(
                account=account,
                kind=PointsEntry.Kind.EXPIRE,
                points=-points,
                key=f"expire:{account.pk}:{day}",
                at=at,
                activity=Activity.Kind.POINTS_EXPIRED,
            )
            expired += points
    return expired


def expiry_reminders(*, program: Program, at: datetime | None = None) -> int:
    """A timeline reminder (campaigns' "points expiring" flow reacts to it) for each
    customer with points expiring within the reminder window; once per account and day.
    Returns how many were written."""
    at = at or now()
    if program.expiry_mode not in (Program.Expiry.AFTER_EARNING, Program.Expiry.CALENDAR_YEAR):
        return 0
    through = at + timedelta(days=program.reminder_days)
    day = at.astimezone(program.merchant.zone).date().isoformat()
    accounts = PointsAccount.objects.filter(
        merchant_id=program.merchant_id,
        available__gt=0,
        pk__in=PointsEntry.objects.filter(
            merchant_id=program.merchant_id, expires_at__gt=at, expires_at__lte=through
        ).values("account_id"),
    )
    written = 0
    for chunk in _chunks(accounts, lock=False):
        reminded = set(
            Activity.objects.filter(
                customer_id__in=[a.customer_id for a in chunk],
                kind=Activity.Kind.POINTS_EXPIRING,
                data__day=day,
            ).values_list("customer_id", flat=True)
        )
        rows = []
        for account in chunk:
            points = min(_lots_left(account, through), max(account.available, 0))
            if points <= 0 or account.customer_id in reminded:
                continue
            first = (
                account.entries.filter(expires_at__gt=at, expires_at__lte=through)
                .order_by("expires_at")
                .values_list("expires_at", flat=True)
                .first()
            )
            rows.append(
                Activity(
                    merchant_id=account.merchant_id,
                    customer_id=account.customer_id,
                    kind=Activity.Kind.POINTS_EXPIRING,
                    occurred_at=at,
                    data={"points": points, "expires_at": first.isoformat(), "day": day},
                )
            )
        Activity.objects.bulk_create(rows)
        written += len(rows)
    return written
