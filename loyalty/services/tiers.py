"""Tiers: upgrade at once when an order or earning crosses a threshold; downgrade only at
the scheduled recalculation, after the grace period; a staff-set tier is a floor until a
date. Every change is a TierChange row and a timeline Activity."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.utils.formats import date_format, number_format
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers import inserts
from customers.inserts import rows_update
from customers.models import Activity, Order
from loyalty.models import PointsAccount, PointsEntry, Program, Tier, TierChange
from loyalty.services.dates import months_after
from merchants.models import Merchant

RECALCULATION_CHUNK = 5000


def window_start(*, program: Program, at: datetime) -> datetime | None:
    """Where the tier window begins: None for lifetime."""
    if program.tier_window == Program.TierWindow.ROLLING_YEAR:
        return months_after(at, -12)
    if program.tier_window == Program.TierWindow.CALENDAR_YEAR:
        local = at.astimezone(program.merchant.zone)
        return local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return None


def basis_values(
    *, program: Program, customer_ids: Sequence[int], at: datetime
) -> dict[int, object]:
    """Each customer's value on the tier basis over the window: net amount spent, points
    earned (available ones, less what refunds took back) or number of orders."""
    start = window_start(program=program, at=at)
    if program.tier_basis == Program.TierBasis.POINTS:
        entries = PointsEntry.objects.filter(
            account__customer_id__in=customer_ids,
            kind__in=[PointsEntry.Kind.EARN, PointsEntry.Kind.REVERSE],
            available_at__lte=at,
        )
        if start is not None:
            entries = entries.filter(available_at__gte=start)
        rows = entries.values("account__customer_id").annotate(value=Sum("points"))
        return {row["account__customer_id"]: row["value"] for row in rows}
    orders = Order.objects.filter(customer_id__in=customer_ids, placed_at__lte=at).exclude(
        status=Order.Status.CANCELLED
    )
    if start is not None:
        orders = orders.filter(placed_at__gte=start)
    if program.tier_basis == Program.TierBasis.ORDERS:
        value = Count("id")
    else:
        value = Sum(F("total") - F("refunded_amount"))
    rows = orders.values("customer_id").annotate(value=value)
    return {row["customer_id"]: row["value"] for row in rows}


# The same rule as one column of a hand-written statement, for the rewards page, which
# reads it beside the customer's account (loyalty.selectors): through the ORM this one
# small read cost the page more than the database spends on it. `customer` names the
# statement's customer id column. tests/loyalty/test_tiers.py holds it to basis_values.
def basis_value_sql(*, program: Program, at: datetime, customer: str) -> tuple[str, dict]:
    """One customer's value on the tier basis over the window, as SQL and its parameters
    (%(name)s placeholders); basis_value_read turns what it returns into basis_values'."""
    start = window_start(program=program, at=at)
    adapt = connection.ops.adapt_datetimefield_value
    params = {"basis_at": adapt(at), "basis_start": adapt(start) if start else None}
    if program.tier_basis == Program.TierBasis.POINTS:
        params.update(basis_earn=PointsEntry.Kind.EARN.value,
                      basis_reverse=PointsEntry.Kind.REVERSE.value)  # fmt: skip
        sql = (
            "SELECT SUM(be.points) FROM loyalty_pointsentry be "
            "JOIN loyalty_pointsaccount ba ON ba.id = be.account_id "
            f"WHERE ba.customer_id = {customer} "
            "AND be.kind IN (%(basis_earn)s, %(basis_reverse)s) "
            "AND be.available_at <= %(basis_at)s"
        )
        if start is not None:
            sql += " AND be.available_at >= %(basis_start)s"
        return f"({sql})", params
    params["basis_cancelled"] = Order.Status.CANCELLED.value
    # No orders: NULL, as SUM gives (basis_values has no row for them).
    value = "NULLIF(COUNT(bo.id), 0)" if program.tier_basis == Program.TierBasis.ORDERS else (
        "SUM(bo.total - bo.refunded_amount)"
    )  # fmt: skip
    sql = (
        f"SELECT {value} FROM customers_order bo WHERE bo.customer_id = {customer} "
        "AND bo.placed_at <= %(basis_at)s AND bo.status <> %(basis_cancelled)s"
    )
    if start is not None:
        sql += " AND bo.placed_at >= %(basis_start)s"
    return f"({sql})", params


