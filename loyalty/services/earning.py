"""Earning: the points an order or an event is worth under the merchant's rules, written
to the ledger as orders, refunds, cancellations and events arrive from customers/."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.db.models import Q, Sum
from django.utils.timezone import now

from customers.inserts import rows_insert, rows_update
from customers.models import Activity, Customer, Order, OrderLine, Refund
from loyalty.models import EarningRule, Membership, PointsAccount, PointsEntry, Program, Tier
from loyalty.selectors import Catalog, catalog_of
from loyalty.services.ledger import (
    account_for,
    account_locked,
    accounts_locked_for,
    accounts_opening,
    entry_get,
    entry_write,
    lot_expiry,
    pending_catch_up_many,
    program_of,
)
from loyalty.services.referrals import referrals_on_orders
from loyalty.services.tiers import basis_values_new, tier_upgrade, tiers_upgrade

LIVE_MEMBERSHIP = [
    Membership.State.TRIALING,
    Membership.State.ACTIVE,
    Membership.State.PAST_DUE,
    Membership.State.CANCELLED,
]
ROUNDING = {
    Program.Rounding.DOWN: ROUND_FLOOR,
    Program.Rounding.NEAREST: ROUND_HALF_UP,
    Program.Rounding.UP: ROUND_CEILING,
}


def _active(rule: EarningRule, at: datetime) -> bool:
    return (rule.starts_at is None or rule.starts_at <= at) and (
        rule.ends_at is None or at < rule.ends_at
    )


def order_points(
    *,
    program: Program,
    order: Order,
    lines: Sequence[OrderLine],
    rules: Sequence[EarningRule],
    tier: Tier | None,
    plan_multiplier: Decimal,
) -> tuple[int, list[str]]:
    """The points an order earns, and the names of what made them: the base rate on the
    earning base, times the best multiplier that applies to each line (tier, membership,
    a bonus campaign, the line's category or SKU), rounded once; plus fixed bonuses."""
    if program.earn_base == Program.Base.TOTAL:
        base = order.total
    else:
        base = order.total - order.shipping - order.tax
    base = max(base, Decimal(0))
    placed = order.placed_at
    order_wide = [(Decimal(1), "")]
    if tier is not None and tier.multiplier > 1:
        order_wide.append((tier.multiplier, tier.name))
    if plan_multiplier > 1:
        order_wide.append((plan_multiplier, "membership"))
    for rule in rules:
        if rule.kind == EarningRule.Kind.CAMPAIGN_MULTIPLIER and _active(rule, placed):
            order_wide.append((rule.multiplier, rule.name))
    best_order_wide = max(order_wide, key=lambda pair: pair[0])
    by_line = [
        r for r in rules if r.kind == EarningRule.Kind.CATEGORY_MULTIPLIER and _active(r, placed)
    ]
    excluded = set(program.excluded_skus or [])
    gross = sum((line.price * line.quantity for line in lines), Decimal(0))
    used: set[str] = set()
    raw = Decimal(0)
    if gross <= 0:
        raw = base * program.points_per_unit * best_order_wide[0]
        used.add(best_order_wide[1])
    else:
        for line in lines:
            if line.sku in excluded:
                continue
            # Each line's share of the base, so order discounts spread over the lines.
            share = base * (line.price * line.quantity) / gross
            best = best_order_wide
            for rule in by_line:
                if (rule.sku and rule.sku == line.sku) or (
                    rule.category and rule.category == line.category
                ):
                    best = max(best, (rule.multiplier, rule.name), key=lambda pair: pair[0])
            raw += share * program.points_per_unit * best[0]
            used.add(best[1])
    points = int(raw.quantize(Decimal(1), rounding=ROUNDING[program.rounding]))
    skus = {line.sku for line in lines}
    for rule in rules:
        if (
            rule.kind == EarningRule.Kind.PRODUCT_BONUS
            and rule.sku in skus
            and _active(rule, placed)
        ):
            points += rule.points
            used.add(rule.name)
    return points, sorted(name for name in used if name)


def _first_order_rules(rules: Sequence[EarningRule], placed: datetime) -> list[EarningRule]:
    return [r for r in rules if r.kind == EarningRule.Kind.FIRST_ORDER and _active(r, placed)]


def orders_stored(
    *,
    orders: Sequence[Order],
    lines: Sequence[OrderLine] | None = None,
    customers: dict[int, Customer] | None = None,
    new_customers: frozenset[int] = frozenset(),
    timeline: list[Activity] | None = None,
) -> None:
    """customers/ stored these orders (one, or a whole batch), in their transaction: with a
    running program, each earns its points and a referred friend's first order rewards the
    referrer. The program comes with the shop's cached catalog: without one, this costs no
    query. `lines` and `customers` (stats current) save reading them again; a customer in
    `new_customers` was created in this transaction, so has no account and no referral;
    `timeline`, when given, takes the timeline entries written here for the caller to
    insert with its own."""
    merchant = orders[0].merchant
    catalog = catalog_of(merchant=merchant)
    program = catalog.program_running(merchant)
    if program is None:
        return
    if customers is None:
        customers = Customer.objects.in_bulk({o.customer_id for o in orders})
    orders_earn(program=program, catalog=catalog, orders=orders, lines=lines,
                customers=customers, new_customers=new_customers, timeline=timeline)  # fmt: skip
    # Only a customer's first order can be the one a referral waits for, and only for a
    # customer who existed before it (a referral names its friend once they sign up).
    firsts = [
        o
        for o in orders
        if customers[o.customer_id].first_order_at == o.placed_at
        and o.customer_id not in new_customers
    ]
    if firsts:
        referrals_on_orders(orders=firsts)


def orders_earn(
    *,
    program: Program,
    catalog: Catalog,
    orders: Sequence[Order],
    customers: dict[int, Customer],
    lines: Sequence[OrderLine] | None = None,
    new_customers: frozenset[int] = frozenset(),
    timeline: list[Activity] | None = None,
) -> None:
    """Each order earns its points (pending for the return window) under the shop's rules
    and tiers from its catalog. The orders are new: only a first-order bonus can have been
    written before, and not for a customer in `new_customers` (created in this
    transaction), whose account is opened here already holding what the orders earn, and
    whose tier basis is these orders alone. The timeline entries go to `timeline` when
    given, else are inserted here."""
    merchant = program.merchant
    zone = merchant.zone
    orders = sorted(
        (o for o in orders if o.status != Order.Status.CANCELLED), key=lambda o: o.placed_at
    )
    if not orders:
        return
    rules = catalog.order_rules
    ids = {o.customer_id for o in orders}
    by_customer = accounts_locked_for(customers=[customers[pk] for pk in ids - new_customers])
    at = now()
    locked = {account.customer_id: account for account in by_customer.values()}
    # Opened below, once they hold their balances: no one else can see these customers.
    opened = accounts_opening(customers=[customers[pk] for pk in ids & new_customers], at=at)
    accounts = {**locked, **opened}
    if lines is None:
        lines = OrderLine.objects.filter(order_id__in=[o.pk for o in orders]).order_by("id")
    lines_of: dict[int, list[OrderLine]] = defaultdict(list)
    for line in lines:
        lines_of[line.order_id].append(line)
    plan_multipliers = dict(
        Membership.objects.filter(customer_id__in=customers, state__in=LIVE_MEMBERSHIP)
        .values_list("customer_id", "plan__multiplier")
    ) if catalog.has_plans else {}  # fmt: skip
    tier_of = {tier.pk: tier for tier in catalog.tiers}
    pending_for = timedelta(days=program.pending_days)
    # A batch is written in a fixed number of statements, whatever its size: the balances
    # of every locked account are brought up to now at once (an account being opened holds
    # nothing to bring up), the accounts opened, the entries and timeline lines go in one
    # statement each, and the balances of the others in one update.
    pending_catch_up_many(list(locked.values()), at)
    wanted: list[tuple[PointsAccount, PointsEntry, EarningRule | None]] = []
    for order in orders:
        account = accounts[order.customer_id]
        points, reasons = order_points(
            program=program,
            order=order,
            lines=lines_of[order.pk],
            rules=rules,
            tier=tier_of.get(account.tier_id),
            plan_multiplier=plan_multipliers.get(order.customer_id) or Decimal(1),
        )
        available_at = order.placed_at + pending_for
        earned = {"kind": PointsEntry.Kind.EARN, "available_at": available_at, "order": order,
                  "expires_at": lot_expiry(program=program, available_at=available_at, zone=zone),
                  "merchant_id": merchant.pk, "created_at": at}  # fmt: skip
        if points > 0:
            entry = PointsEntry(points=points, idempotency_key=f"order:{order.pk}:earn",
                                note=", ".join(reasons)[:200], **earned)  # fmt: skip
            wanted.append((account, entry, None))
        if customers[order.customer_id].first_order_at == order.placed_at:
            # Once per customer, whichever of their orders arrives as the first.
            wanted += [
                (account, PointsEntry(points=rule.points, rule=rule, note=rule.name[:200],
                                      **earned), rule)
                for rule in _first_order_rules(rules, order.placed_at)
            ]  # fmt: skip
    # A new order's own entry can't exist yet; a first-order bonus may (another order of
    # the customer's that arrived earlier claimed to be the first), but not on an account
    # being opened.
    bonuses = [_bonus_key(account, rule) for account, _entry, rule in wanted
               if rule is not None and account.pk is not None]  # fmt: skip
    written = (
        set(
            PointsEntry.objects.filter(merchant=merchant, idempotency_key__in=bonuses).values_list(
                "idempotency_key", flat=True
            )
        )
        if bonuses
        else set()
    )
    entries, claimed = [], set()
    for account, entry, rule in wanted:
        if rule is not None:
            claim = (id(account), rule.pk)
            if claim in claimed or (
                account.pk is not None and _bonus_key(account, rule) in written
            ):
                continue
            claimed.add(claim)
        if entry.available_at <= account.confirmed_through:
            account.available += entry.points
        else:
            account.pending += entry.points
        account.last_activity_at = at
        entries.append((account, entry, rule))
    rows_insert(PointsAccount, list(opened.values()))
    for account, entry, rule in entries:
        entry.account = account
        if rule is not None:
            entry.idempotency_key = _bonus_key(account, rule)
    rows_insert(PointsEntry, [entry for _account, entry, _rule in entries])
    lines_written = [
        Activity(merchant_id=merchant.pk, customer_id=entry.account.customer_id,
                 kind=Activity.Kind.POINTS_EARNED, occurred_at=at,
                 data={"entry_id": entry.pk, "points": entry.points,
                       "pending": entry.available_at > at, "note": entry.note,
                       "order_id": entry.order_id})
        for _account, entry, _rule in entries
    ]  # fmt: skip
    rows_update(
        PointsAccount,
        list(locked.values()),
        ["available", "pending", "confirmed_through", "last_activity_at"],
    )
    earning = list({id(account): account for account, _entry, _rule in entries}.values())
    known = basis_values_new(program=program, orders=orders,
                             entries=[entry for _account, entry, _rule in entries],
                             customer_ids=ids & new_customers, at=at)  # fmt: skip
    tiers_upgrade(accounts=earning, program=program, at=at, tiers=catalog.tiers, known=known,
                  timeline=lines_written)  # fmt: skip
    if timeline is None:
        rows_insert(Activity, lines_written)
    else:
        timeline += lines_written


def _bonus_key(account: PointsAccount, rule: EarningRule) -> str:
    return f"first-order:{account.pk}:rule:{rule.pk}"


def _reverse(*, order: Order, target_share: Decimal, key: str) -> None:
    """Takes back the points the order earned down to `target_share` of them."""
    earn = PointsEntry.objects.filter(
        merchant_id=order.merchant_id, order=order, kind=PointsEntry.Kind.EARN
    ).first()
    if earn is not None:
        _take_back(earn=earn, target_share=target_share, key=key, order=order)


def _take_back(*, earn: PointsEntry, target_share: Decimal, key: str, order: Order | None) -> None:
    """Takes back an earning entry down to `target_share` of it, referencing it; what was
    taken back before counts. A paused program still takes back what it gave."""
    program = Program.objects.filter(merchant_id=earn.merchant_id).first()
    if program is None:
        return
    account = account_locked(account=earn.account)
    taken = -(
        PointsEntry.objects.filter(reverses=earn).aggregate(total=Sum("points"))["total"] or 0
    )
    owed = int((earn.points * target_share).quantize(Decimal(1), rounding=ROUND_FLOOR)) - taken
    if owed <= 0:
        return
    at = now()
    still_pending = earn.available_at > at
    allow_negative = program.refund_policy == Program.RefundPolicy.ALLOW_NEGATIVE
    if not still_pending and not allow_negative:
        # Only what is still there: spent points stay spent.
        account.refresh_from_db()
        owed = min(owed, max(account.available, 0))
        if owed <= 0:
            return
    entry_write(
        account=account,
        kind=PointsEntry.Kind.REVERSE,
        points=-owed,
        key=key,
        at=at,
        # A pending lot shrinks while still pending; an available one at once.
        available_at=earn.available_at if still_pending else at,
        expires_at=earn.expires_at,
        reverses=earn,
        order=order,
        allow_negative=allow_negative,
        activity=Activity.Kind.POINTS_REVERSED,
    )


def bonus_grant(*, customer: Customer, points: int, key: str, note: str) -> PointsEntry | None:
    """Points given from outside the earning rules (a promotion's bonus points), at once and
    once per key; None when the merchant runs no program. In the caller's transaction."""
    program = program_of(merchant_id=customer.merchant_id)
    if program is None or points <= 0:
        return None
    account = account_locked(account=account_for(customer=customer))
    at = now()
    entry, _created = entry_write(
        account=account,
        kind=PointsEntry.Kind.EARN,
        points=points,
        key=key,
        at=at,
        expires_at=lot_expiry(program=program, available_at=at, zone=program.merchant.zone),
        note=note[:200],
        activity=Activity.Kind.POINTS_EARNED,
    )
    tier_upgrade(account=account, program=program)
    return entry


def bonus_take_back(*, merchant_id: int, key: str) -> None:
    """Takes back, once, the bonus given under `key` (its code's order was cancelled)."""
    earn = entry_get(merchant_id=merchant_id, key=key)
    if earn is not None:
        _take_back(earn=earn, target_share=Decimal(1), key=f"{key}:reverse", order=None)


def refund_reverse(*, refund: Refund) -> None:
    """A refund takes back the order's points in proportion to the amount refunded."""
    order = refund.order
    if order.total <= 0:
        return
    share = min(order.refunded_amount / order.total, Decimal(1))
    _reverse(order=order, target_share=share, key=f"refund:{refund.pk}:reverse")


def cancel_reverse(*, order: Order) -> None:
    _reverse(order=order, target_share=Decimal(1), key=f"cancel:{order.pk}:reverse")


def _period_start(per: str, at: datetime, zone) -> datetime:
    local = at.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if per == EarningRule.Per.WEEK:
        return local - timedelta(days=local.weekday())
    if per == EarningRule.Per.MONTH:
        return local.replace(day=1)
    return local


def event_earn(*, activity: Activity) -> None:
    """A custom event (review, social follow, newsletter, any key) earns the points of the
    active rules for it, within each rule's limit per day, week or month."""
    program = program_of(merchant_id=activity.merchant_id)
    if program is None:
        return
    key = str(activity.data.get("key", ""))
    at = activity.occurred_at
    rules = [
        rule
        for rule in EarningRule.objects.filter(
            Q(event=key) | Q(event=EarningRule.Event.CUSTOM, event_key=key),
            merchant_id=activity.merchant_id,
            kind=EarningRule.Kind.EVENT,
            is_active=True,
        ).order_by("pk")
        if _active(rule, at) and rule.points > 0
    ]
    if not rules:
        return
    account = account_locked(account=account_for(customer=activity.customer))
    zone = program.merchant.zone
    for rule in rules:
        if rule.limit_count is not None and rule.limit_per:
            since = _period_start(rule.limit_per, at, zone)
            earned = PointsEntry.objects.filter(account=account, rule=rule, created_at__gte=since)
            if earned.count() >= rule.limit_count:
                continue
        entry_write(
            account=account,
            kind=PointsEntry.Kind.EARN,
            points=rule.points,
            key=f"event:{activity.pk}:rule:{rule.pk}",
            at=at,
            expires_at=lot_expiry(program=program, available_at=at, zone=zone),
            rule=rule,
            note=rule.name[:200],
            activity=Activity.Kind.POINTS_EARNED,
        )
    tier_upgrade(account=account, program=program)
