"""The points ledger: accounts, the one way an entry is written, and the balances it moves.

Every write locks the customer's account row first (several accounts: in id order), so
writes to one account happen one after another and the balances can be checked and moved
in Python without a race. An entry's idempotency key is unique per merchant: writing the
same key again returns the first entry and moves nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.db.models.functions import Abs
from django.utils.formats import number_format
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.models import Activity, Customer
from loyalty.models import PointsAccount, PointsEntry, Program
from loyalty.services.dates import months_after

# No look-alike characters (0/O, 1/I/L): codes are read aloud and typed from paper.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def code_make(length: int, prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def accounts_for(*, customers: Iterable[Customer]) -> dict[int, PointsAccount]:
    """Each customer's account by customer id, created on first use."""
    customers = list(customers)
    if not customers:
        return {}
    ids = [c.pk for c in customers]
    found = {a.customer_id: a for a in PointsAccount.objects.filter(customer_id__in=ids)}
    for _attempt in range(5):
        missing = [c for c in customers if c.pk not in found]
        if not missing:
            break
        # A clashing referral code (or a concurrent creation) skips that row; the next
        # attempt reads what exists and tries the rest with new codes.
        PointsAccount.objects.bulk_create(
            [
                PointsAccount(
                    merchant_id=c.merchant_id, customer_id=c.pk, referral_code=code_make(8)
                )
                for c in missing
            ],
            ignore_conflicts=True,
        )
        found.update(
            {
                a.customer_id: a
                for a in PointsAccount.objects.filter(customer_id__in=[c.pk for c in missing])
            }
        )
    else:
        raise IntegrityError("Could not create points accounts; try again.")
    return found


def account_for(*, customer: Customer) -> PointsAccount:
    return accounts_for(customers=[customer])[customer.pk]


def accounts_locked(*, account_ids: Iterable[int]) -> dict[int, PointsAccount]:
    """Locks the accounts in id order (so two writers can't deadlock) and reads them after
    the lock, so their balances are current."""
    locked = (
        PointsAccount.objects.select_for_update(of=("self",))
        .filter(pk__in=sorted(set(account_ids)))
        .order_by("pk")
    )
    return {account.pk: account for account in locked}


# Every order locks its customer's account and brings its balance up to date: by hand
# (raw()), as building these two statements through the ORM measured costlier than
# running them. {ids}: one placeholder per id.
ACCOUNTS_LOCK_SQL = "SELECT * FROM loyalty_pointsaccount WHERE customer_id IN ({ids}) ORDER BY id"
PENDING_DUE_SQL = """SELECT e.account_id, SUM(e.points) FROM loyalty_pointsentry e
JOIN loyalty_pointsaccount a ON a.id = e.account_id
WHERE e.account_id IN ({ids}) AND e.available_at <= %s AND e.available_at > a.confirmed_through
GROUP BY e.account_id"""


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def accounts_locked_for(*, customers: Iterable[Customer]) -> dict[int, PointsAccount]:
    """Each customer's account by customer id, locked and read after the lock: the ones
    that exist in one statement (in id order, so two writers can't deadlock), the ones
    that don't created first."""
    customers = list(customers)
    if not customers:
        return {}
    ids = sorted(c.pk for c in customers)
    sql = ACCOUNTS_LOCK_SQL.format(ids=_placeholders(ids))
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    locked = {account.customer_id: account for account in PointsAccount.objects.raw(sql, ids)}
    missing = [c for c in customers if c.pk not in locked]
    if missing:
        created = accounts_for(customers=missing)
        found = accounts_locked(account_ids=[a.pk for a in created.values()])
        locked.update({account.customer_id: account for account in found.values()})
    return locked


def accounts_opening(*, customers: Iterable[Customer], at: datetime) -> dict[int, PointsAccount]:
    """Unsaved accounts for customers created in the caller's transaction, by customer id:
    no one else can see those customers yet, so they have no account and no one can be
    opening one. The caller inserts them (one statement, rows_insert) once they hold what
    its orders earn, and they are its own until it commits. A clashing referral code
    (about one in a million at a million accounts) raises IntegrityError: the caller's
    transaction runs again and draws new codes."""
    return {
        c.pk: PointsAccount(merchant_id=c.merchant_id, customer_id=c.pk,
                            referral_code=code_make(8), confirmed_through=at, created_at=at)
        for c in customers
    }  # fmt: skip


def account_locked(*, account: PointsAccount) -> PointsAccount:
    return accounts_locked(account_ids=[account.pk])[account.pk]


