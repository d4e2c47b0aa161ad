"""Everything that writes customers, orders, refunds and the timeline.

Every door (the API, shop webhooks, CSV imports) parses its input into the dataclasses
below and calls these services, so the rules are the same whichever way data arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, DecimalField, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.expressions import FractionalOnSQLite
from customers.inserts import rows_insert
from customers.models import ZERO, Activity, ConsentRecord, Customer, Order, OrderLine, Refund
from merchants.models import Merchant, normalise_email

# --- Parsed input -----------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerData:
    """A customer as a door received it. None means "not sent": the stored value stays."""

    external_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    city: str | None = None
    country: str | None = None
    language: str | None = None
    acquisition_channel: str | None = None
    tags: list[str] | None = None
    marketing_consent: bool | None = None


PROFILE_FIELDS = tuple(
    f.name for f in fields(CustomerData) if f.name not in ("external_id", "marketing_consent")
)


@dataclass(frozen=True)
class OrderLineData:
    price: Decimal
    quantity: int = 1
    sku: str = ""
    name: str = ""
    category: str = ""


@dataclass(frozen=True)
class OrderData:
    source: str
    external_id: str
    placed_at: datetime
    total: Decimal
    currency: str
    customer: CustomerData
    status: str = Order.Status.PAID
    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    shipping: Decimal = ZERO
    tax: Decimal = ZERO
    channel: str = ""
    shipping_method: str = ""
    discount_codes: Sequence[str] = ()
    lines: Sequence[OrderLineData] = field(default_factory=tuple)


@dataclass(frozen=True)
class RefundData:
    source: str
    external_id: str
    order_external_id: str
    amount: Decimal
    refunded_at: datetime
    reason: str = ""
    lines: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class Ingested:
    """What a door answers: the stored row, and whether this call created it."""

    order: Order
    created: bool


# --- Customers --------------------------------------------------------------------------


def _customer_find(
    *, merchant: Merchant, data: CustomerData, lock: bool = False
) -> Customer | None:
    customers = Customer.objects.filter(merchant=merchant, erased_at__isnull=True)
    if lock:
        customers = customers.select_for_update()
    if data.external_id:
        found = next(iter(customers.filter(external_id=data.external_id)[:1]), None)
        if found is not None:
            return found
    if data.email:
        # Matched by email only when that profile has no other external id.
        by_email = customers.filter(email=normalise_email(data.email))
        if data.external_id:
            by_email = by_email.filter(external_id="")
        return by_email.order_by("id").first()
    return None


def customer_upsert(
    *,
    merchant: Merchant,
    data: CustomerData,
    source: str,
    at: datetime | None = None,
    lock: bool = False,
) -> tuple[Customer, bool]:
    """Finds the customer by external id, then by email, and updates what was sent; or
    creates them. Safe when two requests create the same customer at once. With `lock`, the
    customer's row stays locked until the caller's transaction ends."""
    customer_check(data)
    at = at or now()
    with transaction.atomic(savepoint=False):
        customer = _customer_find(merchant=merchant, data=data, lock=lock)
        if customer is None:
            try:
                with transaction.atomic():
                    customer = _customer_create(merchant=merchant, data=data, source=source, at=at)
                    return customer, True
            except IntegrityError:
                # Another request created them a moment ago: update that one instead.
                customer = _customer_find(merchant=merchant, data=data, lock=lock)
                if customer is None:
                    raise
        _customer_update(customer=customer, data=data, source=source, at=at)
        return customer, False


def _profile_values(data: CustomerData) -> dict[str, Any]:
    values = {name: getattr(data, name) for name in PROFILE_FIELDS}
    values = {name: value for name, value in values.items() if value is not None}
    if "email" in values:
        values["email"] = normalise_email(values["email"])
    if "country" in values:
        values["country"] = values["country"].upper()
    return values


def _customer_create(
    *, merchant: Merchant, data: CustomerData, source: str, at: datetime
) -> Customer:
    customer = Customer(
        merchant=merchant, external_id=data.external_id or "", created_at=at, updated_at=at
    )
    for name, value in _profile_values(data).items():
        setattr(customer, name, value)
    customer.save()
    _created_activity(customer=customer, source=source, at=at).save()
    if data.marketing_consent is not None:
        consent_set(customer=customer, granted=data.marketing_consent, source=source, at=at)
    return customer


def _customer_update(*, customer: Customer, data: CustomerData, source: str, at: datetime) -> None:
    changed = {}
    for name, value in _profile_values(data).items():
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
    record, activity = _consent_rows(customer=customer, granted=granted, source=source, at=at)
    record.save()
    activity.save()


def _created_activity(*, customer: Customer, source: str, at: datetime) -> Activity:
    """The timeline entry of a new profile: one shape for single and bulk creation."""
    return Activity(
        merchant_id=customer.merchant_id,
        customer=customer,
        kind=Activity.Kind.PROFILE_CREATED,
        occurred_at=at,
        data={"source": source},
    )


def _consent_rows(
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


# --- Orders -----------------------------------------------------------------------------


def _order_validate(*, merchant: Merchant, data: OrderData) -> None:
    errors: dict[str, str] = {}
    if data.source not in Order.Source.values:
        errors["source"] = _("Unknown source.")
    if not data.external_id:
        errors["external_id"] = _("This field is required.")
    if data.currency.upper() != merchant.base_currency:
        errors["currency"] = _("Orders must be in the store's currency, %(currency)s.") % {
            "currency": merchant.base_currency
        }
    if data.status not in Order.Status.values:
        errors["status"] = _("Unknown order status.")
    for name in ("total", "subtotal", "discount", "shipping", "tax"):
        if getattr(data, name) < 0:
            errors[name] = _("Must not be negative.")
    for index, line in enumerate(data.lines):
        if line.quantity <= 0:
            errors[f"lines[{index}].quantity"] = _("Must be at least 1.")
        if line.price < 0:
            errors[f"lines[{index}].price"] = _("Must not be negative.")
    if errors:
        raise ValidationError(errors)


def _order_row(*, merchant: Merchant, customer: Customer, data: OrderData) -> Order:
    """The order as stored, not yet saved: one shape for single and bulk ingest."""
    return Order(
        merchant=merchant,
        customer=customer,
        source=data.source,
        external_id=data.external_id,
        placed_at=data.placed_at,
        status=data.status,
        currency=data.currency.upper(),
        subtotal=data.subtotal,
        discount=data.discount,
        shipping=data.shipping,
        tax=data.tax,
        total=data.total,
        channel=data.channel,
        shipping_method=data.shipping_method,
        discount_codes=list(data.discount_codes),
    )


def _line_rows(*, order: Order, data: OrderData) -> list[OrderLine]:
    return [
        OrderLine(
            merchant_id=order.merchant_id,
            order=order,
            sku=line.sku,
            name=line.name,
            category=line.category,
            quantity=line.quantity,
            price=line.price,
        )
        for line in data.lines
    ]


def _placed_activity(*, order: Order) -> Activity:
    return Activity(
        merchant_id=order.merchant_id,
        customer_id=order.customer_id,
        kind=Activity.Kind.ORDER_PLACED,
        occurred_at=order.placed_at,
        data={"order_id": order.pk, "external_id": order.external_id, "total": str(order.total)},
    )


def order_get_by_source(*, merchant: Merchant, source: str, external_id: str) -> Order | None:
    found = Order.objects.filter(merchant=merchant, source=source, external_id=external_id)
    return next(iter(found[:1]), None)  # unique: no ordering to add


def order_ingest(*, merchant: Merchant, data: OrderData) -> Ingested:
    """Stores an order with its lines and updates the customer's stats in the same
    transaction. The same (source, external_id) again, even concurrently, returns the
    first order and writes nothing."""
    existing = order_get_by_source(
        merchant=merchant, source=data.source, external_id=data.external_id
    )
    if existing is not None:
        return Ingested(order=existing, created=False)
    _order_validate(merchant=merchant, data=data)
    try:
        with transaction.atomic():
            # One order at a time per customer, so the stats count every order exactly once.
            customer, _created = customer_upsert(
                merchant=merchant, data=data.customer, source=data.source, lock=True
            )
            order = _order_row(merchant=merchant, customer=customer, data=data)
            order.save()
            OrderLine.objects.bulk_create(_line_rows(order=order, data=data))
            _placed_activity(order=order).save()
            _customer_stats_add(customer=customer, order=order)
    except IntegrityError:
        # The same order arrived by another request since the check above: all of this
        # one is rolled back, and the first one answers.
        existing = order_get_by_source(
            merchant=merchant, source=data.source, external_id=data.external_id
        )
        if existing is None:
            raise
        return Ingested(order=existing, created=False)
    return Ingested(order=order, created=True)


def _customer_stats_add(*, customer: Customer, order: Order) -> None:
    """Counts one new order in the stats of its customer, who is locked and was read after
    the lock, so the stats it holds count every order before this one."""
    if order.status == Order.Status.CANCELLED:
        return
    customer.orders_count += 1
    customer.total_spent += order.total
    customer.average_order_value = (customer.total_spent / customer.orders_count).quantize(
        ZERO, ROUND_HALF_UP
    )
    customer.first_order_at = min(customer.first_order_at or order.placed_at, order.placed_at)
    customer.last_order_at = max(customer.last_order_at or order.placed_at, order.placed_at)
    Customer.objects.filter(pk=customer.pk).update(
        orders_count=customer.orders_count,
        total_spent=customer.total_spent,
        average_order_value=customer.average_order_value,
        first_order_at=customer.first_order_at,
        last_order_at=customer.last_order_at,
    )


def refund_record(*, merchant: Merchant, data: RefundData) -> tuple[Refund, bool]:
    """Records a refund against an order (once per source and external id), lowers what
    the customer spent, and marks the order refunded or partially refunded."""
    if data.amount <= 0:
        raise ValidationError({"amount": _("Must be more than zero.")})
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .filter(merchant=merchant, source=data.source, external_id=data.order_external_id)
            .first()
        )
        if order is None:
            raise ValidationError({"order_external_id": _("No such order.")})
        existing = Refund.objects.filter(
            merchant=merchant, source=data.source, external_id=data.external_id
        ).first()
        if existing is not None:
            return existing, False
        refundable = order.total - order.refunded_amount
        if data.amount > refundable:
            raise ValidationError(
                {
                    "amount": _("Only %(amount)s of this order is left to refund.")
                    % {"amount": refundable}
                }
            )
        refund = Refund.objects.create(
            merchant=merchant,
            order=order,
            source=data.source,
            external_id=data.external_id,
            amount=data.amount,
            lines=list(data.lines),
            reason=data.reason[:255],
            refunded_at=data.refunded_at,
        )
        order.refunded_amount += data.amount
        order.status = (
            Order.Status.REFUNDED
            if order.refunded_amount >= order.total
            else Order.Status.PARTIALLY_REFUNDED
        )
        order.save(update_fields=["refunded_amount", "status"])
        Activity.objects.create(
            merchant=merchant,
            customer_id=order.customer_id,
            kind=Activity.Kind.ORDER_REFUNDED,
            occurred_at=data.refunded_at,
            data={"order_id": order.pk, "refund_id": refund.pk, "amount": str(data.amount)},
        )
        customer_stats_refresh(customer_ids=[order.customer_id])
    return refund, True


def _prefixed(error: ValidationError, prefix: str) -> ValidationError:
    if hasattr(error, "error_dict"):
        return ValidationError(
            {f"{prefix}.{field}": msgs for field, msgs in error.message_dict.items()}
        )
    return ValidationError({prefix: error.messages})


def _identity(data: CustomerData) -> str:
    return data.external_id or normalise_email(data.email or "")


# --- Many at once -------------------------------------------------------------------------
# The bulk doors (API batches, CSV imports, the demo) store a batch in a fixed number of
# statements whatever its size, with the same rules as the one-at-a-time services above.


def customer_check(data: CustomerData) -> None:
    """Raises a ValidationError naming each field of the customer that can't be stored."""
    if not data.external_id and not data.email:
        raise ValidationError({"customer": _("A customer needs an external_id or an email.")})
    values = _profile_values(data)
    if data.external_id:
        values["external_id"] = data.external_id
    errors = {}
    for name, value in values.items():
        try:
            Customer._meta.get_field(name).clean(value, None)
        except ValidationError as error:
            errors[name] = error.messages
    if errors:
        raise ValidationError(errors)


