"""Customers one at a time: find or create, update what was sent, consent, and the
stats kept from their orders."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, DecimalField, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils.timezone import now

from customers import reactions
from customers.expressions import FractionalOnSQLite
from customers.inserts import rows_insert
from customers.models import ZERO, Activity, ConsentRecord, Customer, Order
from customers.services.data import (
    CustomerData,
    customer_check,
    json_problem,
    moment_problem,
    problems_raise,
    profile_values,
    text_problem,
)
from merchants.models import Merchant, normalise_email

# Every order looks its customer up, with her row locked: by hand (raw()), as building the
# statement through the ORM measured costlier than running it. By external id, else by
# email among profiles without another external id: one statement (two index lookups the
# planner ORs), the external id's match sorting first (before those without any, '').
CUSTOMER_FIND_SQL = """SELECT * FROM customers_customer
WHERE merchant_id = %s AND erased_at IS NULL AND ({match}) ORDER BY {order} LIMIT 1"""
CUSTOMER_MATCH = {
    (True, True): ("external_id = %s OR (email = %s AND external_id = '')", "external_id DESC, id"),
    (True, False): ("external_id = %s", "id"),
    (False, True): ("email = %s", "id"),
}


def _customer_find(
    *, merchant: Merchant, data: CustomerData, lock: bool = False
) -> Customer | None:
    """The customer `data` names, by external id, else by email; see CUSTOMER_FIND_SQL."""
    email = normalise_email(data.email) if data.email else ""
    if not data.external_id and not email:
        return None
    match, order = CUSTOMER_MATCH[bool(data.external_id), bool(email)]
    sql = CUSTOMER_FIND_SQL.format(match=match, order=order)
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    params = [merchant.pk, *(value for value in (data.external_id, email) if value)]
    customer = next(iter(Customer.objects.raw(sql, params)), None)
    if customer is not None:
        customer.merchant = merchant
    return customer


def customer_upsert(
    *,
    merchant: Merchant,
    data: CustomerData,
    source: str,
    at: datetime | None = None,
) -> tuple[Customer, bool]:
    """Finds the customer by external id, then by email, and updates what was sent; or
    creates them. Safe when two requests create the same customer at once."""
    customer_check(data)
    at = at or now()
    with transaction.atomic(savepoint=False):
        customer = _customer_find(merchant=merchant, data=data)
        if customer is None:
            try:
                with transaction.atomic():
                    customer, timeline = _customer_new(
                        merchant=merchant, data=data, source=source, at=at
                    )
                    rows_insert(Activity, timeline)
                    return customer, True
            except IntegrityError:
                # Another request created them a moment ago: update that one instead.
                customer = _customer_find(merchant=merchant, data=data)
                if customer is None:
                    raise
        customer_update(customer=customer, data=data, source=source, at=at)
        return customer, False


def customer_for_order(
    *, merchant: Merchant, data: CustomerData, source: str, at: datetime, order: Order
) -> tuple[Customer, list[Activity]]:
    """The customer of an order being stored (not yet saved), found and updated or created,
    with the order counted in their stats; their row stays locked until the caller's
    transaction ends, so the stats count every order exactly once. Returns the timeline
    lines still to insert, for the caller to insert with its own: none for a customer who
    existed, their creation (and consent) for a new one.

    A customer created by another request a moment ago raises IntegrityError: the caller's
    transaction rolls back and runs again (no savepoint per customer: the race is rare).
    The caller has checked `data` (customer_check)."""
    customer = _customer_find(merchant=merchant, data=data, lock=True)
    if customer is None:
        customer, timeline = _customer_new(
            merchant=merchant, data=data, source=source, at=at, counting=order
        )
        return customer, timeline
    customer_update(customer=customer, data=data, source=source, at=at)
    if order_counted(customer=customer, order=order):
        Customer.objects.filter(pk=customer.pk).update(**{f: getattr(customer, f) for f in STATS})
    return customer, []


# The stats kept from a customer's orders.
STATS = ("orders_count", "total_spent", "average_order_value", "first_order_at", "last_order_at")


def order_counted(*, customer: Customer, order: Order) -> bool:
    """Counts one new order in the customer's stats, in memory; False for an order that
    doesn't count (cancelled)."""
    if order.status == Order.Status.CANCELLED:
        return False
    customer.orders_count += 1
    customer.total_spent += order.total
    customer.average_order_value = (customer.total_spent / customer.orders_count).quantize(
        ZERO, ROUND_HALF_UP
    )
    customer.first_order_at = min(customer.first_order_at or order.placed_at, order.placed_at)
    customer.last_order_at = max(customer.last_order_at or order.placed_at, order.placed_at)
    return True


def _customer_new(
    *,
    merchant: Merchant,
    data: CustomerData,
    source: str,
    at: datetime,
    counting: Order | None = None,
) -> tuple[Customer, list[Activity]]:
    """Inserts a new customer, with their consent and `counting` (an order) already in the
    row, and their consent record; returns the timeline lines still to insert."""
    customer = Customer(
        merchant=merchant, external_id=data.external_id or "", created_at=at, updated_at=at
    )
    for name, value in profile_values(data).items():
        setattr(customer, name, value)
    granted = data.marketing_consent
    if granted is not None:
        customer.marketing_consent = granted
        customer.marketing_consent_at = at
        customer.marketing_consent_source = source[:60]
    if counting is not None:
        order_counted(customer=customer, order=counting)
    rows_insert(Customer, [customer])
    timeline = [created_activity(customer=customer, source=source, at=at)]
    if granted is not None:
        record, activity = consent_rows(customer=customer, granted=granted, source=source, at=at)
        rows_insert(ConsentRecord, [record])
        timeline.append(activity)
    return customer, timeline