def pending_catch_up(account: PointsAccount, at: datetime) -> None:
    """Moves points that became available since the account was last confirmed from
    pending to available (in memory; the caller saves)."""
    if at <= account.confirmed_through:
        return
    due = (
        account.entries.filter(
            available_at__gt=account.confirmed_through, available_at__lte=at
        ).aggregate(total=Sum("points"))["total"]
        or 0
    )
    account.available += due
    account.pending -= due
    account.confirmed_through = at


def pending_catch_up_many(accounts: list[PointsAccount], at: datetime) -> None:
    """pending_catch_up for a chunk of locked accounts, in one grouped query."""
    if not accounts:
        return
    ids = [a.pk for a in accounts]
    with connection.cursor() as cursor:
        cursor.execute(
            PENDING_DUE_SQL.format(ids=_placeholders(ids)),
            [*ids, connection.ops.adapt_datetimefield_value(at)],
        )
        due = dict(cursor.fetchall())
    for account in accounts:
        moved = due.get(account.pk, 0)
        account.available += moved
        account.pending -= moved
        account.confirmed_through = max(account.confirmed_through, at)


def entry_get(*, merchant_id: int, key: str) -> PointsEntry | None:
    return PointsEntry.objects.filter(merchant_id=merchant_id, idempotency_key=key).first()


def entry_write(
    *,
    account: PointsAccount,
    kind: str,
    points: int,
    key: str,
    at: datetime | None = None,
    available_at: datetime | None = None,
    allow_negative: bool = False,
    activity: str | None = None,
    **fields,
) -> tuple[PointsEntry, bool]:
    """Writes one ledger entry on a locked account and moves its balance in the same
    transaction. Returns (entry, created): the same key again returns the first entry.
    A spend that would take the available balance below zero is refused unless
    `allow_negative` (a refund under the merchant's negative-balance policy)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("entry_write needs the caller's transaction and account lock.")
    if kind == PointsEntry.Kind.EARN and "expires_at" not in fields:
        # Every lot earned expires by the program's rule (lot_expiry), whatever earned it:
        # one written without would outlive the lots earned after it.
        raise TypeError("An earning entry needs its expiry: pass expires_at=lot_expiry(…).")
    existing = entry_get(merchant_id=account.merchant_id, key=key)
    if existing is not None:
        return existing, False
    at = at or now()
    available_at = available_at or at
    pending_catch_up(account, at)
    counts_now = available_at <= account.confirmed_through
    if points < 0 and counts_now and account.available + points < 0 and not allow_negative:
        raise ValidationError(
            {"points": _("Not enough points: %(available)s available.")
             % {"available": number_format(account.available, force_grouping=True)}}
        )  # fmt: skip
    entry = PointsEntry.objects.create(
        merchant_id=account.merchant_id,
        account=account,
        kind=kind,
        points=points,
        available_at=available_at,
        idempotency_key=key,
        created_at=at,
        **fields,
    )
    if counts_now:
        account.available += points
    else:
        account.pending += points
    if kind in (PointsEntry.Kind.EARN, PointsEntry.Kind.REDEEM):
        account.last_activity_at = at
    account.save(update_fields=["available", "pending", "confirmed_through", "last_activity_at"])
    if activity:
        Activity.objects.create(
            merchant_id=account.merchant_id,
            customer_id=account.customer_id,
            kind=activity,
            occurred_at=at,
            data={
                "entry_id": entry.pk,
                "points": points,
                "pending": not counts_now,
                "note": entry.note,
                "order_id": entry.order_id,
            },
        )
    return entry, True


def lot_expiry(*, program: Program, available_at: datetime, zone) -> datetime | None:
    """When a lot of points earned (available) at `available_at` expires, by the program's
    mode; None when lots don't expire on their own (never, or by inactivity)."""
    if program.expiry_mode == Program.Expiry.AFTER_EARNING:
        return months_after(available_at.astimezone(zone), program.expiry_months)
    if program.expiry_mode == Program.Expiry.CALENDAR_YEAR:
        local = available_at.astimezone(zone)
        return local.replace(year=local.year + 1, month=1, day=1, hour=0, minute=0, second=0,
                             microsecond=0)  # fmt: skip
    return None


def program_of(*, merchant_id: int) -> Program | None:
    """The merchant's running program, or None: no program, no points."""
    return Program.objects.filter(merchant_id=merchant_id, is_active=True).first()


