"""Tickets in: from the rewards page, the API, reviews, email and logged calls, and the
customer's later messages on them (docs/business-rules.md §8). The same review or email sent again
changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from customers.models import Activity, Customer
from customers.selectors import customer_get_by_email
from customers.services.data import text_problem
from feedback.models import (
    Channel,
    Cycle,
    Feedback,
    Kind,
    Message,
    ReviewState,
    State,
)
from feedback.services.routing import feedback_route
from feedback.services.sla import sla_due_set
from feedback.services.thread import (
    Upload,
    agent_value,
    attachments_store,
    event_add,
    ticket_locked,
    timeline_add,
    uploads_check,
)
from feedback.services.tickets import state_move
from feedback.states import By
from merchants.models import Merchant, StaffMember, normalise_email

SUBJECT_LENGTH = 200


# --- Intake ----------------------------------------------------------------------------


def feedback_submit(
    *,
    merchant: Merchant,
    channel: str,
    kind: str,
    subject: str = "",
    body: str = "",
    customer: Customer | None = None,
    sender_email: str = "",
    sender_name: str = "",
    rating: int | None = None,
    product_sku: str = "",
    product_name: str = "",
    external_id: str = "",
    language: str = "",
    uploads: Sequence[Upload] = (),
    email_message_id: str = "",
    logged_by: StaffMember | None = None,
    follows: Feedback | None = None,
    at: datetime | None = None,
) -> Feedback:
    """A new ticket from any door: routed, its SLA clock started, the customer's words as
    its first message. The same review (`external_id`) or email (`email_message_id`) sent
    again returns the ticket it made the first time and writes nothing."""
    at = at or now()
    subject = " ".join(subject.split())[:SUBJECT_LENGTH]
    body = body.strip()
    sender_email = normalise_email(sender_email) if sender_email else ""
    errors: dict[str, str] = {}
    if channel not in Channel.values:
        errors["channel"] = _("Choose one of: %(choices)s.") % {
            "choices": ", ".join(Channel.values)
        }
    if kind not in Kind.values:
        errors["kind"] = _("Choose one of: %(choices)s.") % {"choices": ", ".join(Kind.values)}
    if rating is not None and not 1 <= rating <= 5:
        errors["rating"] = _("A rating is a whole number from 1 to 5.")
    if kind == Kind.REVIEW and rating is None:
        errors["rating"] = _("A review needs a rating from 1 to 5.")
    if not body and rating is None:
        errors["body"] = _("Write a message.")
    if customer is None and not sender_email and not sender_name:
        errors["customer"] = _("Say who wrote in: a customer, an email address or a name.")
    if customer is not None and customer.merchant_id != merchant.pk:
        errors["customer"] = _("No such customer.")
    # What no column can hold (a NUL character) is refused naming the field, not stored.
    texts = {"subject": subject, "body": body, "sender_name": sender_name,
             "product_sku": product_sku, "product_name": product_name,
             "external_id": external_id, "language": language,
             "email_message_id": email_message_id}  # fmt: skip
    for name, value in texts.items():
        if problem := text_problem(value):
            errors.setdefault(name, problem)
    if errors:
        raise ValidationError(errors)
    uploads_check(uploads)
    if not subject:
        subject = (" ".join(body.split())[:60] or str(Kind(kind).label))[:SUBJECT_LENGTH]
    existing = _already_received(merchant, channel, external_id, email_message_id)
    if existing is not None:
        return existing
    if customer is None and sender_email:
        customer = customer_get_by_email(merchant=merchant, email=sender_email)
    try:
        with transaction.atomic():
            return _ticket_create(
                merchant=merchant, channel=channel, kind=kind, subject=subject, body=body,
                customer=customer, sender_email=sender_email, sender_name=sender_name[:120],
                rating=rating, product_sku=product_sku[:100], product_name=product_name[:200],
                external_id=external_id[:100], language=language[:8], uploads=uploads,
                email_message_id=email_message_id, logged_by=logged_by, follows=follows, at=at,
            )  # fmt: skip
    except IntegrityError:
        # The same review or email arrived twice at the same moment: the first one stands.
        existing = _already_received(merchant, channel, external_id, email_message_id)
        if existing is None:
            raise
        return existing


def _already_received(merchant, channel: str, external_id: str, email_message_id: str):
    """The ticket this review (by the shop's id) or email (by its Message-ID) made before."""
    if external_id:
        found = Feedback.objects.filter(
            merchant=merchant, channel=channel, external_id=external_id
        ).first()
        if found is not None:
            return found
    if email_message_id:
        message = (
            Message.objects.filter(merchant=merchant, email_message_id=email_message_id)
            .select_related("feedback")
            .first()
        )
        if message is not None:
            return message.feedback
    return None


def _ticket_create(*, merchant, channel, kind, subject, body, customer, sender_email,
                   sender_name, rating, product_sku, product_name, external_id, language,
                   uploads, email_message_id, logged_by, follows, at) -> Feedback:  # fmt: skip
    feedback = Feedback(
        merchant=merchant,
        customer=customer,
        sender_email=sender_email or (customer.email if customer else ""),
        sender_name=sender_name,
        channel=channel,
        kind=kind,
        rating=rating,
        subject=subject,
        body=body,
        language=language or (customer.language if customer else "") or "",
        product_sku=product_sku,
        product_name=product_name,
        review_state=ReviewState.PENDING if kind == Kind.REVIEW else "",
        external_id=external_id,
        follows=follows,
        created_at=at,
        updated_at=at,
    )
    feedback_route(feedback=feedback)
    sla_due_set(feedback=feedback, at=at, first_response=True)
    feedback.save()
    Cycle.objects.create(merchant=merchant, feedback=feedback, number=1, started_at=at)
    message = Message.objects.create(
        merchant=merchant,
        feedback=feedback,
        kind=Message.Kind.CUSTOMER,
        body=body or _("Rated %(rating)d of 5.") % {"rating": rating},
        email_message_id=email_message_id[:250],
        author=logged_by.user if logged_by else None,
        created_at=at,
    )
    attachments_store(message=message, uploads=uploads)
    if logged_by is not None:
        event_add(feedback=feedback, at=at, author=logged_by.user, event="logged",
                  values={"agent": agent_value(logged_by)})  # fmt: skip
    if follows is not None:
        event_add(feedback=feedback, at=at, event="follow_up", values={"number": follows.pk})
        event_add(feedback=follows, at=at, event="continued", values={"number": feedback.pk})
    timeline_add(feedback=feedback, kind=Activity.Kind.FEEDBACK_RECEIVED, at=at,
              channel=channel, kind_of=kind)  # fmt: skip
    return feedback


def customer_reply(
    *,
    feedback: Feedback,
    body: str,
    uploads: Sequence[Upload] = (),
    email_message_id: str = "",
    channel: str | None = None,
    at: datetime | None = None,
) -> Feedback:
    """The customer writes again on a ticket. Pending goes back to open; resolved reopens
    (a new cycle); closed starts a new ticket that follows the old one; a merged ticket
    passes the message to the one it was merged into. Returns the ticket written on."""
    at = at or now()
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write a message.")})
    uploads_check(uploads)
    with transaction.atomic():
        feedback = ticket_locked(feedback)
        for _hop in range(10):
            if feedback.state != State.MERGED or feedback.merged_into_id is None:
                break
            feedback = ticket_locked(
                Feedback(pk=feedback.merged_into_id, merchant_id=feedback.merchant_id)
            )
        if feedback.state == State.CLOSED:
            return feedback_submit(
                merchant=feedback.merchant, channel=channel or feedback.channel,
                kind=feedback.kind if feedback.kind != Kind.REVIEW else Kind.QUESTION,
                subject=_("Re: %(subject)s") % {"subject": feedback.subject}, body=body,
                customer=feedback.customer, sender_email=feedback.sender_email,
                sender_name=feedback.sender_name, language=feedback.language, uploads=uploads,
                email_message_id=email_message_id, follows=feedback, at=at,
            )  # fmt: skip
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    merchant_id=feedback.merchant_id,
                    feedback=feedback,
                    kind=Message.Kind.CUSTOMER,
                    body=body,
                    email_message_id=email_message_id[:250],
                    created_at=at,
                )
        except IntegrityError:
            # This email was already received (a webhook replayed): nothing changes.
            return Message.objects.get(
                merchant_id=feedback.merchant_id, email_message_id=email_message_id
            ).feedback
        attachments_store(message=message, uploads=uploads)
        if feedback.state == State.PENDING or feedback.state == State.RESOLVED:
            state_move(feedback=feedback, to=State.OPEN, by=By.CUSTOMER, member=None, at=at)
        feedback.updated_at = at
        feedback.save()
        return feedback


