"""Email to customers (docs/business-rules.md, messages): a merchant's template rendered
for one customer in her language, and the rules on who may get marketing mail now
(consent, suppression, the frequency cap, quiet hours). Sending is services.sending."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.template.defaultfilters import linebreaks_filter
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    Flow,
    MailPreference,
    Message,
    MessageTemplate,
    SendingSettings,
    Suppression,
)
from customers.mail import customer_language, merge_fields_offered
from customers.models import Customer
from loyalty.models import PointsAccount
from loyalty.services.tiers import tier_warnings_void
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
UNSUBSCRIBE_SALT = "regulars.campaigns.unsubscribe"

SKIP_REASONS = {
    "no_address": _("No email address"),
    "no_consent": _("No marketing consent"),
    "suppressed": _("Address suppressed"),
    "capped": _("Frequency cap"),
    "fewer_emails": _("She asked for fewer emails"),
    "not_eligible": _("No longer matches the flow's conditions"),
    "flow_off": _("The flow was turned off"),
    "ordered_since": _("She ordered again before it was sent"),
    "kept_tier": _("She kept her tier before it was sent"),
    "erased": _("Customer erased"),
}


def sending_settings(*, merchant: Merchant) -> SendingSettings:
    found = SendingSettings.objects.filter(merchant=merchant).first()
    return found or SendingSettings(merchant=merchant)


# --- Rendering ---------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _compiled(source: str):
    """A merchant's text compiled once per process, as Django's cached loader does for
    template files: a send renders the same few texts thousands of times."""
    return _ENGINE.from_string(source)


def template_check(source: str, field: str) -> None:
    """A template that won't render names the field and the fault."""
    try:
        _compiled(source)
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
    for name, offered in merge_fields_offered().items():
        if name in names:
            values[name] = offered.value(customer, data)
    return {name: values.get(name, "") for name in merge_field_labels()}


def merge_field_labels() -> dict:
    """Every merge field a template may name, ours and those other apps offer."""
    return {**MERGE_FIELDS, **{n: f.label for n, f in merge_fields_offered().items()}}


def names_in(template: MessageTemplate) -> set[str]:
    """The merge fields named in any language of the template."""
    sources = [
        getattr(template, f"{field}_{code}") or ""
        for field in ("subject", "body")
        for code, _name in settings.LANGUAGES
    ]
    return _names(" ".join(sources))


@lru_cache(maxsize=512)
def _names(text: str) -> frozenset[str]:
    return frozenset(_NAMED.findall(text))


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
        subject = " ".join(_compiled(template.subject).render(plain).split())
        text_body = _compiled(template.body).render(plain)
        html_body = _compiled(template.body).render(Context(fields))
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