_AMOUNT = Value(None, output_field=DecimalField())


def basis_values_by_hand(
    *, program: Program, customer_ids: Sequence[int], at: datetime
) -> dict[int, object]:
    """basis_values in one hand-written statement (basis_value_sql's column per customer),
    for the tier check every order makes: through the ORM, building the grouped query
    measured costlier than running it. A customer with nothing on the basis is left out,
    as basis_values leaves them."""
    if not customer_ids:
        return {}
    column, params = basis_value_sql(program=program, at=at, customer="bc.id")
    ids = {f"basis_c{index}": pk for index, pk in enumerate(customer_ids)}
    wanted = ", ".join(f"%({name})s" for name in ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT bc.id, {column} FROM customers_customer bc WHERE bc.id IN ({wanted})",
            {**params, **ids},
        )
        rows = cursor.fetchall()
    return {
        pk: basis_value_read(program=program, value=value)
        for pk, value in rows
        if value is not None
    }


def basis_value_read(*, program: Program, value) -> object:
    """What basis_value_sql's column holds, as basis_values gives it (0 for none): an
    amount as the ORM reads a sum of amounts from this database."""
    if not value:
        return 0
    if program.tier_basis == Program.TierBasis.SPENT:
        for converter in connection.ops.get_db_converters(_AMOUNT):
            value = converter(value, _AMOUNT, connection)
    return value


def tier_reached(tiers: Sequence[Tier], value) -> Tier | None:
    """The highest tier whose threshold the value reaches (tiers sorted by threshold)."""
    reached = None
    for tier in tiers:
        if value is not None and value >= tier.threshold:
            reached = tier
    return reached


def _threshold(tier: Tier | None):
    return -1 if tier is None else tier.threshold


def _change(
    *,
    account: PointsAccount,
    to: Tier | None,
    reason: str,
    at: datetime,
    note: str = "",
    by=None,
    tiers: dict | None = None,
) -> tuple[TierChange, Activity]:
    change = TierChange(
        merchant_id=account.merchant_id,
        account=account,
        from_tier_id=account.tier_id,
        to_tier=to,
        reason=reason,
        note=note,
        created_by=by,
        created_at=at,
    )
    activity = Activity(
        merchant_id=account.merchant_id,
        customer_id=account.customer_id,
        kind=Activity.Kind.TIER_CHANGED,
        occurred_at=at,
        data={
            "from": _name(account, tiers),
            "to": to.name if to else "",
            "reason": reason,
            # A move up, whatever made it: the tier-up message's trigger.
            "up": _threshold(to) > _threshold(_tier_of(account, tiers)),
        },
    )
    account.tier = to
    account.tier_since = at
    return change, activity


def _tier_of(account: PointsAccount, tiers: dict | None) -> Tier | None:
    if not account.tier_id:
        return None
    return tiers[account.tier_id] if tiers is not None else account.tier


def _name(account: PointsAccount, tiers: dict | None) -> str:
    if not account.tier_id:
        return ""
    return tiers[account.tier_id].name if tiers is not None else account.tier.name


def tier_upgrade(*, account: PointsAccount, program: Program, at: datetime | None = None) -> bool:
    """On a locked account: moves it up at once if its basis now reaches a higher tier."""
    return tiers_upgrade(accounts=[account], program=program, at=at or now()) > 0


