"""What happens to a message after it is sent (docs/business-rules.md, messages): the
ESP's tracking events through django-anymail, each recorded once; the suppression list
they feed; and the customer's own unsubscribe, one click or "fewer emails" instead."""

from __future__ import annotations

import hashlib
import json
import logging
import re

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils.timezone import now

from campaigns.models import MailPreference, Message, MessageEvent, SendingSettings, Suppression
from campaigns.services.messages import UNSUBSCRIBE_SALT
from customers.models import Customer
from customers.services.profiles import consent_set

log = logging.getLogger(__name__)

# Anymail's normalised event types, as ours; a bounce is hard unless the ESP says the
# reason was passing (a full mailbox, a timeout, a block that may lift).
KINDS = {
    "delivered": MessageEvent.Kind.DELIVERED,
    "opened": MessageEvent.Kind.OPENED,
    "clicked": MessageEvent.Kind.CLICKED,
    "bounced": MessageEvent.Kind.BOUNCED,
    "complained": MessageEvent.Kind.COMPLAINED,
    "unsubscribed": MessageEvent.Kind.UNSUBSCRIBED,
    "rejected": MessageEvent.Kind.FAILED,
}
SOFT_REASONS = {"timed_out", "blocked", "other"}
# Fetches made by machines, not readers: Apple Mail Privacy Protection loads every image
# of every message through Apple's proxy with a bare browser string; Gmail, Yahoo and
# Outlook prefetch through their image proxies.
MACHINE_AGENTS = re.compile(r"GoogleImageProxy|YahooMailProxy|ggpht\.com|Outlook-iOS-Android|"
                            r"^Mozilla/5\.0$|bot|crawler|scanner", re.IGNORECASE)  # fmt: skip


def machine_open(event) -> bool:
    """Whether an open was fetched by a machine: the ESP's own verdict where it gives one
    (SendGrid's `sg_machine_open`, Mailgun's `client-info.bot`, Postmark's client name),
    else the user agent."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if raw.get("sg_machine_open"):
        return True
    info = (raw.get("event-data") or {}).get("client-info") or {}
    if info.get("bot"):
        return True
    client = str((raw.get("Client") or {}).get("Name", ""))
    if "Privacy" in client or "Proxy" in client:
        return True
    agent = (event.user_agent or "").strip()
    return bool(MACHINE_AGENTS.search(agent))


def _soft(event) -> bool:
    """A bounce that may pass: the ESP's reason says so (Mailgun's "old": retried until it
    gave up), or its own type does (Postmark's SoftBounce, SendGrid's "blocked")."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    return (
        event.reject_reason in SOFT_REASONS
        or raw.get("Type") == "SoftBounce"
        or raw.get("type") == "blocked"
    )


def _message_of(event) -> Message | None:
    metadata = event.metadata or {}
    found = Message.objects.select_related("merchant")
    if str(metadata.get("regulars_message", "")).isdigit():
        return found.filter(pk=int(metadata["regulars_message"])).first()
    if event.message_id:
        return found.filter(esp_message_id=event.message_id).first()
    return None


def _event_key(event) -> str:
    if event.event_id:
        return str(event.event_id)[:200]
    # An ESP without event ids (Postmark's opens and deliveries): a report sent again is
    # the same body; two opens in one second are not.
    raw = json.dumps(event.esp_event, sort_keys=True, default=str)
    return hashlib.sha256(f"{event.event_type}|{raw}".encode()).hexdigest()


def tracking_record(*, esp: str, event) -> str:
    """Records one ESP event and what follows from it. Answers what was done; the same
    event again does nothing ("seen")."""
    kind = KINDS.get(event.event_type)
    if kind is None:
        return "ignored"
    if kind == MessageEvent.Kind.BOUNCED and _soft(event):
        kind = MessageEvent.Kind.SOFT_BOUNCED
    message = _message_of(event)
    if message is None:
        log.info("%s event %s names no message we sent", esp, event.event_type)
        return "unknown message"
    at = event.timestamp or now()
    machine = kind == MessageEvent.Kind.OPENED and machine_open(event)
    try:
        with transaction.atomic():
            MessageEvent.objects.create(
                merchant_id=message.merchant_id, message=message, esp=esp[:40],
                event_key=_event_key(event), kind=kind, machine=machine,
                url=(event.click_url or "")[:2000], occurred_at=at,
            )  # fmt: skip
            _follow(message, kind, machine, at)
    except IntegrityError:
        return "seen"
    return kind


