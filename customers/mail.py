"""The one low-level way to email a customer (docs/architecture.md): rendered from a template in the
customer's language, sent in the merchant's name with their reply-to address, and logged on
the customer's timeline. Transactional mail calls it directly; campaigns build on it."""

from __future__ import annotations

from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation

from customers.models import Activity, Customer
from merchants.content import content_override
from merchants.models import Merchant

LANGUAGE_CODES = {code for code, _name in settings.LANGUAGES}


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
    sender = formataddr((merchant.name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=sender,
        to=[address],
        reply_to=[merchant.reply_to_email] if merchant.reply_to_email else None,
        headers=headers,
    )
    message.send()
    return subject
