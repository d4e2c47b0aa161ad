"""Shop platforms' webhooks: signature checks, the real payload shapes of Shopify and
WooCommerce parsed into the services' dataclasses, and the once-per-delivery receiver.

Parsing names the exact field at fault (`line_items[2].price`). A signed payload that
can't be stored writes nothing of itself and is kept as a rejected delivery with that
field and the reason, shown on the shop's connection page; the platform is answered that
it arrived, so it does not resend it for days.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from customers.models import Order, WebhookDelivery
from customers.services import (
    CustomerData,
    OrderData,
    OrderLineData,
    RefundData,
    customer_upsert,
    order_cancel,
    order_fulfilment_record,
    order_get_by_source,
    order_ingest,
    refund_record,
)
from merchants.models import StoreConnection

logger = logging.getLogger(__name__)


class PayloadError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def signature_valid(*, secret: str, body: bytes, signature: str) -> bool:
    """Both platforms sign with base64(HMAC-SHA256(secret, raw body))."""
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature.strip())


# --- Reading payloads, naming the field at fault ----------------------------------------


def _field(obj: Any, key: str, path: str, *, required: bool = True) -> Any:
    if not isinstance(obj, dict):
        raise PayloadError(path or "body", "must be an object")
    value = obj.get(key)
    if value is None and required:
        raise PayloadError(f"{path}.{key}" if path else key, "is missing")
    return value


def _text(obj: dict, key: str, path: str, *, required: bool = False, limit: int = 255) -> str:
    value = _field(obj, key, path, required=required)
    text = "" if value is None else str(value).strip()[:limit]
    if required and not text:
        raise PayloadError(f"{path}.{key}" if path else key, "is missing")
    return text


def _money(obj: dict, key: str, path: str, *, required: bool = False) -> Decimal:
    value = _field(obj, key, path, required=required)
    if value in (None, ""):
        return Decimal("0.00")
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation as error:
        raise PayloadError(f"{path}.{key}" if path else key, "is not an amount") from error
    if not amount.is_finite():
        raise PayloadError(f"{path}.{key}" if path else key, "is not an amount")
    return amount


def _when(
    obj: dict, key: str, path: str, *, required: bool = True, assume_utc: bool = False
) -> datetime | None:
    value = _field(obj, key, path, required=required)
    if value is None:
        return None
    try:
        parsed = parse_datetime(str(value))
    except ValueError:  # well formed, but no such moment
        parsed = None
    if parsed is None:
        raise PayloadError(f"{path}.{key}" if path else key, "is not a date and time")
    if parsed.tzinfo is None:
        if not assume_utc:
            raise PayloadError(f"{path}.{key}" if path else key, "has no time zone")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _items(obj: dict, key: str, path: str) -> list:
    value = _field(obj, key, path, required=False) or []
    if not isinstance(value, list):
        raise PayloadError(f"{path}.{key}" if path else key, "must be a list")
    return value


def _quantity(obj: dict, path: str) -> int:
    value = _field(obj, "quantity", path)
    if not isinstance(value, int) or value < 1:
        raise PayloadError(f"{path}.quantity", "must be a whole number of at least 1")
    return value


# --- Shopify ----------------------------------------------------------------------------

SHOPIFY_CHANNELS = {"web": "web", "pos": "pos", "iphone": "mobile", "android": "mobile"}


def shopify_customer(
    customer: dict, path: str = "customer", *, fallback_email: str = ""
) -> CustomerData:
    address = _field(customer, "default_address", path, required=False) or {}
    consent = customer.get("email_marketing_consent") or {}
    subscribed = (
        consent.get("state") == "subscribed" if consent else customer.get("accepts_marketing")
    )
    return CustomerData(
        external_id=str(_field(customer, "id", path)),
        email=(customer.get("email") or fallback_email or None),
        first_name=customer.get("first_name") or None,
        last_name=customer.get("last_name") or None,
        phone=customer.get("phone") or None,
        city=address.get("city") or None,
        country=address.get("country_code") or None,
        marketing_consent=None if subscribed is None else bool(subscribed),
    )


def shopify_order(payload: dict) -> OrderData | None:
    """None for an order not paid yet (Shopify sends orders/create before payment)."""
    if payload.get("financial_status") in ("pending", "authorized", "voided", "expired"):
        return None
    customer = payload.get("customer")
    if customer:
        person = shopify_customer(customer, fallback_email=payload.get("email") or "")
    elif payload.get("email"):
        person = CustomerData(email=payload["email"])
    else:
        raise PayloadError("customer", "is missing, and the order has no email")
    shipping_set = (payload.get("total_shipping_price_set") or {}).get("shop_money") or {}
    shipping_lines = _items(payload, "shipping_lines", "")
    shipping = (
        _money(shipping_set, "amount", "total_shipping_price_set.shop_money")
        if shipping_set
        else sum(
            (
                _money(line, "price", f"shipping_lines[{i}]")
                for i, line in enumerate(shipping_lines)
            ),
            Decimal("0.00"),
        )
    )
    lines = tuple(
        OrderLineData(
            sku=_text(line, "sku", f"line_items[{i}]", limit=100),
            name=_text(line, "title", f"line_items[{i}]")
            or _text(line, "name", f"line_items[{i}]"),
            category=_text(line, "product_type", f"line_items[{i}]", limit=100),
            quantity=_quantity(line, f"line_items[{i}]"),
            price=_money(line, "price", f"line_items[{i}]", required=True),
        )
        for i, line in enumerate(_items(payload, "line_items", ""))
    )
    return OrderData(
        source=Order.Source.SHOPIFY,
        external_id=str(_field(payload, "id", "")),
        placed_at=_when(payload, "processed_at", "", required=False)
        or _when(payload, "created_at", ""),
        status=Order.Status.CANCELLED if payload.get("cancelled_at") else Order.Status.PAID,
        currency=_text(payload, "currency", "", required=True, limit=3),
        subtotal=_money(payload, "subtotal_price", ""),
        discount=_money(payload, "total_discounts", ""),
        shipping=shipping,
        tax=_money(payload, "total_tax", ""),
        total=_money(payload, "total_price", "", required=True),
        channel=SHOPIFY_CHANNELS.get(
            payload.get("source_name") or "", payload.get("source_name") or ""
        )[:30],
        shipping_method=_text(shipping_lines[0], "title", "shipping_lines[0]", limit=60)
        if shipping_lines
        else "",
        discount_codes=tuple(
            _text(code, "code", f"discount_codes[{i}]", required=True)
            for i, code in enumerate(_items(payload, "discount_codes", ""))
        ),
        customer=person,
        lines=lines,
    )


def shopify_refund(payload: dict) -> RefundData:
    """The amount is what the successful refund transactions gave back."""
    transactions = _items(payload, "transactions", "")
    amount = sum(
        (
            _money(t, "amount", f"transactions[{i}]", required=True)
            for i, t in enumerate(transactions)
            if t.get("kind") == "refund" and t.get("status") in ("success", None)
        ),
        Decimal("0.00"),
    )
    lines = [
        {
            "sku": ((line.get("line_item") or {}).get("sku") or "")[:100],
            "quantity": _quantity(line, f"refund_line_items[{i}]"),
            "amount": str(_money(line, "subtotal", f"refund_line_items[{i}]")),
        }
        for i, line in enumerate(_items(payload, "refund_line_items", ""))
    ]
    if amount <= 0:
        raise PayloadError("transactions", "hold no successful refund")
    return RefundData(
        source=Order.Source.SHOPIFY,
        external_id=str(_field(payload, "id", "")),
        order_external_id=str(_field(payload, "order_id", "")),
        amount=amount,
        refunded_at=_when(payload, "created_at", ""),
        reason=_text(payload, "note", ""),
        lines=lines,
    )


# --- WooCommerce ------------------------------------------------------------------------

WOO_PAID = {"processing", "completed"}
WOO_FULFILLED = {"completed", "delivered"}


def woo_customer(payload: dict, path: str = "") -> CustomerData:
    billing = _field(payload, "billing", path, required=False) or {}
    customer_id = payload.get("id")
    return CustomerData(
        external_id=str(customer_id) if customer_id else None,
        email=payload.get("email") or billing.get("email") or None,
        first_name=payload.get("first_name") or billing.get("first_name") or None,
        last_name=payload.get("last_name") or billing.get("last_name") or None,
        phone=billing.get("phone") or None,
        city=billing.get("city") or None,
        country=billing.get("country") or None,
    )


def woo_order(payload: dict) -> OrderData:
    billing = _field(payload, "billing", "")
    customer_id = payload.get("customer_id")
    person = CustomerData(
        # Guests have customer_id 0: they are known by their email alone.
        external_id=str(customer_id) if customer_id else None,
        email=_text(billing, "email", "billing", required=not customer_id) or None,
        first_name=billing.get("first_name") or None,
        last_name=billing.get("last_name") or None,
        phone=billing.get("phone") or None,
        city=billing.get("city") or None,
        country=billing.get("country") or None,
    )
    shipping_lines = _items(payload, "shipping_lines", "")
    lines = []
    for i, line in enumerate(_items(payload, "line_items", "")):
        path = f"line_items[{i}]"
        quantity = _quantity(line, path)
        # `price` is a number per unit after discounts; `subtotal` a string before them.
        unit = (
            _money(line, "subtotal", path) / quantity
            if line.get("subtotal")
            else _money(line, "price", path, required=True)
        )
        lines.append(
            OrderLineData(
                sku=_text(line, "sku", path, limit=100),
                name=_text(line, "name", path),
                quantity=quantity,
                price=unit.quantize(Decimal("0.01")),
            )
        )
    total = _money(payload, "total", "", required=True)
    discount = _money(payload, "discount_total", "")
    shipping = _money(payload, "shipping_total", "")
    tax = _money(payload, "total_tax", "")
    return OrderData(
        source=Order.Source.WOOCOMMERCE,
        external_id=str(_field(payload, "id", "")),
        placed_at=_when(payload, "date_created_gmt", "", assume_utc=True),
        status=Order.Status.CANCELLED
        if payload.get("status") == "cancelled"
        else Order.Status.PAID,
        currency=_text(payload, "currency", "", required=True, limit=3),
        subtotal=total - shipping - tax + discount,
        discount=discount,
        shipping=shipping,
        tax=tax,
        total=total,
        channel="pos" if payload.get("created_via") == "pos" else "web",
        shipping_method=_text(shipping_lines[0], "method_title", "shipping_lines[0]", limit=60)
        if shipping_lines
        else "",
        discount_codes=tuple(
            _text(c, "code", f"coupon_lines[{i}]", required=True)
            for i, c in enumerate(_items(payload, "coupon_lines", ""))
        ),
        customer=person,
        lines=tuple(lines),
    )


def woo_refunds(payload: dict) -> list[RefundData]:
    """WooCommerce lists an order's refunds inside the order (totals are negative)."""
    placed = _when(payload, "date_modified_gmt", "", required=False, assume_utc=True)
    return [
        RefundData(
            source=Order.Source.WOOCOMMERCE,
            external_id=str(_field(refund, "id", f"refunds[{i}]")),
            order_external_id=str(_field(payload, "id", "")),
            amount=abs(_money(refund, "total", f"refunds[{i}]", required=True)),
            refunded_at=placed or datetime.now(UTC),
            reason=_text(refund, "reason", f"refunds[{i}]"),
        )
        for i, refund in enumerate(_items(payload, "refunds", ""))
    ]