def tiers_upgrade(
    *,
    accounts: list[PointsAccount],
    program: Program,
    at: datetime,
    tiers=None,
    known: dict[int, object] | None = None,
    timeline: list[Activity] | None = None,
) -> int:
    """tier_upgrade for many locked accounts: one basis query, one write of each kind.
    `tiers`: the shop's tiers, when the caller has them; `known`: the basis values the
    caller already holds (basis_values_new), by customer id, None for nothing, so not
    read for them;
    `timeline`: a list taking the timeline lines for the caller to insert."""
    if tiers is None:
        tiers = list(Tier.objects.filter(merchant_id=program.merchant_id))
    if not tiers or not accounts:
        return 0
    known = known or {}
    values = basis_values_by_hand(
        program=program,
        customer_ids=[a.customer_id for a in accounts if a.customer_id not in known],
        at=at,
    )
    values.update({pk: value for pk, value in known.items() if value is not None})
    by_id = {tier.pk: tier for tier in tiers}
    changes, activities, moved = [], [], []
    for account in accounts:
        current = by_id.get(account.tier_id)
        reached = tier_reached(tiers, values.get(account.customer_id))
        if reached is None or _threshold(reached) <= _threshold(current):
            continue
        account.tier = current
        change, activity = _change(account=account, to=reached, reason=TierChange.Reason.UPGRADE,
                                   at=at)  # fmt: skip
        changes.append(change)
        activities.append(activity)
        moved.append(account)
    if moved:
        rows_update(PointsAccount, moved, ["tier", "tier_since"])
        TierChange.objects.bulk_create(changes)
        if timeline is None:
            Activity.objects.bulk_create(activities)
        else:
            timeline += activities
    return len(moved)


def basis_values_new(
    *,
    program: Program,
    orders: Sequence[Order],
    entries: Sequence[PointsEntry],
    customer_ids: Iterable[int],
    at: datetime,
) -> dict[int, object]:
    """basis_values for customers created in the caller's transaction, from what the caller
    holds: their only orders are among `orders`, their only ledger entries among `entries`
    (with their accounts). Every customer asked for is in the answer: None for one with
    nothing on the basis (basis_values leaves them out)."""
    wanted = set(customer_ids)
    if not wanted:
        return {}
    start = window_start(program=program, at=at)

    def inside(moment: datetime) -> bool:
        return moment <= at and (start is None or moment >= start)

    values: dict[int, object] = dict.fromkeys(wanted)
    if program.tier_basis == Program.TierBasis.POINTS:
        kinds = {PointsEntry.Kind.EARN, PointsEntry.Kind.REVERSE}
        for entry in entries:
            customer_id = entry.account.customer_id
            if customer_id in wanted and entry.kind in kinds and inside(entry.available_at):
                values[customer_id] = (values[customer_id] or 0) + entry.points
        return values
    counted = [
        o
        for o in orders
        if o.customer_id in wanted and o.status != Order.Status.CANCELLED and inside(o.placed_at)
    ]
    for order in counted:
        value = 1 if program.tier_basis == Program.TierBasis.ORDERS else (
            order.total - order.refunded_amount
        )  # fmt: skip
        values[order.customer_id] = (values[order.customer_id] or 0) + value
    return values


def grace_until(*, program: Program, since: datetime) -> datetime:
    """A tier is kept until the end of the period after the one in which it was earned:
    the next calendar year for calendar-year windows, else twelve months after earning."""
    if program.tier_window == Program.TierWindow.CALENDAR_YEAR:
        local = since.astimezone(program.merchant.zone)
        return local.replace(year=local.year + 2, month=1, day=1, hour=0, minute=0, second=0,
                             microsecond=0)  # fmt: skip
    return months_after(since, 12)


def tier_due(
    *,
    current: Tier | None,
    since: datetime | None,
    floor: Tier | None,
    floor_until: date | None,
    reached: Tier | None,
    program: Program,
    at: datetime,
) -> Tier | None:
    """The tier an account should hold after a recalculation: what its basis reaches, but
    not lower than its tier during the grace period, nor than a staff floor still valid."""
    expired = floor_until is not None and floor_until < at.astimezone(program.merchant.zone).date()
    if expired:
        floor = None
    due = reached
    in_grace = since is not None and at < grace_until(program=program, since=since)
    if _threshold(due) < _threshold(current) and in_grace:
        due = current
    if floor is not None and _threshold(floor) > _threshold(due):
        due = floor
    return due


