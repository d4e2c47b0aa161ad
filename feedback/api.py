"""/api/v1/ endpoints of feedback/: feedback and product reviews from the shop, and a
ticket's state and public conversation.

Doors only: each parses its body (schemas.py) and calls one service.

No `from __future__ import annotations` here (as in customers/ and loyalty/api.py): django-ninja
reads the views' annotations as objects to tell a body from query parameters.
"""

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.timezone import now
from ninja import Router, Status
from ninja.errors import HttpError

from customers import selectors as customer_selectors
from customers.schemas import ErrorOut
from feedback.models import Channel, Feedback, Kind, Message
from feedback.schemas import FeedbackDetailOut, FeedbackIn, FeedbackOut, ReviewIn, SenderIn
from feedback.services.intake import feedback_submit
from merchants.api import api_merchant, idempotent
from merchants.models import Merchant

router = Router(tags=["feedback"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


def _sender(merchant: Merchant, sender: SenderIn) -> dict:
    """The service's sender arguments: the customer by external_id (unknown is refused,
    naming it), else the email, which the service matches to a customer if it can."""
    found = {"sender_email": sender.email or "", "sender_name": sender.name}
    if sender.external_id:
        customer = customer_selectors.customer_get_by_external_id(
            merchant=merchant, external_id=sender.external_id
        )
        if customer is None:
            raise ValidationError({"customer.external_id": "No customer with that external_id."})
        found["customer"] = customer
    return found


def _submit(**kwargs) -> tuple[Feedback, bool]:
    """The ticket, and whether this call made it: a review sent again comes back as the
    ticket first made, whose creation time is not this call's. (The service names the
    fields it refuses as the body does: kind, rating, body, customer.)"""
    at = now()
    feedback = feedback_submit(at=at, **kwargs)
    return feedback, feedback.created_at == at


def _out(feedback: Feedback, created: bool) -> dict:
    return {
        "id": feedback.pk,
        "state": feedback.state,
        "kind": feedback.kind,
        "subject": feedback.subject,
        "created": created,
    }


@router.post(
    "/feedback", response={200: FeedbackOut, 201: FeedbackOut, **ERRORS}, summary="Send feedback"
)
@idempotent
def feedback_create(request: HttpRequest, payload: FeedbackIn):
    """A complaint, question, suggestion or praise from a customer (by `external_id`) or
    anyone with an email address. It is routed and answered in the feedback inbox."""
    merchant = api_merchant(request, "ingest")
    feedback, created = _submit(
        merchant=merchant,
        channel=Channel.API,
        kind=payload.kind,
        rating=payload.rating,
        subject=payload.subject,
        body=payload.body,
        language=payload.language,
        **_sender(merchant, payload.customer),
    )
    return Status(201 if created else 200, _out(feedback, created))


@router.post(
    "/reviews",
    response={200: FeedbackOut, 201: FeedbackOut, **ERRORS},
    summary="Send a product review",
)
@idempotent
def review_create(request: HttpRequest, payload: ReviewIn):
    """A review waits for the shop's approval (approved reviews can earn points). The same
    review `id` again answers 200 with the ticket first made, and creates nothing."""
    merchant = api_merchant(request, "ingest")
    feedback, created = _submit(
        merchant=merchant,
        channel=Channel.REVIEW,
        kind=Kind.REVIEW,
        rating=payload.rating,
        subject=payload.subject,
        body=payload.body,
        product_sku=payload.product_sku,
        product_name=payload.product_name,
        external_id=payload.id,
        language=payload.language,
        **_sender(merchant, payload.customer),
    )
    return Status(201 if created else 200, _out(feedback, created))


@router.get(
    "/feedback/{feedback_id}",
    response={200: FeedbackDetailOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="A ticket's state and its conversation",
)
def feedback_detail(request: HttpRequest, feedback_id: int):
    """The customer's messages and the shop's replies; internal notes are never here."""
    merchant = api_merchant(request, "read")
    feedback = (
        Feedback.objects.filter(merchant=merchant, pk=feedback_id)
        .select_related("customer")
        .first()
    )
    if feedback is None:
        raise HttpError(404, "No feedback with that id.")
    thread = Message.objects.filter(
        merchant=merchant,
        feedback=feedback,
        kind__in=(Message.Kind.CUSTOMER, Message.Kind.REPLY),
    ).order_by("created_at", "pk")
    return {
        "id": feedback.pk,
        "state": feedback.state,
        "kind": feedback.kind,
        "channel": feedback.channel,
        "subject": feedback.subject,
        "rating": feedback.rating,
        "customer_external_id": feedback.customer.external_id if feedback.customer else None,
        "sender_email": feedback.sender_email,
        "product_sku": feedback.product_sku,
        "review_state": feedback.review_state,
        "created_at": feedback.created_at,
        "updated_at": feedback.updated_at,
        "merged_into": feedback.merged_into_id,
        "follows": feedback.follows_id,
        "messages": [{"kind": m.kind, "body": m.body, "created_at": m.created_at} for m in thread],
    }