# --- Inbound email ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundEmail:
    sender: str
    subject: str
    text: str
    message_id: str
    sender_name: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    uploads: tuple[Upload, ...] = ()


def email_receive(*, merchant: Merchant, email: InboundEmail, at=None) -> Feedback:
    """An email from the mail provider's webhook (or a mailbox reader). A reply threads onto
    the ticket its In-Reply-To (or References) points at; anything else is a new ticket.
    The same Message-ID received again changes nothing."""
    at = at or now()
    if not email.message_id.strip():
        raise ValidationError({"message_id": _("The email has no Message-ID.")})
    if not email.sender.strip():
        raise ValidationError({"from": _("The email has no sender.")})
    message_id = email.message_id.strip()[:250]
    seen = Message.objects.filter(merchant=merchant, email_message_id=message_id).first()
    if seen is not None:
        return seen.feedback
    wanted = [
        ref.strip() for ref in (email.in_reply_to, *reversed(email.references)) if ref.strip()
    ]
    if wanted:
        earlier = (
            Message.objects.filter(merchant=merchant, email_message_id__in=wanted)
            .select_related("feedback")
            .first()
        )
        if earlier is not None:
            return customer_reply(
                feedback=earlier.feedback, body=email.text, uploads=email.uploads,
                email_message_id=message_id, channel=Channel.EMAIL, at=at,
            )  # fmt: skip
    return feedback_submit(
        merchant=merchant, channel=Channel.EMAIL, kind=Kind.QUESTION, subject=email.subject,
        body=email.text, sender_email=email.sender, sender_name=email.sender_name,
        uploads=email.uploads, email_message_id=message_id, at=at,
    )  # fmt: skip