def orders_check(*, merchant: Merchant, orders: Sequence[OrderData]) -> dict[int, ValidationError]:
    """The orders of a batch that can't be stored, by position, each error naming its fields."""
    problems = {}
    for index, data in enumerate(orders):
        try:
            _order_validate(merchant=merchant, data=data)
            try:
                customer_check(data.customer)
            except ValidationError as error:
                raise _prefixed(error, "customer") from error
        except ValidationError as error:
            problems[index] = error
    return problems


def _merged(first: CustomerData | None, later: CustomerData) -> CustomerData:
    """One person sent twice in a batch: what the later copy sent wins, as it would one by one."""
    if first is None:
        return later
    sent = {f.name: getattr(later, f.name) for f in fields(later)}
    return replace(first, **{name: value for name, value in sent.items() if value is not None})


def _customers_match(*, merchant: Merchant, wanted: dict[str, CustomerData]) -> dict[str, Customer]:
    """The stored customer of each identity that has one, matched as customer_upsert does:
    by external id, then by an email whose profile has no other external id."""
    external_ids = [d.external_id for d in wanted.values() if d.external_id]
    emails = [normalise_email(d.email) for d in wanted.values() if d.email]
    # Two lookups, each answered by its own index; as one `OR` the planner may walk all the
    # merchant's customers instead. `<> ''` is spelled out because the external id index is
    # partial, and PostgreSQL can't tell on its own that a long `= ANY(…)` list excludes ''.
    live = Customer.objects.filter(merchant=merchant, erased_at__isnull=True).only(
        "external_id", "email"
    )
    found = {
        customer.pk: customer
        for customer in chain(
            live.filter(external_id__any=external_ids).exclude(external_id="")
            if external_ids
            else (),
            live.filter(email__any=emails) if emails else (),
        )
    }
    by_external: dict[str, Customer] = {}
    by_email: dict[str, list[Customer]] = {}
    for _pk, customer in sorted(found.items()):
        if customer.external_id:
            by_external[customer.external_id] = customer
        by_email.setdefault(customer.email, []).append(customer)
    matched: dict[str, Customer] = {}
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
        key = _identity(data)
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
    locked = Customer.objects.select_for_update().filter(pk__any=ids).order_by("pk").in_bulk()
    resolved = {key: (customer, True) for key, customer in created.items()}
    for key, customer in matched.items():
        current = locked[customer.pk]
        _customer_update(customer=current, data=wanted[key], source=source, at=at)
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
            **_profile_values(data),
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
        activities.append(_created_activity(customer=customer, source=source, at=at))
        granted = fresh[key].marketing_consent
        if granted is not None:
            record, activity = _consent_rows(
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
            raise _prefixed(error, f"customers[{index}]") from error
    with transaction.atomic():
        resolved = _customers_resolve(merchant=merchant, people=customers, source=source, at=now())
    return [resolved[_identity(data)] for data in customers]


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
        raise _prefixed(problems[index], f"orders[{index}]")
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
                    customer = people[_identity(data.customer)][0]
                    rows[key] = (_order_row(merchant=merchant, customer=customer, data=data), data)
            created = [order for order, _data in rows.values()]
            rows_insert(Order, created)
            rows_insert(
                OrderLine,
                [
                    line
                    for order, data in rows.values()
                    for line in _line_rows(order=order, data=data)
                ],
            )
            rows_insert(Activity, [_placed_activity(order=order) for order in created])
            customer_stats_refresh(customer_ids={order.customer_id for order in created})
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
    occurred_at = occurred_at or now()
    with transaction.atomic():
        person, _created = customer_upsert(
            merchant=merchant, data=customer, source=source, at=occurred_at
        )
        return Activity.objects.create(
            merchant=merchant,
            customer=person,
            kind=Activity.Kind.EVENT,
            occurred_at=occurred_at,
            data={"key": key, "source": source, "data": data or {}},
        )


def order_cancel(*, merchant: Merchant, source: str, external_id: str) -> Order | None:
    """Marks an order cancelled (it stops counting in the customer's stats); None when the
    order was never received."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .filter(merchant=merchant, source=source, external_id=external_id)
            .first()
        )
        if order is None or order.status == Order.Status.CANCELLED:
            return order
        order.status = Order.Status.CANCELLED
        order.save(update_fields=["status"])
        Activity.objects.create(
            merchant=merchant,
            customer_id=order.customer_id,
            kind=Activity.Kind.ORDER_CANCELLED,
            data={"order_id": order.pk, "external_id": order.external_id},
        )
        customer_stats_refresh(customer_ids=[order.customer_id])
    return order