def _follow(message: Message, kind: str, machine: bool, at) -> None:
    rows = Message.objects.filter(pk=message.pk)
    Kind = MessageEvent.Kind
    if kind == Kind.DELIVERED:
        rows.filter(delivered_at=None).update(delivered_at=at)
        rows.filter(state=Message.State.SENT).update(state=Message.State.DELIVERED)
    elif kind == Kind.OPENED and not machine:
        rows.filter(opened_at=None).update(opened_at=at)
    elif kind == Kind.CLICKED:
        rows.filter(clicked_at=None).update(clicked_at=at)
        # A click is a read, whatever the pixel said.
        rows.filter(opened_at=None).update(opened_at=at)
    elif kind == Kind.BOUNCED:
        rows.update(state=Message.State.BOUNCED, bounced_at=at)
        suppress(message=message, reason=Suppression.Reason.HARD_BOUNCE)
    elif kind == Kind.SOFT_BOUNCED:
        rows.update(bounced_at=at)
        _soft_bounces_count(message)
    elif kind == Kind.COMPLAINED:
        rows.update(state=Message.State.COMPLAINED, complained_at=at)
        suppress(message=message, reason=Suppression.Reason.COMPLAINT)
    elif kind == Kind.UNSUBSCRIBED:
        unsubscribe(message=message, source="esp")
    elif kind == Kind.FAILED:
        rows.update(state=Message.State.FAILED)


def _soft_bounces_count(message: Message) -> None:
    """Soft bounces in a row (in the order they arrived), since the address last took a
    message, up to the limit."""
    sending = SendingSettings.objects.filter(merchant_id=message.merchant_id).first()
    limit = sending.soft_bounce_limit if sending else SendingSettings().soft_bounce_limit
    to_address = MessageEvent.objects.filter(
        merchant_id=message.merchant_id, message__address=message.address
    )
    last_delivered = (
        to_address.filter(kind=MessageEvent.Kind.DELIVERED).order_by("-pk")
        .values_list("pk", flat=True).first()
    )  # fmt: skip
    bounced = to_address.filter(kind=MessageEvent.Kind.SOFT_BOUNCED, pk__gt=last_delivered or 0)
    if bounced.count() >= limit:
        suppress(message=message, reason=Suppression.Reason.SOFT_BOUNCES)


def suppress(*, message: Message | None = None, merchant_id: int | None = None,
             address: str = "", reason: str) -> bool:  # fmt: skip
    """No more marketing mail to the address; True if it was not suppressed before."""
    merchant_id = merchant_id or message.merchant_id
    address = (address or message.address).strip().lower()
    if not address:
        return False
    _row, created = Suppression.objects.get_or_create(
        merchant_id=merchant_id, address=address,
        defaults={"reason": reason, "message": message},
    )  # fmt: skip
    return created


def suppression_lift(*, merchant_id: int, address: str) -> int:
    """Staff take an address off the list (it was added by mistake): marketing mail goes
    again only with the customer's consent."""
    deleted, _rows = Suppression.objects.filter(
        merchant_id=merchant_id, address=address.strip().lower()
    ).delete()
    return deleted


# --- The customer's own choice -------------------------------------------------------


def message_from_token(*, merchant_id: int, token: str) -> Message | None:
    try:
        pk = int(signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    return (
        Message.objects.select_related("merchant", "customer")
        .filter(merchant_id=merchant_id, pk=pk)
        .first()
    )


@transaction.atomic
def unsubscribe(*, message: Message, source: str = "unsubscribe_link") -> None:
    """No more marketing mail to her: consent withdrawn (on her timeline, with the
    source), the address suppressed, the message marked. Twice changes nothing more."""
    at = now()
    Message.objects.filter(pk=message.pk, unsubscribed_at=None).update(unsubscribed_at=at)
    customer = Customer.objects.select_for_update(of=("self",)).get(pk=message.customer_id)
    if customer.marketing_consent:
        consent_set(customer=customer, granted=False, source=f"email:{source}", at=at)
    suppress(message=message, merchant_id=message.merchant_id,
             address=message.address or customer.email,
             reason=Suppression.Reason.UNSUBSCRIBED)  # fmt: skip


FEWER_CHOICES = (7, 30)


def unsubscribe_answer(*, message: Message, every: str = "") -> str:
    """Her answer on the unsubscribe page (or her mail program's one click): `every` one
    of FEWER_CHOICES keeps her on fewer emails, anything else unsubscribes. Answers which."""
    if every.isdigit() and int(every) in FEWER_CHOICES:
        fewer_emails(message=message, every_days=int(every))
        return "fewer"
    unsubscribe(message=message)
    return "unsubscribed"


def fewer_emails(*, message: Message, every_days: int) -> None:
    """She stays subscribed, and hears from the shop at most once in `every_days`."""
    MailPreference.objects.update_or_create(
        customer_id=message.customer_id,
        defaults={"merchant_id": message.merchant_id, "every_days": every_days,
                  "updated_at": now()},
    )  # fmt: skip