def balance_from_ledger(*, account: PointsAccount) -> tuple[int, int]:
    """(available, pending) summed from the ledger, as of the account's confirmation."""
    entries = account.entries.all()
    available = (
        entries.filter(available_at__lte=account.confirmed_through).aggregate(s=Sum("points"))["s"]
        or 0
    )
    pending = (
        entries.filter(available_at__gt=account.confirmed_through).aggregate(s=Sum("points"))["s"]
        or 0
    )
    return available, pending


class AdjustRefused(Exception):
    """An adjustment over what the staff member's role may grant alone."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.message, self.limit = message, limit


def points_adjust(
    *,
    account: PointsAccount,
    points: int,
    reason: str,
    by,
    key: str,
    ip_address=None,
    role: str | None = None,
) -> PointsEntry:
    """A manual adjustment by staff: a reason is required, the change is audited, and a
    deduction can't take the balance below zero. A support agent (`role`) adjusts within
    the program's limits, per adjustment and per day; more needs a manager or the owner.
    A refusal says so and is audited too."""
    from merchants.services import audit_record

    if not reason.strip():
        raise ValidationError({"reason": _("Say why the points change.")})
    if points == 0:
        raise ValidationError({"points": _("Enter a number of points other than 0.")})
    try:
        return _adjusted(account=account, points=points, reason=reason, by=by, key=key,
                         ip_address=ip_address, role=role)  # fmt: skip
    except AdjustRefused as refused:
        audit_record(
            action="loyalty.points_adjust_refused", merchant=account.merchant, actor=by,
            target=account.customer, after={"points": points, "reason": reason.strip()[:200],
                                            "role": role, "limit": refused.limit},
            ip_address=ip_address,
        )  # fmt: skip
        raise ValidationError({"points": refused.message}) from None


def _support_limit_check(*, account: PointsAccount, program: Program | None, points: int, by):
    """Raises AdjustRefused when a support agent's adjustment goes over the program's
    limits. The agent's staff row is locked first, so two adjustments at once can't both
    fit under the day's limit."""
    from merchants.models import StaffMember

    once = program.support_adjust_limit if program else Program.support_adjust_limit.field.default
    daily = program.support_daily_limit if program else Program.support_daily_limit.field.default
    if abs(points) > once:
        raise AdjustRefused(
            _("A support agent can adjust at most %(limit)s points at a time. Ask a manager "
              "for more.") % {"limit": number_format(once, force_grouping=True)},
            once,
        )  # fmt: skip
    StaffMember.objects.select_for_update().filter(merchant_id=account.merchant_id, user=by).first()
    zone = account.merchant.zone
    day = now().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    taken = PointsEntry.objects.filter(
        merchant_id=account.merchant_id, kind=PointsEntry.Kind.ADJUST, created_by=by,
        created_at__gte=day,
    ).aggregate(taken=Sum(Abs("points")))["taken"] or 0  # fmt: skip
    if taken + abs(points) > daily:
        raise AdjustRefused(
            _("A support agent can adjust at most %(limit)s points a day; %(left)s are left "
              "today. Ask a manager for more.")
            % {"limit": number_format(daily, force_grouping=True),
               "left": number_format(max(daily - taken, 0), force_grouping=True)},
            daily,
        )  # fmt: skip


@transaction.atomic
def _adjusted(*, account, points, reason, by, key, ip_address, role) -> PointsEntry:
    from merchants.roles import Role
    from merchants.services import audit_record

    program = Program.objects.filter(merchant_id=account.merchant_id).first()
    replay = entry_get(merchant_id=account.merchant_id, key=f"adjust:{account.pk}:{key}")
    if role == Role.SUPPORT and replay is None:
        _support_limit_check(account=account, program=program, points=points, by=by)
    account = account_locked(account=account)
    before = {"available": account.available, "pending": account.pending}
    expires_at = None
    if points > 0 and program is not None:
        expires_at = lot_expiry(program=program, available_at=now(), zone=program.merchant.zone)
    entry, created = entry_write(
        account=account,
        kind=PointsEntry.Kind.ADJUST,
        points=points,
        key=f"adjust:{account.pk}:{key}",
        expires_at=expires_at,
        note=reason.strip()[:200],
        created_by=by,
        activity=Activity.Kind.POINTS_ADJUSTED,
    )
    if created:
        audit_record(
            action="loyalty.points_adjusted",
            merchant=account.merchant,
            actor=by,
            target=account.customer,
            before=before,
            after={"available": account.available, "pending": account.pending,
                   "points": points, "reason": entry.note},
            ip_address=ip_address,
        )  # fmt: skip
    return entry
