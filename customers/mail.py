"""The one low-level way to email a customer (docs/architecture.md): rendered from a template in the
customer's language, sent in the merchant's name with their reply-to address, and logged on
the customer's timeline. Transactional mail calls it directly; campaigns build on it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formataddr, make_msgid, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends import console, filebased
from django.template.loader import render_to_string
from django.utils import translation

from customers.models import Activity, Customer
from merchants.content import content_override
from merchants.models import Merchant

LANGUAGE_CODES = {code for code, _name in settings.LANGUAGES}


@dataclass(frozen=True)
class MergeField:
    """A value an app offers the message templates campaigns/ sends, named in a template
    as {{ name }} (feedback's review link, say), computed for one customer and what the
    message is about (its trigger's data)."""

    label: str
    value: Callable[[Customer, dict], str]


_merge_fields: dict[str, MergeField] = {}


def merge_field_register(name: str, *, label, value: Callable[[Customer, dict], str]) -> None:
    """Called from an AppConfig.ready(): campaigns/ reads these without importing the app."""
    _merge_fields[name] = MergeField(label, value)


def merge_fields_offered() -> dict[str, MergeField]:
    return dict(_merge_fields)


class FileAndConsoleBackend(filebased.EmailBackend):
    """The embedded default: each message kept as a file under var/mail/ (one file per
    connection) and printed to the console."""

    def write_message(self, message) -> None:
        super().write_message(message)
        console.EmailBackend(stream=sys.stdout).write_message(message)


def customer_language(customer: Customer) -> str:
    """The customer's own language if we speak it, else the merchant's default."""
    if customer.language in LANGUAGE_CODES:
        return customer.language
    return customer.merchant.default_language


def customer_email_send(
    *, customer: Customer, template: str, context: dict, headers: dict[str, str] | None = None
) -> bool:
    """Sends `<template>_subject.txt` and `<template>.txt`. False (and nothing sent) when
    the customer has no address or was erased. `headers` (Message-ID, In-Reply-To) let a
    conversation thread in the customer's mail program."""
    if not customer.email or customer.erased_at is not None:
        return False
    subject = address_email_send(
        merchant=customer.merchant,
        address=customer.email,
        language=customer_language(customer),
        template=template,
        context={"customer": customer, **context},
        headers=headers,
    )
    Activity.objects.create(
        merchant=customer.merchant,
        customer=customer,
        kind=Activity.Kind.EMAIL_SENT,
        data={"template": template, "subject": subject},
    )
    return True


def address_email_send(
    *,
    merchant: Merchant,
    address: str,
    language: str,
    template: str,
    context: dict,
    headers: dict[str, str] | None = None,
) -> str:
    """The same mail to an address with no customer behind it (someone who wrote to the
    shop's support address): nothing on a timeline. Returns the subject sent."""
    context = {"merchant": merchant, **context}
    if language not in LANGUAGE_CODES:
        language = merchant.default_language
    with translation.override(language), content_override(merchant):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        body = render_to_string(f"{template}.txt", context)
    mail_send(merchant=merchant, address=address, subject=subject, text=body, headers=headers)
    return subject


def mail_send(*, connection=None, **fields) -> str:
    """Sends one rendered email in the merchant's name (mail_message) and returns its
    message id: the ESP's when the backend is Anymail's, else the Message-ID header (what
    a bounce or an ESP event names the message by)."""
    message = mail_message(**fields)
    message.connection = connection
    message.send()
    status = getattr(message, "anymail_status", None)
    return (status.message_id if status is not None else None) or message.extra_headers[
        "Message-ID"
    ]


def mail_message(
    *,
    merchant: Merchant,
    address: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: dict[str, str] | None = None,
    from_name: str = "",
    from_email: str = "",
    reply_to: str = "",
    metadata: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    """One email in the merchant's name, from the shop's sender address (or the
    deployment's), with its reply-to address and a Message-ID, ready to send."""
    sender = formataddr(
        (from_name or merchant.name, from_email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1])
    )
    headers = dict(headers or {})
    headers.setdefault("Message-ID", make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">")))
    reply = reply_to or merchant.reply_to_email
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=sender,
        to=[address],
        reply_to=[reply] if reply else None,
        headers=headers,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    if metadata:
        # Anymail hands it to the ESP, whose events carry it back; other backends ignore it.
        message.metadata = metadata
    return message
