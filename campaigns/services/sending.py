"""Sending (docs/business-rules.md, messages): a chunk of due messages claimed at once
under their customers' row locks (so two workers, two flows or a flow and a manual send
can't both pass the cap), the rules checked for the whole chunk in a few queries
(messages.Known), then each message rendered and handed to the mail server over one
connection, and marked sent the moment the server takes it.

A message is a row from the moment it is due; a key makes one trigger queue it once.
A worker that dies holding a chunk gives it back when its lease ends: each message in it
is sent once, but for the one on the wire at that moment, which goes again with the same
Message-ID (SMTP can't tell us whether the server kept it).
"""

from __future__ import annotations

import logging
import smtplib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import translation
from django.utils.timezone import now
from django.utils.translation import gettext as _

from campaigns.models import Flow, Message, MessageTemplate, SendingSettings
from campaigns.services.codes import code_issue
from campaigns.services.messages import (
    Known,
    message_render,
    names_in,
    quiet_until,
    sending_settings,
    unsubscribe_url,
)
from customers.mail import mail_send
from customers.models import Activity, Customer

log = logging.getLogger(__name__)
REWARDS_LINK_MINUTES = 7 * 24 * 60


class SendFailed(Exception):
    """The ESP or SMTP server refused for now: the message went back to the queue."""


TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError,
             TimeoutError, smtplib.SMTPDataError, smtplib.SMTPHeloError)  # fmt: skip


@dataclass
class Taken:
    message: Message
    customer: Customer
    sending: SendingSettings


def _claim(message_ids: list[int], at: datetime) -> tuple[list[Taken], dict[int, str]]:
    """Takes the chunk's due messages for sending, or answers why each may not go now
    (skipped with its reason, or put off to the end of quiet hours). Customers are
    locked in id order, then their messages: the order every claim takes them in."""
    due = Q(state=Message.State.QUEUED) | Q(state=Message.State.SENDING, claimed_until__lt=at)
    found = Message.objects.filter(pk__in=message_ids).filter(due, send_after__lte=at)
    customer_ids = sorted(set(found.values_list("customer_id", flat=True)))
    if not customer_ids:
        return [], {}
    customers = {
        c.pk: c
        for c in Customer.objects.select_for_update(of=("self",))
        .select_related("merchant")
        .filter(pk__in=customer_ids)
        .order_by("pk")
    }
    messages = list(
        found.select_for_update(of=("self",))
        .select_related("merchant", "template", "flow")
        .prefetch_related("flow__tiers", "flow__personas")
        .order_by("pk")
    )
    known = Known(messages, customers, at)
    outcomes: dict[int, str] = {}
    skipped: dict[str, list[int]] = defaultdict(list)
    later: dict[datetime, list[int]] = defaultdict(list)
    taken: list[Taken] = []
    for message in messages:
        customer = customers[message.customer_id]
        reason = known.refusal(message, customer, at)
        sending = known.sending(customer.merchant)
        if reason:
            skipped[reason].append(message.pk)
            outcomes[message.pk] = reason
            continue
        if message.kind == MessageTemplate.Kind.MARKETING:
            until = quiet_until(customer=customer, sending=sending, at=at)
            if until is not None:
                later[until].append(message.pk)
                outcomes[message.pk] = "quiet_hours"
                continue
            known.took(customer.pk, at)
        taken.append(Taken(message, customer, sending))
    for reason, ids in skipped.items():
        Message.objects.filter(pk__in=ids).update(
            state=Message.State.SKIPPED, skip_reason=reason, claimed_until=None
        )
    for until, ids in later.items():
        Message.objects.filter(pk__in=ids).update(send_after=until, claimed_until=None)
    lease = at + timedelta(seconds=settings.MESSAGE_LEASE_SECONDS)
    Message.objects.filter(pk__in=[t.message.pk for t in taken]).update(
        state=Message.State.SENDING, sent_at=at, claimed_until=lease, attempts=F("attempts") + 1
    )
    for item in taken:
        _offer_code(item)
    return taken, outcomes


def _offer_code(item: Taken) -> None:
    """A flow's or a campaign step's offer: her code of it, issued now, if she may use it
    now."""
    message, customer = item.message, item.customer
    offer_id = message.data.get("offer_id") or (message.flow.offer_id if message.flow_id else None)
    if not offer_id or message.code:
        return
    from campaigns.selectors import offers_for

    for offer in offers_for(customer=customer):
        if offer.promotion.pk == offer_id:
            message.code = offer.code or code_issue(promotion=offer.promotion,
                                                    customer=customer).code  # fmt: skip
            Message.objects.filter(pk=message.pk).update(code=message.code)


def message_id_header(message: Message, sending: SendingSettings) -> str:
    address = sending.from_email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return f"<regulars.{message.merchant_id}.{message.pk}@{address.rsplit('@', 1)[-1]}>"