# --- Receiving ----------------------------------------------------------------------------


def _order_received(
    connection: StoreConnection, data: OrderData | None, refunds: list[RefundData]
) -> str:
    if data is None:
        return "waiting for payment"
    merchant = connection.merchant
    if data.status == Order.Status.CANCELLED:
        if order_cancel(merchant=merchant, source=data.source, external_id=data.external_id):
            return "cancelled"
        return "cancelled before it was received"
    # A shop sends an order again with each of its topics (paid, updated…): looked up first,
    # where order_ingest would find it only by a rolled-back insert.
    known = order_get_by_source(merchant=merchant, source=data.source, external_id=data.external_id)
    created = known is None and order_ingest(merchant=merchant, data=data).created
    for refund in refunds:
        refund_record(merchant=merchant, data=refund)
    return "order stored" if created else "order already stored"


def _shopify(connection: StoreConnection, topic: str, payload: dict) -> str:
    merchant = connection.merchant
    if topic in ("orders/create", "orders/paid", "orders/updated", "orders/cancelled"):
        return _order_received(connection, shopify_order(payload), [])
    if topic == "refunds/create":
        refund = shopify_refund(payload)
        if (
            order_get_by_source(
                merchant=merchant, source=refund.source, external_id=refund.order_external_id
            )
            is None
        ):
            raise NotYet("order_id", "names an order not received yet")
        _refund, created = refund_record(merchant=merchant, data=refund)
        return "refund stored" if created else "refund already stored"
    if topic in ("customers/create", "customers/update"):
        customer_upsert(
            merchant=merchant, data=shopify_customer(payload, path=""), source=Order.Source.SHOPIFY
        )
        return "customer stored"
    if topic in ("fulfillments/create", "fulfillments/update"):
        return _shopify_fulfilment(merchant, payload)
    return f"topic {topic} ignored"