class Known:
    """What the rules read about the customers of a chunk of messages, each fact in one
    query for the whole chunk: the shops' settings, suppressed addresses, the marketing
    mail each customer already got within the longest window that matters, who asked for
    fewer emails, tiers where a flow asks, and tier-down warnings gone stale."""

    def __init__(self, messages: list[Message], customers: dict[int, Customer], at) -> None:
        merchants = {m.merchant_id for m in messages}
        self.settings = {s.merchant_id: s for s in SendingSettings.objects.filter(
            merchant_id__in=merchants)}  # fmt: skip
        marketing = {m.customer_id for m in messages if m.kind == MessageTemplate.Kind.MARKETING}
        emails = {customers[pk].email.lower() for pk in marketing if customers[pk].email}
        self.suppressions = {
            (row.merchant_id, row.address): row
            for row in Suppression.objects.filter(merchant_id__in=merchants, address__in=emails)
        } if emails else {}  # fmt: skip
        self.preferences = dict(
            MailPreference.objects.filter(customer_id__in=marketing)
            .values_list("customer_id", "every_days")
        ) if marketing else {}  # fmt: skip
        days = [s.cap_days for s in self.settings.values()] + [SendingSettings().cap_days]
        longest = timedelta(days=max(days + list(self.preferences.values())))
        self.sent: dict[int, list[datetime]] = defaultdict(list)
        if marketing:
            earlier = (
                Message.objects.filter(customer_id__in=marketing, sent_at__gt=at - longest,
                                       kind=MessageTemplate.Kind.MARKETING)
                .exclude(state=Message.State.FAILED)
                .exclude(pk__in=[m.pk for m in messages])
                .values_list("customer_id", "sent_at")
            )  # fmt: skip
            for customer_id, sent_at in earlier:
                self.sent[customer_id].append(sent_at)
        asking = [m.customer_id for m in messages if m.flow_id and m.flow.tiers.all()]
        self.tiers = dict(
            PointsAccount.objects.filter(customer_id__in=asking)
            .values_list("customer_id", "tier_id")
        ) if asking else {}  # fmt: skip
        self.void_warnings = tier_warnings_void(warnings=[
            (m.customer_id, m.data) for m in messages
            if m.flow_id and m.flow.trigger == Flow.Trigger.TIER_DOWN
        ], at=at)  # fmt: skip

    def sending(self, merchant: Merchant) -> SendingSettings:
        return self.settings.get(merchant.pk) or SendingSettings(merchant=merchant)

    def suppressed(self, customer: Customer) -> bool:
        """Whether her address is on the list. An unsubscribe stops counting once she
        gives consent again later (a checkbox at checkout); bounces and complaints stay."""
        row = self.suppressions.get((customer.merchant_id, customer.email.lower()))
        if row is None:
            return False
        given = customer.marketing_consent_at
        return not (
            row.reason == Suppression.Reason.UNSUBSCRIBED
            and customer.marketing_consent
            and given is not None
            and given > row.created_at
        )

    def refusal(self, message: Message, customer: Customer, at) -> str | None:
        """Why this message must not go out now, checked again at the moment of sending;
        None when it may. Transactional mail needs only an address (and its flow on)."""
        if customer.erased_at is not None:
            return "erased"
        if not customer.email:
            return "no_address"
        reason = self._flow_refusal(message, customer)
        if reason or message.kind != MessageTemplate.Kind.MARKETING:
            return reason
        if not customer.marketing_consent:
            return "no_consent"
        if self.suppressed(customer):
            return "suppressed"
        sending = self.sending(customer.merchant)
        sent = self.sent[customer.pk]
        window = at - timedelta(days=sending.cap_days)
        if sending.cap_messages and sum(t > window for t in sent) >= sending.cap_messages:
            return "capped"
        every = self.preferences.get(customer.pk)
        if every and any(t > at - timedelta(days=every) for t in sent):
            return "fewer_emails"
        return None

    def _flow_refusal(self, message: Message, customer: Customer) -> str | None:
        if message.campaign_id:
            return _campaign_refusal(message, customer)
        flow = message.flow
        if flow is None:
            return None
        if not flow.enabled:
            return "flow_off"
        if flow.trigger == Flow.Trigger.SECOND_ORDER and customer.orders_count > 1:
            return "ordered_since"
        if flow.trigger == Flow.Trigger.TIER_DOWN and customer.pk in self.void_warnings:
            return "kept_tier"
        if flow.segments and customer.segment not in flow.segments:
            return "not_eligible"
        personas = {p.pk for p in flow.personas.all()}
        if personas and customer.persona_id not in personas:
            return "not_eligible"
        tiers = {t.pk for t in flow.tiers.all()}
        if tiers and self.tiers.get(customer.pk) not in tiers:
            return "not_eligible"
        return None

    def took(self, customer_id: int, at) -> None:
        """A marketing message to her was taken for sending: the cap counts it at once."""
        self.sent[customer_id].append(at)


def _campaign_refusal(message: Message, customer: Customer) -> str | None:
    """A campaign's step goes only while she is still gone: an order since she entered
    ends her run (the holdout's comparison counts that order for both groups alike)."""
    entered = message.data.get("entered_at")
    last = customer.last_order_at
    if entered and last is not None and last > datetime.fromisoformat(entered):
        return "ordered_since"
    return None


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