def _send(item: Taken, connection) -> tuple[str, str, str]:
    """Renders and sends one taken message; (message id, subject, language)."""
    message, customer, sending = item.message, item.customer, item.sending
    link = ""
    if message.template and "rewards_link" in names_in(message.template):
        from customers.services.portal import magic_link_make

        link = magic_link_make(customer=customer, minutes=REWARDS_LINK_MINUTES)
    marketing = message.kind == MessageTemplate.Kind.MARKETING
    unsubscribe = unsubscribe_url(message) if marketing else ""
    rendered = message_render(template=message.template, customer=customer, data=message.data,
                              code=message.code, link=link,
                              unsubscribe_url=unsubscribe)  # fmt: skip
    # The same id however often it is sent: a message sent again after a worker died
    # can be told for the same one.
    headers = {"Message-ID": message_id_header(message, sending)}
    if marketing:
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    esp_id = mail_send(merchant=message.merchant, address=customer.email,
                       subject=rendered.subject, text=rendered.text, html=rendered.html,
                       headers=headers, from_name=sending.from_name,
                       from_email=sending.from_email, reply_to=sending.reply_to,
                       metadata={"regulars_message": str(message.pk)},
                       connection=connection)  # fmt: skip
    return esp_id, rendered.subject, rendered.language


def messages_send(*, message_ids: list[int], connection=None) -> dict[int, str]:
    """Sends the chunk's messages that may go now, over one connection, and answers what
    became of each: "sent", a skip reason, "quiet_hours", "requeued" (the server refused
    for now: back in the queue with a growing wait), "failed" (refused for good); a
    message not due, or taken by another worker, is left out. Safe to run twice."""
    at = now()
    with transaction.atomic():
        taken, outcomes = _claim(message_ids, at)
    if not taken:
        return outcomes
    timeline: list[Activity] = []
    with connection or get_connection() as server:
        for item in taken:
            message = item.message
            rows = Message.objects.filter(pk=message.pk, state=Message.State.SENDING)
            try:
                esp_id, subject, language = _send(item, server)
            except TRANSIENT as error:
                wait = timedelta(minutes=2 ** min(message.attempts, 6))
                rows.update(state=Message.State.QUEUED, sent_at=None, claimed_until=None,
                            send_after=at + wait, failure=str(error)[:300])  # fmt: skip
                outcomes[message.pk] = "requeued"
                server.close()  # opened again by the next send
                continue
            except Exception as error:  # the server refused this message for good
                log.warning("message %s refused: %s", message.pk, error)
                rows.update(state=Message.State.FAILED, failure=str(error)[:300],
                            claimed_until=None)  # fmt: skip
                outcomes[message.pk] = "failed"
                continue
            # Marked the moment the server took it: a worker that dies now resends nothing.
            rows.update(state=Message.State.SENT, esp_message_id=esp_id[:200],
                        address=item.customer.email, language=language,
                        subject=subject[:300], claimed_until=None)  # fmt: skip
            outcomes[message.pk] = "sent"
            timeline.append(Activity(
                merchant_id=message.merchant_id, customer_id=message.customer_id,
                kind=Activity.Kind.EMAIL_SENT, occurred_at=at,
                data={"message_id": message.pk, "subject": subject,
                      "template": message.template.name if message.template else ""},
            ))  # fmt: skip
    Activity.objects.bulk_create(timeline)
    return outcomes


def message_deliver(*, message_id: int, connection=None) -> str:
    """One message, as messages_send does a chunk: what became of it ("" when it was not
    due, or someone else's); a refusal for now raises SendFailed."""
    outcome = messages_send(message_ids=[message_id], connection=connection).get(message_id, "")
    if outcome == "requeued":
        raise SendFailed(f"message {message_id} went back to the queue")
    return outcome


def message_queue(
    *,
    customer: Customer,
    template: MessageTemplate,
    key: str,
    flow: Flow | None = None,
    data: dict | None = None,
    send_after: datetime | None = None,
) -> Message | None:
    """A message due at `send_after` (now by default), once per key: None when the key
    was queued before."""
    message, created = Message.objects.get_or_create(
        merchant_id=customer.merchant_id, key=key,
        defaults={"customer": customer, "template": template, "kind": template.kind,
                  "flow": flow, "data": data or {}, "send_after": send_after or now()},
    )  # fmt: skip
    return message if created else None


def test_send(*, template: MessageTemplate, customer: Customer, address: str) -> str:
    """The template as this customer would get it, to a staff member's address, marked as
    a test and recorded nowhere on her."""
    site = settings.SITE_URL
    rendered = message_render(template=template, customer=customer, code="TEST-CODE",
                              link=site, unsubscribe_url=site)  # fmt: skip
    sending = sending_settings(merchant=customer.merchant)
    with translation.override(rendered.language):
        subject = f"[{_('Test')}] {rendered.subject}"
    return mail_send(merchant=customer.merchant, address=address, subject=subject,
                     text=rendered.text, html=rendered.html, from_name=sending.from_name,
                     from_email=sending.from_email, reply_to=sending.reply_to)  # fmt: skip