def _basis_stream(*, program: Program, at: datetime, tiered_only: bool = False):
    """Every account of the merchant (or only those holding a tier) with its basis value,
    in id order, from one grouped pass streamed through a server-side cursor: memory does
    not grow with the customers."""
    start = window_start(program=program, at=at)
    accounts = PointsAccount.objects.filter(merchant_id=program.merchant_id)
    if tiered_only:
        accounts = accounts.filter(tier__isnull=False)
    if program.tier_basis == Program.TierBasis.POINTS:
        counted = Q(entries__kind__in=[PointsEntry.Kind.EARN, PointsEntry.Kind.REVERSE],
                    entries__available_at__lte=at)  # fmt: skip
        if start is not None:
            counted &= Q(entries__available_at__gte=start)
        value = Sum("entries__points", filter=counted)
    else:
        counted = ~Q(customer__orders__status=Order.Status.CANCELLED) & Q(
            customer__orders__placed_at__lte=at
        )
        if start is not None:
            counted &= Q(customer__orders__placed_at__gte=start)
        if program.tier_basis == Program.TierBasis.ORDERS:
            value = Count("customer__orders", filter=counted)
        else:
            value = Sum(
                F("customer__orders__total") - F("customer__orders__refunded_amount"),
                filter=counted,
            )
    return (
        accounts.values_list(*ACCOUNT_TIER_FIELDS)
        .annotate(value=value)
        .order_by("pk")
        .iterator(chunk_size=RECALCULATION_CHUNK)
    )


def tiers_recalculate(*, merchant: Merchant, at: datetime | None = None) -> int:
    """Every account of the merchant: upgrades, downgrades after grace, floors. The basis
    comes from one grouped pass; only accounts whose tier changes are locked and written
    (one UPDATE per tier they move to, the history by COPY), so a run with nothing to
    change writes nothing. Returns how many changed."""
    program = Program.objects.filter(merchant=merchant).select_related("merchant").first()
    if program is None:
        return 0
    tiers = list(Tier.objects.filter(merchant=merchant))
    by_id = {tier.pk: tier for tier in tiers}
    at = at or now()
    changed = 0
    stream = _basis_stream(program=program, at=at)
    fast = connection.vendor == "postgresql" and inserts.USE_COPY
    while rows := list(islice(stream, RECALCULATION_CHUNK)):
        moving = [
            row for row in rows if _id(_due(row, row[7], by_id, tiers, program, at)) != row[3]
        ]
        if not moving:
            continue
        with transaction.atomic():
            if fast:
                # One guarded UPDATE: a row something else changed since the stream read it
                # (an order's upgrade, a staff floor) no longer matches, is left alone here
                # and goes the careful way below.
                moved = _moves(moving, by_id, tiers, program, at)
                done = _guarded_update(moved, at)
                _history_write([m for m in moved if m[0] in done], by_id, at)
                changed += len(done)
                moving = [row for row in moving if row[0] not in done]
                if not moving:
                    continue
            # Plain rows, not model instances: a night can move a million accounts.
            accounts = list(
                PointsAccount.objects.select_for_update(of=("self",))
                .filter(pk__in=[row[0] for row in moving])
                .order_by("pk")
                .values_list(*ACCOUNT_TIER_FIELDS)
            )
            streamed = {row[0]: row for row in moving}
            values = {row[2]: streamed[row[0]][7] for row in accounts}
            # The stream was read before these locks: an account something else moved
            # meanwhile has its basis read again.
            stale = [row[2] for row in accounts if streamed[row[0]][:7] != row]
            if stale:
                values.update(basis_values(program=program, customer_ids=stale, at=at))
            changed += _apply(accounts=accounts, values=values, tiers=tiers, program=program, at=at)
    return changed


def tiers_at_risk_warn(*, program: Program, at: datetime | None = None) -> int:
    """A timeline warning (campaigns' tier-down flow reacts to it) for each customer whose
    tier a recalculation within the program's warning days would lower if she bought
    nothing more: the first night it would, and what she needs on the tier basis to keep
    it. Once per tier held and warning window; answers how many were written.

    Left alone, a basis only falls as time passes (old orders leave a rolling window, a
    calendar year starts again) and grace and floors only end, so an account whose tier
    is due lower at the horizon is exactly one that drops before it; one grouped pass at
    the horizon finds them, and only they are looked at night by night."""
    at = at or now()
    days = program.tier_warning_days
    if not days:
        return 0
    tiers = list(Tier.objects.filter(merchant_id=program.merchant_id))
    by_id = {tier.pk: tier for tier in tiers}
    horizon = at + timedelta(days=days)
    stream = _basis_stream(program=program, at=horizon, tiered_only=True)
    written = 0
    while rows := list(islice(stream, RECALCULATION_CHUNK)):
        falling = [
            row for row in rows
            if _threshold(_due(row, row[7], by_id, tiers, program, horizon))
            < _threshold(by_id.get(row[3]))
        ]  # fmt: skip
        if falling:
            written += _warn(falling, by_id, tiers, program, at)
    return written


