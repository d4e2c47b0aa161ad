"""Everything that writes customers, orders, refunds and the timeline.

Every door (the API, shop webhooks, CSV imports) parses its input into the dataclasses
below and calls these services, so the rules are the same whichever way data arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, DecimalField, F, Max, Min, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.expressions import FractionalOnSQLite
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


def _customer_find(*, merchant: Merchant, data: CustomerData) -> Customer | None:
    customers = Customer.objects.filter(merchant=merchant, erased_at__isnull=True)
    if data.external_id:
        found = customers.filter(external_id=data.external_id).first()
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
    *, merchant: Merchant, data: CustomerData, source: str, at: datetime | None = None
) -> tuple[Customer, bool]:
    """Finds the customer by external id, then by email, and updates what was sent; or
    creates them. Safe when two requests create the same customer at once."""
    if not data.external_id and not data.email:
        raise ValidationError({"customer": _("A customer needs an external_id or an email.")})
    at = at or now()
    with transaction.atomic():
        customer = _customer_find(merchant=merchant, data=data)
        if customer is None:
            try:
                with transaction.atomic():
                    customer = _customer_create(merchant=merchant, data=data, source=source, at=at)
                    return customer, True
            except IntegrityError:
                # Another request created them a moment ago: update that one instead.
                customer = _customer_find(merchant=merchant, data=data)
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
    customer.full_clean(exclude=["merchant"], validate_unique=False, validate_constraints=False)
    customer.save()
    Activity.objects.create(
        merchant=merchant,
        customer=customer,
        kind=Activity.Kind.PROFILE_CREATED,
        occurred_at=at,
        data={"source": source},
    )
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
        customer.full_clean(exclude=["merchant"], validate_unique=False, validate_constraints=False)
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
    ConsentRecord.objects.create(
        merchant_id=customer.merchant_id,
        customer=customer,
        granted=granted,
        source=source[:60],
        recorded_at=at,
    )
    Activity.objects.create(
        merchant_id=customer.merchant_id,
        customer=customer,
        kind=Activity.Kind.CONSENT_CHANGED,
        occurred_at=at,
        data={"granted": granted, "source": source},
    )


def customer_stats_refresh(*, customer_ids: Iterable[int]) -> int:
    """Recomputes first/last order, orders count, total spent and AOV from the orders, in
    one UPDATE. Cancelled orders don't count; refunds come off the total spent."""
    counted = Order.objects.filter(customer=OuterRef("pk")).exclude(status=Order.Status.CANCELLED)
    per_customer = counted.order_by().values("customer")
    money = DecimalField(max_digits=12, decimal_places=2)
    net = Sum(F("total") - F("refunded_amount"), output_field=money)
    average = FractionalOnSQLite(net, output_field=money) / Count("id")
    return Customer.objects.filter(pk__in=list(customer_ids)).update(
        orders_count=Coalesce(Subquery(per_customer.annotate(n=Count("id")).values("n")), 0),
        total_spent=Coalesce(
            Subquery(per_customer.annotate(s=net).values("s")), Value(ZERO), output_field=money
        ),
        average_order_value=Coalesce(
            Subquery(per_customer.annotate(a=average).values("a"), output_field=money),
            Value(ZERO),
            output_field=money,
        ),
        first_order_at=Subquery(per_customer.annotate(m=Min("placed_at")).values("m")),
        last_order_at=Subquery(per_customer.annotate(m=Max("placed_at")).values("m")),
    )


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
    return Order.objects.filter(merchant=merchant, source=source, external_id=external_id).first()


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
    with transaction.atomic():
        customer, _created = customer_upsert(
            merchant=merchant, data=data.customer, source=data.source
        )
        # One order at a time per customer, so stats see every committed order.
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        existing = order_get_by_source(
            merchant=merchant, source=data.source, external_id=data.external_id
        )
        if existing is not None:
            return Ingested(order=existing, created=False)
        order = _order_row(merchant=merchant, customer=customer, data=data)
        order.save()
        OrderLine.objects.bulk_create(_line_rows(order=order, data=data))
        _placed_activity(order=order).save()
        customer_stats_refresh(customer_ids=[customer.pk])
    return Ingested(order=order, created=True)


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


def orders_ingest_many(*, merchant: Merchant, orders: Sequence[OrderData]) -> list[Ingested]:
    """All or nothing: one bad order rolls the batch back and is named by its position.
    Customers are locked in one global order (by their identity) so two batches that share
    customers cannot deadlock."""
    results: dict[int, Ingested] = {}
    with transaction.atomic():
        for index in sorted(range(len(orders)), key=lambda i: _identity(orders[i].customer)):
            try:
                results[index] = order_ingest(merchant=merchant, data=orders[index])
            except ValidationError as error:
                raise _prefixed(error, f"orders[{index}]") from error
    return [results[index] for index in range(len(orders))]


def customers_upsert_many(
    *, merchant: Merchant, customers: Sequence[CustomerData], source: str
) -> list[tuple[Customer, bool]]:
    results: dict[int, tuple[Customer, bool]] = {}
    with transaction.atomic():
        for index in sorted(range(len(customers)), key=lambda i: _identity(customers[i])):
            try:
                results[index] = customer_upsert(
                    merchant=merchant, data=customers[index], source=source
                )
            except ValidationError as error:
                raise _prefixed(error, f"customers[{index}]") from error
    return [results[index] for index in range(len(customers))]


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


def orders_load_bulk(*, merchant: Merchant, orders: Sequence[OrderData]) -> int:
    """Stores many orders in a few statements: the same checks and stats as order_ingest,
    for imports of history and demo data. Orders already stored are skipped; returns how
    many were created. All or nothing: a bad order raises and nothing is written."""
    for index, data in enumerate(orders):
        try:
            _order_validate(merchant=merchant, data=data)
        except ValidationError as error:
            raise _prefixed(error, f"orders[{index}]") from error
    with transaction.atomic():
        customers: dict[str, Customer] = {}
        for data in orders:
            key = _identity(data.customer)
            if key not in customers:
                customers[key], _created = customer_upsert(
                    merchant=merchant, data=data.customer, source=data.source
                )
        # Lock the customers in id order, as order_ingest does one at a time.
        ids = sorted({customer.pk for customer in customers.values()})
        list(
            Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk")
        )
        stored = set(
            Order.objects.filter(
                merchant=merchant, external_id__in=[o.external_id for o in orders]
            ).values_list("source", "external_id")
        )
        fresh = [o for o in orders if (o.source, o.external_id) not in stored]
        created = Order.objects.bulk_create(
            [
                _order_row(merchant=merchant, customer=customers[_identity(o.customer)], data=o)
                for o in fresh
            ],
            batch_size=500,
        )
        OrderLine.objects.bulk_create(
            [
                line
                for order, data in zip(created, fresh, strict=True)
                for line in _line_rows(order=order, data=data)
            ],
            batch_size=1000,
        )
        Activity.objects.bulk_create(
            [_placed_activity(order=order) for order in created], batch_size=1000
        )
        customer_stats_refresh(customer_ids={order.customer_id for order in created})
    return len(created)
