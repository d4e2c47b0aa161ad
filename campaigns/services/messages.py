"""Email to customers (docs/business-rules.md, messages): a merchant's template rendered
for one customer in her language, the rules on who may get marketing mail (consent,
suppression, the frequency cap, quiet hours), and the send itself, through the one
low-level way to email a customer (customers.mail).

A message is a row from the moment it is due. Sending claims it under a lock on the
customer's row, so two workers (or two flows, or a flow and a manual send) can't both
pass the cap, and a message claimed twice is sent once.
"""

from __future__ import annotations

import logging
import re
import smtplib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Q
from django.template import Context, Engine, TemplateSyntaxError
from django.template.defaultfilters import linebreaks_filter
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format, number_format
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    Flow,
    MailPreference,
    Message,
    MessageTemplate,
    SendingSettings,
    Suppression,
)
from campaigns.services.codes import Facts, code_issue
from customers.mail import customer_language, mail_send
from customers.models import Activity, Customer
from merchants.content import content_override
from merchants.models import Merchant

log = logging.getLogger(__name__)

# What a template may name, with what it stands for (shown beside the editor).
MERGE_FIELDS = {
    "first_name": _("her first name"),
    "store_name": _("the shop's name"),
    "tier": _("her tier"),
    "balance": _("her points balance"),
    "points_expiring": _("points expiring next"),
    "expiring_on": _("when they expire"),
    "next_tier": _("the next tier"),
    "to_next_tier": _("what she still needs for it"),
    "code": _("an offer code issued on send"),
    "rewards_link": _("a link that signs her in to her rewards page"),
    "order_number": _("the order's number (order messages)"),
    "points": _("the points earned or expiring (points messages)"),
}
LOYALTY_FIELDS = {"tier", "balance", "points_expiring", "expiring_on", "next_tier", "to_next_tier"}
_NAMED = re.compile(r"{{\s*(\w+)")
# Merchant-written templates see only the strings above: no loaders (no include or
# extends of the product's own templates) and no tag libraries to load.
_ENGINE = Engine(loaders=[], libraries={}, debug=False)
REWARDS_LINK_MINUTES = 7 * 24 * 60
SENDING_LEASE = timedelta(minutes=10)
UNSUBSCRIBE_SALT = "regulars.campaigns.unsubscribe"

SKIP_REASONS = {
    "no_address": _("No email address"),
    "no_consent": _("No marketing consent"),
    "suppressed": _("Address suppressed"),
    "capped": _("Frequency cap"),
    "fewer_emails": _("She asked for fewer emails"),
    "not_eligible": _("No longer matches the flow's conditions"),
    "flow_off": _("The flow was turned off"),
    "erased": _("Customer erased"),
}


def sending_settings(*, merchant: Merchant) -> SendingSettings:
    found = SendingSettings.objects.filter(merchant=merchant).first()
    return found or SendingSettings(merchant=merchant)


# --- Rendering ---------------------------------------------------------------------------


def template_check(source: str, field: str) -> None:
    """A template that won't render names the field and the fault."""
    try:
        _ENGINE.from_string(source)
    except TemplateSyntaxError as error:
        raise ValidationError({field: _("This template has an error: %s") % error}) from None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    language: str
    # The merchant's body alone, as HTML (escaped values, paragraphs): the preview's.
    body_html: str = ""
    rtl: bool = False


def merge_fields(
    *, customer: Customer, names: set[str], data: dict, code: str = "", link: str = ""
) -> dict[str, str]:
    """The values of the merge fields the template names, as text in the active language.
    Loyalty's are read only when named."""
    values = {
        "first_name": customer.first_name,
        "store_name": customer.merchant.name,
        "code": code,
        "rewards_link": link,
        "order_number": str(data.get("external_id", "")),
        "points": number_format(data["points"]) if "points" in data else "",
    }
    if names & LOYALTY_FIELDS:
        from loyalty.selectors import rewards_page

        page = rewards_page(customer=customer)
        values |= {
            "tier": str(page.tier.name) if page.tier else "",
            "balance": number_format(page.available),
            "points_expiring": number_format(page.expiring_points) if page.expiring_points else "",
            "expiring_on": date_format(page.expiring_on) if page.expiring_on else "",
            "next_tier": str(page.next_tier.name) if page.next_tier else "",
            "to_next_tier": number_format(page.to_next_tier) if page.next_tier else "",
        }
    return {name: values.get(name, "") for name in MERGE_FIELDS}


def names_in(template: MessageTemplate) -> set[str]:
    """The merge fields named in any language of the template."""
    sources = [
        getattr(template, f"{field}_{code}") or ""
        for field in ("subject", "body")
        for code, _name in settings.LANGUAGES
    ]
    return set(_NAMED.findall(" ".join(sources)))