def _warn(rows: list[tuple], by_id: dict, tiers, program: Program, at: datetime) -> int:
    days = program.tier_warning_days
    warned = {
        (customer_id, data.get("tier_id"))
        for customer_id, data in Activity.objects.filter(
            merchant_id=program.merchant_id, kind=Activity.Kind.TIER_AT_RISK,
            customer_id__in=[row[2] for row in rows], occurred_at__gt=at - timedelta(days=days),
        ).values_list("customer_id", "data")
    }  # fmt: skip
    waiting = {row[2]: row for row in rows if (row[2], row[3]) not in warned}
    zone = program.merchant.zone
    activities = []
    for night in range(1, days + 1):
        if not waiting:
            break
        moment = at + timedelta(days=night)
        values = basis_values(program=program, customer_ids=list(waiting), at=moment)
        for customer_id, row in list(waiting.items()):
            current = by_id[row[3]]
            value = values.get(customer_id) or 0
            if _threshold(_due(row, value, by_id, tiers, program, moment)) >= current.threshold:
                continue
            del waiting[customer_id]
            activities.append(Activity(
                merchant_id=program.merchant_id, customer_id=customer_id,
                kind=Activity.Kind.TIER_AT_RISK, occurred_at=at,
                data={"tier": current.name, "tier_id": current.pk,
                      "on": moment.astimezone(zone).date().isoformat(),
                      "to_keep": str(max(current.threshold - value, 0)),
                      "basis": program.tier_basis},
            ))  # fmt: skip
    Activity.objects.bulk_create(activities)
    return len(activities)


# (id, merchant, customer, tier, since, floor, floor until): the order _apply reads them in.
ACCOUNT_TIER_FIELDS = (
    "pk", "merchant_id", "customer_id", "tier_id", "tier_since", "tier_floor_id",
    "tier_floor_until",
)  # fmt: skip


def _id(tier: Tier | None) -> int | None:
    return tier.pk if tier is not None else None


def _due(row: tuple, value, by_id: dict, tiers, program, at) -> Tier | None:
    _pk, _merchant, _customer, tier_id, since, floor_id, floor_until = row[:7]
    return tier_due(current=by_id.get(tier_id), since=since, floor=by_id.get(floor_id),
                    floor_until=floor_until, reached=tier_reached(tiers, value),
                    program=program, at=at)  # fmt: skip


def _moves(rows, by_id: dict, tiers, program, at, values: dict | None = None) -> list[tuple]:
    """(account, merchant, customer, from tier, to tier, reason, the row as read) for each
    row (ACCOUNT_TIER_FIELDS, then its basis value unless `values` has it by customer)
    whose due tier differs from its tier."""
    moves = []
    for row in rows:
        pk, merchant_id, customer_id, tier_id, _since, floor_id, _until = row[:7]
        value = values.get(customer_id) if values is not None else row[7]
        due = _due(row, value, by_id, tiers, program, at)
        if _id(due) == tier_id:
            continue
        reason = (
            TierChange.Reason.OVERRIDE
            if due is not None and due.pk == floor_id
            else TierChange.Reason.RECALCULATION
        )
        moves.append((pk, merchant_id, customer_id, tier_id, _id(due), reason, row[:7]))
    return moves


GUARDED_SQL = """
UPDATE loyalty_pointsaccount a SET tier_id = v.to_tier, tier_since = %(at)s
FROM unnest(%(ids)s::bigint[], %(tiers)s::bigint[], %(since)s::timestamptz[],
            %(floors)s::bigint[], %(until)s::date[], %(to)s::bigint[])
  AS v(id, tier_id, since, floor_id, until, to_tier)
WHERE a.id = v.id AND a.tier_id IS NOT DISTINCT FROM v.tier_id
  AND a.tier_since IS NOT DISTINCT FROM v.since
  AND a.tier_floor_id IS NOT DISTINCT FROM v.floor_id
  AND a.tier_floor_until IS NOT DISTINCT FROM v.until
RETURNING a.id
"""


