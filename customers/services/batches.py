"""Many at once: the bulk doors (API batches, CSV imports, the demo) store a batch in a
fixed number of statements whatever its size, with the same rules as one at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from datetime import datetime
from itertools import chain
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.timezone import now

from customers import reactions
from customers.inserts import rows_insert
from customers.models import Activity, ConsentRecord, Customer, Order, OrderLine
from customers.services.data import (
    PROFILE_FIELDS,
    CustomerData,
    Ingested,
    OrderData,
    customer_check,
    identity,
    prefixed,
    profile_values,
)
from customers.services.orders import line_rows, order_row, orders_check, placed_activity
from customers.services.profiles import (
    consent_rows,
    created_activity,
    customer_stats_refresh,
    customer_update,
)
from merchants.models import Merchant, normalise_email


def _merged(first: CustomerData | None, later: CustomerData) -> CustomerData:
    """One person sent twice in a batch: what the later copy sent wins, as it would one by one."""
    if first is None:
        return later
    sent = {f.name: getattr(later, f.name) for f in fields(later)}
    return replace(first, **{name: value for name, value in sent.items() if value is not None})


class _Known(NamedTuple):
    pk: int
    external_id: str
    email: str


def _customers_match(*, merchant: Merchant, wanted: dict[str, CustomerData]) -> dict[str, _Known]:
    """The stored customer of each identity that has one, matched as customer_upsert does:
    by external id, then by an email whose profile has no other external id."""
    external_ids = [d.external_id for d in wanted.values() if d.external_id]
    emails = [normalise_email(d.email) for d in wanted.values() if d.email]
    # Two lookups, each answered by its own index; as one `OR` the planner may walk all the
    # merchant's customers instead. `<> ''` is spelled out because the external id index is
    # partial, and PostgreSQL can't tell on its own that a long `= ANY(…)` list excludes ''.
    # Plain tuples, not models: a batch matches a thousand customers or two.
    live = Customer.objects.filter(merchant=merchant, erased_at__isnull=True).values_list(
        "pk", "external_id", "email"
    )
    found = {
        row[0]: _Known(*row)
        for row in chain(
            live.filter(external_id__any=external_ids).exclude(external_id="")
            if external_ids
            else (),
            live.filter(email__any=emails) if emails else (),
        )
    }
    by_external: dict[str, _Known] = {}
    by_email: dict[str, list[_Known]] = {}
    for _pk, customer in sorted(found.items()):
        if customer.external_id:
            by_external[customer.external_id] = customer
        by_email.setdefault(customer.email, []).append(customer)
    matched: dict[str, _Known] = {}
    claimed: set[int] = set()
    # In identity order, the order one-by-one ingest would have matched them in.
    for key in sorted(wanted):
        data = wanted[key]
        customer = by_external.get(data.external_id) if data.external_id else None
        if customer is None and data.email:
            candidates = by_email.get(normalise_email(data.email), [])
            customer = next(
                (
                    c
                    for c in candidates
                    if not data.external_id or (not c.external_id and c.pk not in claimed)
                ),
                None,
            )
            if customer is not None and data.external_id:
                claimed.add(customer.pk)
        if customer is not None:
            matched[key] = customer
    return matched


def _customers_resolve(
    *, merchant: Merchant, people: Iterable[CustomerData], source: str, at: datetime
) -> dict[str, tuple[Customer, bool]]:
    """Finds or creates every customer of a batch, keyed by identity, with whether this call
    created them, and locks them all in id order (so batches can't deadlock) before updating
    what was sent. New ones are created in one INSERT; when another batch created some of
    them a moment ago, the match is made again and the rest created."""
    wanted: dict[str, CustomerData] = {}
    for data in people:
        key = identity(data)
        wanted[key] = _merged(wanted.get(key), data)
    created: dict[str, Customer] = {}
    for _attempt in range(3):
        matched = _customers_match(merchant=merchant, wanted=wanted)
        fresh = {key: data for key, data in wanted.items() if key not in matched}
        try:
            with transaction.atomic():
                created = _customers_create(merchant=merchant, fresh=fresh, source=source, at=at)
            break
        except IntegrityError:
            continue
    else:
        raise IntegrityError("Customers kept being created by another batch; send it again.")
    ids = sorted({c.pk for c in matched.values()} | {c.pk for c in created.values()})
    # Only what the update compares and writes: a batch locks a thousand customers.
    locked = (
        Customer.objects.select_for_update()
        .filter(pk__any=ids)
        .only("merchant_id", "external_id", "marketing_consent", *PROFILE_FIELDS)
        .order_by("pk")
        .in_bulk()
    )
    resolved = {key: (customer, True) for key, customer in created.items()}
    for key, customer in matched.items():
        current = locked[customer.pk]
        customer_update(customer=current, data=wanted[key], source=source, at=at)
        resolved[key] = (current, False)
    return resolved


def _customers_create(
    *, merchant: Merchant, fresh: dict[str, CustomerData], source: str, at: datetime
) -> dict[str, Customer]:
    if not fresh:
        return {}
    rows = {}
    for key in sorted(fresh):
        data = fresh[key]
        customer = Customer(
            merchant=merchant,
            external_id=data.external_id or "",
            created_at=at,
            updated_at=at,
            **profile_values(data),
        )
        if data.marketing_consent is not None:
            customer.marketing_consent = data.marketing_consent
            customer.marketing_consent_at = at
            customer.marketing_consent_source = source[:60]
        rows[key] = customer
    rows_insert(Customer, list(rows.values()))
    activities = []
    consents = []
    for key, customer in rows.items():
        activities.append(created_activity(customer=customer, source=source, at=at))
        granted = fresh[key].marketing_consent
        if granted is not None:
            record, activity = consent_rows(
                customer=customer, granted=granted, source=source, at=at
            )
            consents.append(record)
            activities.append(activity)
    rows_insert(ConsentRecord, consents)
    rows_insert(Activity, activities)
    return rows


def customers_upsert_many(
    *, merchant: Merchant, customers: Sequence[CustomerData], source: str
) -> list[tuple[Customer, bool]]:
    """All or nothing: a bad customer is named by its position and nothing is stored."""
    for index, data in enumerate(customers):
        try:
            customer_check(data)
        except ValidationError as error:
            raise prefixed(error, f"customers[{index}]") from error
    with transaction.atomic():
        resolved = _customers_resolve(merchant=merchant, people=customers, source=source, at=now())
    return [resolved[identity(data)] for data in customers]


def _orders_stored(*, merchant: Merchant, orders: Sequence[OrderData]) -> dict[tuple, Order]:
    keys = {(o.source, o.external_id) for o in orders}
    stored = Order.objects.filter(
        merchant=merchant,
        source__any={source for source, _id in keys},
        external_id__any={external_id for _source, external_id in keys},
    ).select_related("customer")
    return {(o.source, o.external_id): o for o in stored if (o.source, o.external_id) in keys}


def orders_ingest_many(
    *, merchant: Merchant, orders: Sequence[OrderData], checked: bool = False
) -> list[Ingested]:
    """Stores a batch of orders, their lines, timeline entries and customers in a fixed
    number of statements, with the same rules as order_ingest. All or nothing: a bad order
    is named by its position and nothing is stored. An order already stored (or sent twice
    in the batch) answers with the first one and writes nothing. `checked` says the caller
    has just run orders_check on these very orders and kept only the good ones."""
    problems = {} if checked else orders_check(merchant=merchant, orders=orders)
    if problems:
        index = min(problems)
        raise prefixed(problems[index], f"orders[{index}]")
    stored = _orders_stored(merchant=merchant, orders=orders)
    pending = [o for o in orders if (o.source, o.external_id) not in stored]
    rows: dict[tuple, tuple[Order, OrderData]] = {}
    if pending:
        with transaction.atomic():
            people = _customers_resolve(
                merchant=merchant,
                people=(data.customer for data in pending),
                source=pending[0].source,
                at=now(),
            )
            # Customers are locked now: anything stored meanwhile is visible, and stays.
            stored.update(_orders_stored(merchant=merchant, orders=pending))
            for data in pending:
                key = (data.source, data.external_id)
                if key not in stored and key not in rows:
                    customer = people[identity(data.customer)][0]
                    rows[key] = (order_row(merchant=merchant, customer=customer, data=data), data)
            created = [order for order, _data in rows.values()]
            rows_insert(Order, created)
            lines = [
                line for order, data in rows.values() for line in line_rows(order=order, data=data)
            ]
            rows_insert(OrderLine, lines)
            rows_insert(Activity, [placed_activity(order=order) for order in created])
            # The stats are counted in SQL: the customers in memory are behind them.
            customer_stats_refresh(customer_ids={order.customer_id for order in created})
            reactions.orders_stored(orders=created, lines=lines)
    results = []
    answered: set[tuple] = set()
    for data in orders:
        key = (data.source, data.external_id)
        if key in rows and key not in answered:
            results.append(Ingested(order=rows[key][0], created=True))
            answered.add(key)
        else:
            results.append(Ingested(order=stored.get(key) or rows[key][0], created=False))
    return results
