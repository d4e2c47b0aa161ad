"""Review requests (docs/business-rules.md, messages): a link in a message sent after an
order was delivered opens a page where the customer rates it and says why; her answer
arrives in the inbox as a review, once per order, and goes through the reviews' approval
like any other."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext as _

from customers.models import Customer, Order
from feedback.models import Channel, Feedback, Kind
from feedback.services.intake import feedback_submit
from merchants.models import Merchant

REVIEW_SALT = "regulars.feedback.review-request"
REVIEW_LINK_DAYS = 30


def review_link_make(customer: Customer, data: dict) -> str:
    """The review page's address for the order a message is about (its `order_id`), or ""
    when the message is about no order. Signed, good for 30 days."""
    order_id = data.get("order_id")
    if not order_id:
        return ""
    token = signing.dumps({"c": customer.pk, "o": int(order_id)}, salt=REVIEW_SALT, compress=True)
    path = reverse("feedback-portal:review",
                   kwargs={"merchant_slug": customer.merchant.slug, "token": token})  # fmt: skip
    return settings.SITE_URL.rstrip("/") + path


def review_request_open(*, merchant: Merchant, token: str) -> tuple[Customer, Order]:
    """The customer and order a review link names, or a ValidationError saying why not
    (not ours, too old, an order of someone else)."""
    try:
        signed = signing.loads(token, salt=REVIEW_SALT, max_age=REVIEW_LINK_DAYS * 86400)
    except signing.SignatureExpired:
        raise ValidationError(
            {"token": _("This link is too old: it worked for 30 days.")}
        ) from None
    except signing.BadSignature:
        raise ValidationError({"token": _("This link is not valid.")}) from None
    order = (
        Order.objects.select_related("customer")
        .filter(merchant=merchant, pk=signed.get("o"), customer_id=signed.get("c"))
        .first()
    )
    if order is None or order.customer.erased_at is not None:
        raise ValidationError({"token": _("This link is not valid.")})
    return order.customer, order


def review_answered(*, order: Order) -> Feedback | None:
    return Feedback.objects.filter(merchant_id=order.merchant_id,
                                   external_id=_external_id(order)).first()  # fmt: skip


def review_submit(*, merchant: Merchant, token: str, rating: int, body: str) -> Feedback:
    """Her review of the order, in the inbox; the same link answered again returns the
    first review and writes nothing."""
    customer, order = review_request_open(merchant=merchant, token=token)
    first_line = order.lines.order_by("pk").first()
    return feedback_submit(
        merchant=merchant, channel=Channel.REVIEW, kind=Kind.REVIEW, customer=customer,
        subject=_("Review of order %(number)s") % {"number": order.external_id},
        body=body, rating=rating, external_id=_external_id(order),
        product_sku=first_line.sku if first_line else "",
        product_name=first_line.name if first_line else "",
        language=customer.language,
    )  # fmt: skip


def _external_id(order: Order) -> str:
    return f"order-review:{order.pk}"