def _guarded_update(moves: list[tuple], at: datetime) -> set[int]:
    """Moves each account if it still is as read; the ids it moved."""
    if not moves:
        return set()
    read = [move[6] for move in moves]
    with connection.cursor() as cursor:
        cursor.execute(GUARDED_SQL, {
            "at": at, "ids": [r[0] for r in read], "tiers": [r[3] for r in read],
            "since": [r[4] for r in read], "floors": [r[5] for r in read],
            "until": [r[6] for r in read], "to": [move[4] for move in moves],
        })  # fmt: skip
        return {pk for (pk,) in cursor.fetchall()}


def _apply(*, accounts: Iterable[tuple], values: dict, tiers, program, at) -> int:
    """Moves the locked accounts (rows of ACCOUNT_TIER_FIELDS) whose due tier differs: one
    UPDATE per tier they move to, then their history."""
    by_id = {tier.pk: tier for tier in tiers}
    moves = _moves(accounts, by_id, tiers, program, at, values=values)
    moving_to: dict[int | None, list[int]] = defaultdict(list)
    for move in moves:
        moving_to[move[4]].append(move[0])
    for tier_id, pks in moving_to.items():
        PointsAccount.objects.filter(pk__in=pks).update(tier_id=tier_id, tier_since=at)
    _history_write(moves, by_id, at)
    return len(moves)


# On PostgreSQL the history of a chunk goes in as two INSERT … SELECT FROM unnest(arrays):
# a night that moves a million customers writes two million rows, and building that many
# model instances costs more than the recalculation itself.
HISTORY_SQL = """
INSERT INTO loyalty_tierchange (merchant_id, account_id, from_tier_id, to_tier_id, reason,
  note, created_at)
SELECT %(merchant)s, account, from_tier, to_tier, reason, '', %(at)s
FROM unnest(%(accounts)s::bigint[], %(from_tiers)s::bigint[], %(to_tiers)s::bigint[],
            %(reasons)s::text[]) AS change(account, from_tier, to_tier, reason)
"""
ACTIVITY_SQL = """
INSERT INTO customers_activity (merchant_id, customer_id, kind, occurred_at, data)
SELECT %(merchant)s, customer, 'tier.changed', %(at)s,
  jsonb_build_object('from', from_name, 'to', to_name, 'reason', reason, 'up', up)
FROM unnest(%(customers)s::bigint[], %(from_names)s::text[], %(to_names)s::text[],
            %(reasons)s::text[], %(ups)s::boolean[])
  AS change(customer, from_name, to_name, reason, up)
"""