def customer_update(*, customer: Customer, data: CustomerData, source: str, at: datetime) -> None:
    changed = {}
    for name, value in profile_values(data).items():
        if getattr(customer, name) != value:
            changed[name] = value
    if data.external_id and not customer.external_id:
        changed["external_id"] = data.external_id
    if changed:
        for name, value in changed.items():
            setattr(customer, name, value)
        customer.updated_at = at
        customer.save(update_fields=[*changed, "updated_at"])
        Activity.objects.create(
            merchant_id=customer.merchant_id,
            customer=customer,
            kind=Activity.Kind.PROFILE_UPDATED,
            occurred_at=at,
            data={"source": source, "fields": sorted(changed)},
        )
    if data.marketing_consent is not None and data.marketing_consent != customer.marketing_consent:
        consent_set(customer=customer, granted=data.marketing_consent, source=source, at=at)


def consent_set(
    *, customer: Customer, granted: bool, source: str, at: datetime | None = None
) -> None:
    at = at or now()
    Customer.objects.filter(pk=customer.pk).update(
        marketing_consent=granted, marketing_consent_at=at, marketing_consent_source=source[:60]
    )
    customer.marketing_consent = granted
    customer.marketing_consent_at = at
    customer.marketing_consent_source = source[:60]
    record, activity = consent_rows(customer=customer, granted=granted, source=source, at=at)
    record.save()
    activity.save()


def created_activity(*, customer: Customer, source: str, at: datetime) -> Activity:
    """The timeline entry of a new profile: one shape for single and bulk creation."""
    return Activity(
        merchant_id=customer.merchant_id,
        customer=customer,
        kind=Activity.Kind.PROFILE_CREATED,
        occurred_at=at,
        data={"source": source},
    )


def consent_rows(
    *, customer: Customer, granted: bool, source: str, at: datetime
) -> tuple[ConsentRecord, Activity]:
    """The consent record and its timeline entry, not yet saved."""
    record = ConsentRecord(
        merchant_id=customer.merchant_id,
        customer=customer,
        granted=granted,
        source=source[:60],
        recorded_at=at,
    )
    activity = Activity(
        merchant_id=customer.merchant_id,
        customer=customer,
        kind=Activity.Kind.CONSENT_CHANGED,
        occurred_at=at,
        data={"granted": granted, "source": source},
    )
    return record, activity


def customer_stats_refresh(*, customer_ids: Iterable[int]) -> int:
    """Recomputes first/last order, orders count, total spent and AOV from the orders, in
    one UPDATE from one grouped pass over these customers' orders (five correlated
    subqueries per customer cost a bitmap scan each). Cancelled orders don't count; refunds
    come off the total spent."""
    money = DecimalField(max_digits=12, decimal_places=2)
    counted = ~Q(orders__status=Order.Status.CANCELLED)
    net = Sum(F("orders__total") - F("orders__refunded_amount"), filter=counted, output_field=money)
    orders = Count("orders", filter=counted)
    per_customer = (
        Customer.objects.filter(pk__any=list(customer_ids))
        .order_by()
        .values(customer=F("pk"))
        .annotate(
            n=orders,
            spent=Coalesce(net, Value(ZERO), output_field=money),
            average=Coalesce(
                FractionalOnSQLite(net, output_field=money) / NullIf(orders, 0),
                Value(ZERO),
                output_field=money,
            ),
            first_at=Min("orders__placed_at", filter=counted),
            last_at=Max("orders__placed_at", filter=counted),
        )
    )
    inner, params = per_customer.query.sql_with_params()
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET orders_count = a.n, total_spent = a.spent, "
            "average_order_value = a.average, first_order_at = a.first_at, "
            f"last_order_at = a.last_at FROM ({inner}) AS a WHERE {table}.id = a.customer",
            params,
        )
        return cursor.rowcount


def event_record(
    *,
    merchant: Merchant,
    customer: CustomerData,
    key: str,
    source: str,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> Activity:
    """A custom event (review posted, social follow, newsletter signup, any merchant key)
    on the customer's timeline, where loyalty's event rules and campaigns' flows see it."""
    problems_raise({"key": text_problem(key), "data": json_problem(data),
                    "occurred_at": moment_problem(occurred_at)})  # fmt: skip
    occurred_at = occurred_at or now()
    with transaction.atomic():
        person, _created = customer_upsert(
            merchant=merchant, data=customer, source=source, at=occurred_at
        )
        return customer_event_record(
            customer=person, key=key, source=source, occurred_at=occurred_at, data=data
        )


def customer_event_record(
    *,
    customer: Customer,
    key: str,
    source: str,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> Activity:
    """The same event for a customer already known (an approved review, say)."""
    with transaction.atomic():
        activity = Activity.objects.create(
            merchant_id=customer.merchant_id,
            customer=customer,
            kind=Activity.Kind.EVENT,
            occurred_at=occurred_at or now(),
            data={"key": key, "source": source, "data": data or {}},
        )
        reactions.event_recorded(activity=activity)
        return activity