# A fulfilment's shipment_status, as Shopify reports the carrier's scans.
SHOPIFY_DELIVERED = {"delivered"}


def _shopify_fulfilment(merchant, payload: dict) -> str:
    """A fulfilment (created: shipped; updated with the carrier's "delivered": delivered)."""
    order_id = str(_field(payload, "order_id", ""))
    if payload.get("status") in ("cancelled", "error", "failure"):
        return "fulfilment not shipped"
    delivered = payload.get("shipment_status") in SHOPIFY_DELIVERED
    tracking = {"carrier": payload.get("tracking_company"),
                "tracking_number": payload.get("tracking_number"),
                "tracking_url": payload.get("tracking_url")}  # fmt: skip
    at = _when(payload, "updated_at", "", required=False)
    if order_get_by_source(merchant=merchant, source=Order.Source.SHOPIFY,
                           external_id=order_id) is None:  # fmt: skip
        raise NotYet("order_id", "names an order not received yet")
    steps = [False, True] if delivered else [False]  # delivered implies shipped
    recorded = [
        order_fulfilment_record(merchant=merchant, source=Order.Source.SHOPIFY,
                                external_id=order_id, delivered=step, at=at, tracking=tracking)
        for step in steps
    ]  # fmt: skip
    if not any(recorded):
        return "fulfilment already recorded"
    return "order delivered" if recorded[-1] and delivered else "order shipped"