def _history_write(moves: list[tuple], tiers: dict, at: datetime) -> None:
    """A TierChange and a timeline line for each move (_moves)."""
    if not moves:
        return

    def name(tier_id: int | None) -> str:
        return tiers[tier_id].name if tier_id is not None else ""

    def up(before: int | None, after: int | None) -> bool:
        return _threshold(tiers.get(after)) > _threshold(tiers.get(before))

    if connection.vendor != "postgresql" or not inserts.USE_COPY:
        TierChange.objects.bulk_create([
            TierChange(merchant_id=merchant, account_id=pk, from_tier_id=before, to_tier_id=after,
                       reason=reason, created_at=at)
            for pk, merchant, _customer, before, after, reason, _read in moves
        ])  # fmt: skip
        Activity.objects.bulk_create([
            Activity(merchant_id=merchant, customer_id=customer, kind=Activity.Kind.TIER_CHANGED,
                     occurred_at=at, data={"from": name(before), "to": name(after),
                                           "reason": reason, "up": up(before, after)})
            for _pk, merchant, customer, before, after, reason, _read in moves
        ])  # fmt: skip
        return
    columns = list(zip(*(move[:6] for move in moves), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            HISTORY_SQL,
            {
                "merchant": moves[0][1],
                "at": at,
                "accounts": list(columns[0]),
                "from_tiers": list(columns[3]),
                "to_tiers": list(columns[4]),
                "reasons": list(columns[5]),
            },
        )
        cursor.execute(
            ACTIVITY_SQL,
            {
                "merchant": moves[0][1],
                "at": at,
                "customers": list(columns[2]),
                "from_names": [name(t) for t in columns[3]],
                "to_names": [name(t) for t in columns[4]],
                "reasons": list(columns[5]),
                "ups": [up(b, a) for b, a in zip(columns[3], columns[4], strict=True)],
            },
        )


@transaction.atomic
def tier_override(
    *, account: PointsAccount, tier: Tier | None, until: date | None, by, note: str
) -> PointsAccount:
    """Staff set a tier as a floor until a date (None clears the floor). The account takes
    the tier at once if it is higher than the one it holds."""
    from loyalty.services.ledger import account_locked

    if not note.strip():
        raise ValidationError({"note": _("Say why.")})
    if tier is not None and tier.merchant_id != account.merchant_id:
        raise ValidationError({"tier": _("No such tier.")})
    account = account_locked(account=account)
    account.tier_floor = tier
    account.tier_floor_until = until
    fields = ["tier_floor", "tier_floor_until"]
    if tier is not None and _threshold(tier) > _threshold(account.tier):
        change, activity = _change(
            account=account, to=tier, reason=TierChange.Reason.OVERRIDE, at=now(), note=note,
            by=by,
        )  # fmt: skip
        change.save()
        activity.save()
        fields += ["tier", "tier_since"]
    account.save(update_fields=fields)
    return account


# Merge fields of the tier-down warning (offered to campaigns' templates in apps.py), read
# from the warning's data: the day her tier would drop and what keeps it.
def tier_ends_on_text(customer, data: dict) -> str:
    return date_format(date.fromisoformat(data["on"])) if data.get("on") else ""


def to_keep_tier_text(customer, data: dict) -> str:
    if "to_keep" not in data:
        return ""
    needed = Decimal(data["to_keep"])
    if data.get("basis") == Program.TierBasis.SPENT:
        return f"{number_format(needed, 2, use_l10n=True)} {customer.merchant.base_currency}"
    return number_format(int(needed.to_integral_value(ROUND_CEILING)), use_l10n=True)


def tier_warnings_void(*, warnings: Sequence[tuple[int, dict]], at: datetime) -> set[int]:
    """Of (customer, tier-down warning data) pairs, the customers the warning no longer
    fits when it is about to be sent: she no longer holds the tier it named, or what she
    has bought since already keeps it on the night it named. A read per merchant and
    night named, for a whole chunk of messages."""
    if not warnings:
        return set()
    accounts = PointsAccount.objects.filter(customer_id__in=[c for c, _data in warnings])
    held, merchants = {}, {}
    for customer_id, merchant_id, tier_id in accounts.values_list(
        "customer_id", "merchant_id", "tier_id"
    ):
        held[customer_id], merchants[customer_id] = tier_id, merchant_id
    void = {c for c, data in warnings if held.get(c) is None or held[c] != data.get("tier_id")}
    asking: dict[tuple[int, str], list[int]] = defaultdict(list)
    for customer_id, data in warnings:
        if customer_id not in void and data.get("on"):
            asking[(merchants[customer_id], data["on"])].append(customer_id)
    programs = {
        p.merchant_id: p
        for p in Program.objects.filter(merchant_id__in={m for m, _on in asking})
        .select_related("merchant")
    }  # fmt: skip
    thresholds = dict(Tier.objects.filter(pk__in=set(held.values()) - {None}).values_list(
        "pk", "threshold"))  # fmt: skip
    for (merchant_id, on), customer_ids in asking.items():
        program = programs.get(merchant_id)
        if program is None:
            continue
        today = at.astimezone(program.merchant.zone).date()
        moment = at + timedelta(days=max((date.fromisoformat(on) - today).days, 0))
        values = basis_values(program=program, customer_ids=customer_ids, at=moment)
        void |= {c for c in customer_ids if (values.get(c) or 0) >= thresholds[held[c]]}
    return void
