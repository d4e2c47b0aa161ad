"""Time passing: pending points becoming available, points expiring by the program's mode,
and the reminder before they do. Each works through the merchant's accounts a chunk at a
time, locking the chunk's accounts in id order, so memory stays flat and a customer's own
writes wait for the chunk instead of racing it."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice

from django.db import transaction
from django.db.models import F, Min, Q, Sum
from django.utils.timezone import now

from customers.inserts import rows_insert, rows_update
from customers.models import Activity
from loyalty.models import PointsAccount, PointsEntry, Program
from loyalty.services.dates import months_after
from loyalty.services.ledger import pending_catch_up_many

CHUNK = 1000


def _chunks(accounts, *, ids=None, lock: bool = True):
    """Yields chunks of the given accounts (locked, unless told not to), each inside its own
    transaction. With `ids`, a query of account ids (the accounts with entries due, say), it
    is read once through a server-side cursor and the accounts fetched a chunk at a time;
    without, the accounts are walked by id."""
    stream = (
        ids.order_by("account_id").distinct().iterator(chunk_size=CHUNK)
        if ids is not None
        else None
    )
    last_id = 0
    while True:
        # Read outside the transaction: the cursor outlives each chunk's commit.
        batch = list(islice(stream, CHUNK)) if stream is not None else None
        if batch == []:
            return
        with transaction.atomic():
            if batch is not None:
                query = accounts.filter(pk__in=batch).order_by("pk")
            else:
                query = accounts.filter(pk__gt=last_id).order_by("pk")[:CHUNK]
            if lock:
                query = query.select_for_update(of=("self",))
            chunk = list(query)
            if batch is None:
                if not chunk:
                    return
                last_id = chunk[-1].pk
            yield chunk


BALANCE_FIELDS = ["available", "pending", "confirmed_through"]


def pending_confirm(*, merchant_id: int, at: datetime | None = None) -> int:
    """Points whose return window has passed become available. Returns how many accounts
    moved points; running it again at once moves none."""
    at = at or now()
    due_ids = PointsEntry.objects.filter(
        merchant_id=merchant_id,
        available_at__lte=at,
        available_at__gt=F("account__confirmed_through"),
    ).values_list("account_id", flat=True)
    moved = 0
    for chunk in _chunks(PointsAccount.objects.all(), ids=due_ids):
        before = {a.pk: a.pending for a in chunk}
        pending_catch_up_many(chunk, at)
        moved += sum(1 for a in chunk if a.pending != before[a.pk])
        rows_update(PointsAccount, chunk, BALANCE_FIELDS)
    return moved


def _lots_left_many(accounts: list[PointsAccount], through: datetime) -> dict[int, int]:
    """_lots_left for a chunk of accounts (confirmed through `through` or later), in one
    grouped query."""
    rows = (
        PointsEntry.objects.filter(account_id__in=[a.pk for a in accounts])
        .filter(available_at__lte=F("account__confirmed_through"))
        .values("account_id")
        .annotate(
            due=Sum("points", filter=Q(expires_at__isnull=False, expires_at__lte=through)),
            spent=Sum("points", filter=Q(expires_at__isnull=True, points__lt=0)),
        )
    )
    return {row["account_id"]: max(0, (row["due"] or 0) + (row["spent"] or 0)) for row in rows}


def points_expire(*, program: Program, at: datetime | None = None) -> int:
    """Expires what the program's mode says is due: lots past their date (after earning,
    end of year) or the whole balance after months without earning or spending. Returns the
    points expired; a second run at the same time expires nothing."""
    at = at or now()
    merchant_id = program.merchant_id
    accounts = PointsAccount.objects.filter(merchant_id=merchant_id, available__gt=0)
    if program.expiry_mode == Program.Expiry.NEVER:
        return 0
    due_ids = None
    if program.expiry_mode == Program.Expiry.INACTIVITY:
        cutoff = months_after(at, -program.expiry_months)
        accounts = accounts.filter(
            Q(last_activity_at__lt=cutoff) | Q(last_activity_at__isnull=True, created_at__lt=cutoff)
        )
    else:
        due_ids = PointsEntry.objects.filter(
            merchant_id=merchant_id, expires_at__lte=at
        ).values_list("account_id", flat=True)
    expired = 0
    day = at.astimezone(program.merchant.zone).date().isoformat()
    for chunk in _chunks(accounts, ids=due_ids):
        pending_catch_up_many(chunk, at)
        if program.expiry_mode == Program.Expiry.INACTIVITY:
            left = {a.pk: max(a.available, 0) for a in chunk}
        else:
            left = _lots_left_many(chunk, at)
        keys = {a.pk: f"expire:{a.pk}:{day}" for a in chunk}
        done = set(
            PointsEntry.objects.filter(
                merchant_id=merchant_id, idempotency_key__in=keys.values()
            ).values_list("account_id", flat=True)
        )
        entries, activities = [], []
        for account in chunk:
            points = min(left.get(account.pk, 0), max(account.available, 0))
            if points <= 0 or account.pk in done:
                continue
            account.available -= points
            entry = PointsEntry(merchant_id=merchant_id, account=account,
                                kind=PointsEntry.Kind.EXPIRE, points=-points, available_at=at,
                                idempotency_key=keys[account.pk], created_at=at)  # fmt: skip
            entries.append(entry)
            expired += points
        # Entries first (ids from the sequence), then the timeline lines that name them.
        rows_insert(PointsEntry, entries)
        for entry in entries:
            activities.append(Activity(
                merchant_id=merchant_id, customer_id=entry.account.customer_id,
                kind=Activity.Kind.POINTS_EXPIRED, occurred_at=at,
                data={"entry_id": entry.pk, "points": entry.points, "pending": False,
                      "note": "", "order_id": None}))  # fmt: skip
        rows_insert(Activity, activities)
        rows_update(PointsAccount, chunk, BALANCE_FIELDS)
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
    accounts = PointsAccount.objects.filter(available__gt=0)
    expiring_ids = PointsEntry.objects.filter(
        merchant_id=program.merchant_id, expires_at__gt=at, expires_at__lte=through
    ).values_list("account_id", flat=True)
    written = 0
    for chunk in _chunks(accounts, ids=expiring_ids, lock=False):
        left = _lots_left_many(chunk, through)
        firsts = dict(
            PointsEntry.objects.filter(
                account_id__in=[a.pk for a in chunk], expires_at__gt=at, expires_at__lte=through
            )
            .values("account_id")
            .annotate(first=Min("expires_at"))
            .values_list("account_id", "first")
        )
        reminded = set(
            Activity.objects.filter(
                customer_id__in=[a.customer_id for a in chunk],
                kind=Activity.Kind.POINTS_EXPIRING,
                data__day=day,
            ).values_list("customer_id", flat=True)
        )
        rows = []
        for account in chunk:
            points = min(left.get(account.pk, 0), max(account.available, 0))
            if points <= 0 or account.customer_id in reminded:
                continue
            first = firsts[account.pk]
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
