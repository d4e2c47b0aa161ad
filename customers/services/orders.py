"""Orders one at a time: ingest, refunds and cancellations, each with the customer's stats
in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers import reactions
from customers.inserts import rows_insert
from customers.models import Activity, Customer, Order, OrderLine, Refund
from customers.services.data import (
    MOST_UNITS,
    Ingested,
    OrderData,
    RefundData,
    customer_check,
    moment_problem,
    money_problem,
    prefixed,
    problems_raise,
    text_problem,
)
from customers.services.profiles import customer_for_order, customer_stats_refresh
from merchants.models import Merchant

# Read once: TextChoices.values builds a new list on every call, three per order in a batch.
SOURCES = frozenset(Order.Source.values)
STATUSES = frozenset(Order.Status.values)


def order_validate(*, merchant: Merchant, data: OrderData) -> None:
    errors: dict[str, str] = {}
    if data.source not in SOURCES:
        errors["source"] = _("Unknown source.")
    if not data.external_id:
        errors["external_id"] = _("This field is required.")
    if data.currency.upper() != merchant.base_currency:
        errors["currency"] = _("Orders must be in the store's currency, %(currency)s.") % {
            "currency": merchant.base_currency
        }
    if data.status not in STATUSES:
        errors["status"] = _("Unknown order status.")
    for name in ("total", "subtotal", "discount", "shipping", "tax"):
        if getattr(data, name) < 0:
            errors[name] = _("Must not be negative.")
        elif problem := money_problem(getattr(data, name)):
            errors[name] = problem
    for name in ("external_id", "currency", "channel", "shipping_method", "discount_codes"):
        if problem := text_problem(getattr(data, name)):
            errors[name] = problem
    if problem := moment_problem(data.placed_at):
        errors["placed_at"] = problem
    for index, line in enumerate(data.lines):
        if line.quantity <= 0:
            errors[f"lines[{index}].quantity"] = _("Must be at least 1.")
        elif line.quantity > MOST_UNITS:
            errors[f"lines[{index}].quantity"] = _("Must be at most 100,000.")
        if line.price < 0:
            errors[f"lines[{index}].price"] = _("Must not be negative.")
        elif problem := money_problem(line.price):
            errors[f"lines[{index}].price"] = problem
        for name in ("sku", "name", "category"):
            if problem := text_problem(getattr(line, name)):
                errors[f"lines[{index}].{name}"] = problem
    if errors:
        raise ValidationError(errors)


def orders_check(*, merchant: Merchant, orders: Sequence[OrderData]) -> dict[int, ValidationError]:
    """The orders of a batch that can't be stored, by position, each error naming its fields."""
    problems = {}
    for index, data in enumerate(orders):
        try:
            order_validate(merchant=merchant, data=data)
            try:
                customer_check(data.customer)
            except ValidationError as error:
                raise prefixed(error, "customer") from error
        except ValidationError as error:
            problems[index] = error
    return problems


def order_row(*, merchant: Merchant, customer: Customer | None, data: OrderData) -> Order:
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


def line_rows(*, order: Order, data: OrderData) -> list[OrderLine]:
    """The lines of a stored order (its id is known)."""
    return [
        OrderLine(
            merchant_id=order.merchant_id,
            order_id=order.pk,
            sku=line.sku,
            name=line.name,
            category=line.category,
            quantity=line.quantity,
            price=line.price,
        )
        for line in data.lines
    ]


def placed_activity(*, order: Order) -> Activity:
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
    order_validate(merchant=merchant, data=data)
    try:
        customer_check(data.customer)
    except ValidationError as error:
        raise prefixed(error, "customer") from error
    # Resends are rare: the order's unique constraint finds them, at the cost of a rollback,
    # instead of a lookup before every order.
    attempts = 2
    while True:
        attempts -= 1
        try:
            return Ingested(order=_order_store(merchant=merchant, data=data), created=True)
        except IntegrityError:
            existing = order_get_by_source(
                merchant=merchant, source=data.source, external_id=data.external_id
            )
            if existing is not None:
                return Ingested(order=existing, created=False)
            if not attempts:
                raise
            # The customer was created by another request since the lookup: the next
            # attempt finds them.


def _order_store(*, merchant: Merchant, data: OrderData) -> Order:
    with transaction.atomic():
        order = order_row(merchant=merchant, customer=None, data=data)
        order.customer, timeline = customer_for_order(
            merchant=merchant, data=data.customer, source=data.source, at=now(), order=order
        )
        rows_insert(Order, [order])
        lines = line_rows(order=order, data=data)
        rows_insert(OrderLine, lines)
        new_customers = frozenset([order.customer_id] if timeline else [])
        timeline.append(placed_activity(order=order))
        # The customer's stats were counted in memory with this order: current. A new
        # customer comes with the timeline of their creation. What the reactions add to
        # the timeline (the points earned, a tier reached) goes in with it, at once.
        reactions.orders_stored(
            orders=[order],
            lines=lines,
            customers={order.customer_id: order.customer},
            new_customers=new_customers,
            timeline=timeline,
        )
        rows_insert(Activity, timeline)
    return order


def refund_record(*, merchant: Merchant, data: RefundData) -> tuple[Refund, bool]:
    """Records a refund against an order (once per source and external id), lowers what
    the customer spent, and marks the order refunded or partially refunded."""
    if data.amount <= 0:
        raise ValidationError({"amount": _("Must be more than zero.")})
    problems_raise({
        "amount": money_problem(data.amount),
        "refunded_at": moment_problem(data.refunded_at),
        **{name: text_problem(getattr(data, name))
           for name in ("external_id", "order_external_id", "reason")},
    })  # fmt: skip
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
        reactions.refund_recorded(refund=refund)
    return refund, True


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
        reactions.order_cancelled(order=order)
    return order


def order_fulfilment_record(
    *,
    merchant: Merchant,
    source: str,
    external_id: str,
    delivered: bool,
    at: datetime | None = None,
    tracking: dict | None = None,
) -> Activity | None:
    """The shop shipped an order, or its carrier delivered it: one timeline entry per order
    and step, however often the shop reports it (a fulfilment is updated many times).
    None when the order was never received, or the step was recorded before."""
    kind = Activity.Kind.ORDER_DELIVERED if delivered else Activity.Kind.ORDER_SHIPPED
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .filter(merchant=merchant, source=source, external_id=external_id)
            .first()
        )
        if order is None:
            return None
        seen = Activity.objects.filter(
            customer_id=order.customer_id, kind=kind, data__order_id=order.pk
        ).exists()
        if seen:
            return None
        data = {"order_id": order.pk, "external_id": order.external_id}
        data |= {k: str(v)[:300] for k, v in (tracking or {}).items() if v}
        return Activity.objects.create(merchant=merchant, customer_id=order.customer_id,
                                       kind=kind, occurred_at=at or now(), data=data)  # fmt: skip