def _woocommerce(connection: StoreConnection, topic: str, payload: dict) -> str:
    if topic in ("order.created", "order.updated"):
        status = payload.get("status")
        if status not in WOO_PAID | WOO_FULFILLED | {"cancelled", "refunded"}:
            return "waiting for payment"
        outcome = _order_received(connection, woo_order(payload), woo_refunds(payload))
        if status in WOO_FULFILLED:
            # "completed" is WooCommerce's shipped; "delivered" comes from shipping plugins.
            for step in [False, True] if status == "delivered" else [False]:
                order_fulfilment_record(merchant=connection.merchant,
                                        source=Order.Source.WOOCOMMERCE,
                                        external_id=str(payload.get("id")), delivered=step,
                                        at=_when(payload, "date_modified_gmt", "",
                                                 required=False, assume_utc=True))  # fmt: skip
        return outcome
    if topic in ("customer.created", "customer.updated"):
        customer_upsert(
            merchant=connection.merchant,
            data=woo_customer(payload),
            source=Order.Source.WOOCOMMERCE,
        )
        return "customer stored"
    return f"topic {topic} ignored"


HANDLERS: dict[str, Callable[[StoreConnection, str, dict], str]] = {
    StoreConnection.Platform.SHOPIFY: _shopify,
    StoreConnection.Platform.WOOCOMMERCE: _woocommerce,
}


class NotYet(PayloadError):
    """The payload names something not received yet (a refund before its order): nothing is
    kept, and the platform is asked to send it again later (409)."""


class WebhookRejected(Exception):
    """A signed delivery whose payload can't be stored; recorded as a rejected delivery."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def _rejection(error: Exception) -> tuple[str, str]:
    if isinstance(error, PayloadError):
        return error.field, error.problem
    if isinstance(error, ValidationError):
        fields = error.message_dict if hasattr(error, "error_dict") else {"body": error.messages}
        field, messages = next(iter(fields.items()))
        return field, " ".join(messages)
    return "body", _("The payload holds a value the database can't store.")


def webhook_receive(
    *, connection: StoreConnection, delivery_id: str, topic: str, payload: dict
) -> str:
    """Handles one delivery once: a redelivery (same id) changes nothing. All or nothing:
    a payload that can't be stored writes nothing of itself, and is kept as a rejected
    delivery naming the field and the reason (WebhookRejected), for the shop to see; the
    same delivery again is then a duplicate, so the platform's retries end."""
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    delivery = WebhookDelivery.objects.create(
                        merchant_id=connection.merchant_id,
                        connection=connection,
                        delivery_id=delivery_id[:128],
                        topic=topic[:60],
                    )
            except IntegrityError:
                return "duplicate delivery"
            outcome = HANDLERS[connection.platform](connection, topic, payload)
            WebhookDelivery.objects.filter(pk=delivery.pk).update(outcome=outcome[:200])
        return outcome
    except NotYet:
        raise
    except (PayloadError, ValidationError, DataError) as error:
        if isinstance(error, DataError):
            logger.warning("Webhook %s on connection %s not storable: %s", delivery_id,
                           connection.pk, error)  # fmt: skip
        field, reason = _rejection(error)
        with transaction.atomic():
            WebhookDelivery.objects.get_or_create(
                connection=connection, delivery_id=delivery_id[:128],
                defaults={"merchant_id": connection.merchant_id, "topic": topic[:60],
                          "outcome": "rejected", "rejected_field": field[:120],
                          "rejected_reason": reason[:255]},
            )  # fmt: skip
        raise WebhookRejected(field, reason) from error
