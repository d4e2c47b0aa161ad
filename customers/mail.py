"""The one low-level way to email a customer (DESIGN 3): rendered from a template in the
customer's language, sent in the merchant's name with their reply-to address, and logged on
the customer's timeline. Transactional mail calls it directly; campaigns build on it."""

from __future__ import annotations

from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation

from customers.models import Activity, Customer

LANGUAGE_CODES = {code for code, _name in settings.LANGUAGES}


def customer_language(customer: Customer) -> str:
    """The customer's own language if we speak it, else the merchant's default."""
    if customer.language in LANGUAGE_CODES:
        return customer.language
    return customer.merchant.default_language


def customer_email_send(*, customer: Customer, template: str, context: dict) -> bool:
    """Sends `<template>_subject.txt` and `<template>.txt`. False (and nothing sent) when
    the customer has no address or was erased."""
    if not customer.email or customer.erased_at is not None:
        return False
    merchant = customer.merchant
    context = {"customer": customer, "merchant": merchant, **context}
    with translation.override(customer_language(customer)):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        body = render_to_string(f"{template}.txt", context)
    sender = formataddr((merchant.name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=sender,
        to=[customer.email],
        reply_to=[merchant.reply_to_email] if merchant.reply_to_email else None,
    )
    message.send()
    Activity.objects.create(
        merchant=merchant,
        customer=customer,
        kind=Activity.Kind.EMAIL_SENT,
        data={"template": template, "subject": subject},
    )
    return True