def message_render(
    *,
    template: MessageTemplate,
    customer: Customer,
    data: dict | None = None,
    code: str = "",
    link: str = "",
    unsubscribe_url: str = "",
) -> Rendered:
    """Subject, text and HTML of the template for this customer, in her language (the
    merchant's default where the template lacks it), right to left for Arabic and
    Persian. Values are escaped in the HTML: a name can't inject markup."""
    merchant = customer.merchant
    language = customer_language(customer)
    with translation.override(language), content_override(merchant):
        fields = merge_fields(customer=customer, names=names_in(template), data=data or {},
                              code=code, link=link)  # fmt: skip
        plain = Context(fields, autoescape=False)
        subject = " ".join(_ENGINE.from_string(template.subject).render(plain).split())
        text_body = _ENGINE.from_string(template.body).render(plain)
        html_body = _ENGINE.from_string(template.body).render(Context(fields))
        context = {
            "merchant": merchant,
            "subject": subject,
            "text_body": text_body,
            "html_body": linebreaks_filter(html_body),
            "unsubscribe_url": unsubscribe_url,
            "marketing": template.kind == MessageTemplate.Kind.MARKETING,
            "language": language,
            "rtl": translation.get_language_bidi(),
        }
        html = render_to_string("campaigns/email/message.html", context)
        text = render_to_string("campaigns/email/message.txt", context)
    return Rendered(subject=subject, text=text, html=html, language=language,
                    body_html=context["html_body"], rtl=context["rtl"])  # fmt: skip


# --- Who may get it ---------------------------------------------------------------------


def unsubscribe_token(message: Message) -> str:
    """The message's id, signed: the same link each time it is drawn, good for as long as
    she keeps the mail."""
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(message.pk))


def unsubscribe_url(message: Message) -> str:
    path = reverse("campaigns-portal:unsubscribe",
                   kwargs={"merchant_slug": message.merchant.slug,
                           "token": unsubscribe_token(message)})  # fmt: skip
    return settings.SITE_URL.rstrip("/") + path


def suppressed(*, customer: Customer) -> bool:
    """Whether her address is on the list. An unsubscribe stops counting once she gives
    consent again later (a checkbox at checkout); bounces and complaints stay."""
    row = Suppression.objects.filter(
        merchant_id=customer.merchant_id, address=customer.email.lower()
    ).first()
    if row is None:
        return False
    given = customer.marketing_consent_at
    return not (
        row.reason == Suppression.Reason.UNSUBSCRIBED
        and customer.marketing_consent
        and given is not None
        and given > row.created_at
    )


def _marketing_refusal(message: Message, customer: Customer, sending: SendingSettings, at):
    if not customer.marketing_consent:
        return "no_consent"
    if suppressed(customer=customer):
        return "suppressed"
    recent = (
        Message.objects.filter(
            customer=customer, kind=MessageTemplate.Kind.MARKETING, sent_at__isnull=False
        )
        .exclude(pk=message.pk)
        .exclude(state=Message.State.FAILED)
    )
    if (
        sending.cap_messages
        and recent.filter(sent_at__gt=at - timedelta(days=sending.cap_days)).count()
        >= sending.cap_messages
    ):
        return "capped"
    preference = MailPreference.objects.filter(customer=customer).first()
    if (
        preference
        and recent.filter(sent_at__gt=at - timedelta(days=preference.every_days)).exists()
    ):
        return "fewer_emails"
    return None


def _flow_refusal(message: Message, customer: Customer) -> str | None:
    flow = message.flow
    if flow is None:
        return None
    if not flow.enabled:
        return "flow_off"
    if flow.segments and customer.segment not in flow.segments:
        return "not_eligible"
    personas = {p.pk for p in flow.personas.all()}
    if personas and customer.persona_id not in personas:
        return "not_eligible"
    tiers = {t.pk for t in flow.tiers.all()}
    if tiers and Facts(customer).tier_id not in tiers:
        return "not_eligible"
    return None


def refusal(*, message: Message, customer: Customer, sending: SendingSettings, at) -> str | None:
    """Why this message must not go out now, re-checked at the moment of sending; None
    when it may. Transactional mail needs only an address."""
    if customer.erased_at is not None:
        return "erased"
    if not customer.email:
        return "no_address"
    reason = _flow_refusal(message, customer)
    if reason or message.kind != MessageTemplate.Kind.MARKETING:
        return reason
    return _marketing_refusal(message, customer, sending, at)


def quiet_until(*, customer: Customer, sending: SendingSettings, at: datetime) -> datetime | None:
    """The end of the quiet hours `at` falls in, in her time zone (else the merchant's),
    or None when it falls outside them. Quiet hours may span midnight (21:00-08:00)."""
    start, end = sending.quiet_from, sending.quiet_until
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(customer.timezone or customer.merchant.timezone)
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else clock >= start or clock < end
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return _local(day, end, zone)


def _local(day, clock: time, zone: ZoneInfo) -> datetime:
    """That wall-clock time on that day, in UTC; a time skipped by a DST jump is read as
    the moment after the jump."""
    moment = datetime.combine(day, clock, tzinfo=zone)
    return datetime.fromtimestamp(moment.timestamp(), tz=zone).astimezone(ZoneInfo("UTC"))


# --- Sending ----------------------------------------------------------------------------


class SendFailed(Exception):
    """The ESP or SMTP server refused for now: the message goes back to the queue."""


TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError,
             TimeoutError, smtplib.SMTPDataError, smtplib.SMTPHeloError)  # fmt: skip


def _claim(message_id: int, at: datetime):
    """Takes the message for sending under its customer's lock, or answers why not. The
    lock makes the cap a fact: whoever holds it counts every marketing message already
    taken for her."""
    message = (
        Message.objects.select_related("merchant", "customer", "template", "flow")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        return None, None
    customer = (
        Customer.objects.select_for_update(of=("self",))
        .select_related("merchant")
        .get(pk=message.customer_id)
    )
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("merchant", "template", "flow")
        .filter(pk=message_id)
        .filter(
            Q(state=Message.State.QUEUED) | Q(state=Message.State.SENDING, claimed_until__lt=at)
        )
        .first()
    )
    if message is None or message.send_after > at:
        return None, None
    sending = sending_settings(merchant=message.merchant)
    reason = refusal(message=message, customer=customer, sending=sending, at=at)
    if reason:
        Message.objects.filter(pk=message.pk).update(
            state=Message.State.SKIPPED, skip_reason=reason, claimed_until=None
        )
        return None, reason
    if message.kind == MessageTemplate.Kind.MARKETING:
        later = quiet_until(customer=customer, sending=sending, at=at)
        if later is not None:
            Message.objects.filter(pk=message.pk).update(send_after=later, claimed_until=None)
            return None, "quiet_hours"
    if message.flow_id and message.flow.offer_id and not message.code:
        from campaigns.selectors import offers_for

        # Only an offer she may use now: running, in its limits, for her.
        for offer in offers_for(customer=customer):
            if offer.promotion.pk == message.flow.offer_id:
                message.code = (
                    offer.code or code_issue(promotion=offer.promotion, customer=customer).code
                )
    Message.objects.filter(pk=message.pk).update(
        state=Message.State.SENDING, sent_at=at, claimed_until=at + SENDING_LEASE,
        attempts=message.attempts + 1, code=message.code,
    )  # fmt: skip
    return (message, customer, sending), None


def message_deliver(*, message_id: int, connection=None) -> str:
    """Sends one due message if it may go, and answers what happened: "sent", a skip
    reason, "quiet_hours" (put off to their end), or "" (not due, or someone else's).
    Safe to call twice: the second finds it taken. A transient failure puts it back in
    the queue and raises SendFailed."""
    at = now()
    with transaction.atomic():
        claimed, reason = _claim(message_id, at)
    if claimed is None:
        return reason or ""
    message, customer, sending = claimed
    link = ""
    if message.template and "rewards_link" in names_in(message.template):
        from customers.services.portal import magic_link_make

        link = magic_link_make(customer=customer, minutes=REWARDS_LINK_MINUTES)
    marketing = message.kind == MessageTemplate.Kind.MARKETING
    unsubscribe = unsubscribe_url(message) if marketing else ""
    rendered = message_render(template=message.template, customer=customer, data=message.data,
                              code=message.code, link=link,
                              unsubscribe_url=unsubscribe)  # fmt: skip
    headers = {}
    if marketing:
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    try:
        esp_id = mail_send(merchant=message.merchant, address=customer.email,
                           subject=rendered.subject, text=rendered.text, html=rendered.html,
                           headers=headers, from_name=sending.from_name,
                           from_email=sending.from_email, reply_to=sending.reply_to,
                           metadata={"regulars_message": str(message.pk)},
                           connection=connection)  # fmt: skip
    except TRANSIENT as error:
        Message.objects.filter(pk=message.pk, state=Message.State.SENDING).update(
            state=Message.State.QUEUED, sent_at=None, claimed_until=None,
            send_after=at + timedelta(minutes=2 ** min(message.attempts, 6)),
            failure=str(error)[:300],
        )  # fmt: skip
        raise SendFailed(str(error)) from error
    except Exception as error:  # the server refused this message for good
        log.warning("message %s refused: %s", message.pk, error)
        Message.objects.filter(pk=message.pk, state=Message.State.SENDING).update(
            state=Message.State.FAILED, failure=str(error)[:300], claimed_until=None
        )
        return "failed"
    Message.objects.filter(pk=message.pk, state=Message.State.SENDING).update(
        state=Message.State.SENT, esp_message_id=esp_id[:200], address=customer.email,
        language=rendered.language, subject=rendered.subject[:300], claimed_until=None,
    )  # fmt: skip
    Activity.objects.create(
        merchant_id=message.merchant_id, customer_id=customer.pk, kind=Activity.Kind.EMAIL_SENT,
        data={"message_id": message.pk, "subject": rendered.subject,
              "template": message.template.name if message.template else ""},
    )  # fmt: skip
    return "sent"


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


def messages_send(*, message_ids: list[int]) -> dict[str, int]:
    """Delivers each message over one open connection; answers how many ended how."""
    outcomes: dict[str, int] = {}
    with get_connection() as connection:
        for message_id in message_ids:
            try:
                outcome = message_deliver(message_id=message_id, connection=connection)
            except SendFailed:
                outcome = "requeued"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
