"""The ESP's tracking webhooks over real HTTP, in the payload shapes Mailgun (signed with
HMAC-SHA256) and Postmark (basic auth) send: each event counted once, bounces and
complaints suppress, machine opens are kept apart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request

import pytest

from campaigns.models import Message, MessageEvent, Suppression
from campaigns.services.sending import message_deliver, message_queue
from tests.campaigns.factories import TemplateFactory
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db(transaction=True)
SIGNING_KEY = "mailgun-signing-key"
BASIC = "tracking:s3cret-pass"


@pytest.fixture(autouse=True)
def esp_settings(settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "WEBHOOK_SECRET": BASIC}


@pytest.fixture
def sent():
    shop = MerchantFactory()
    customer = CustomerFactory(merchant=shop, marketing_consent=True, email="ana@example.test")
    message = message_queue(customer=customer, template=TemplateFactory(merchant=shop), key="m:1")
    assert message_deliver(message_id=message.pk) == "sent"
    message.refresh_from_db()
    return message


def _post(url: str, payload, *, auth: str | None = BASIC) -> int:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers=headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def mailgun_event(message: Message, event: str, *, key: str = SIGNING_KEY, token=None, **data):
    """A Mailgun webhook body: the signature block over timestamp + token, and event-data."""
    timestamp, token = str(int(time.time())), token or secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event, "timestamp": time.time(), "id": secrets.token_hex(8),
            "recipient": message.address,
            "message": {"headers": {"message-id": message.esp_message_id.strip("<>")}},
            "user-variables": {"regulars_message": str(message.pk)},
            **data,
        },
    }  # fmt: skip


def postmark_event(message: Message, record: str, **data):
    """A Postmark webhook body: its record types name the time field differently."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    field = {"Delivery": "DeliveredAt", "Bounce": "BouncedAt", "SpamComplaint": "BouncedAt",
             "SubscriptionChange": "ChangedAt"}.get(record, "ReceivedAt")  # fmt: skip
    return {"RecordType": record, "MessageID": message.esp_message_id, "MessageStream": "outbound",
            "Recipient": message.address, "Email": message.address, field: stamp,
            "Metadata": {"regulars_message": str(message.pk)}, **data}  # fmt: skip


def test_a_bad_signature_is_refused_and_writes_nothing(live_server, sent):
    url = f"{live_server.url}/hooks/anymail/mailgun/tracking/"
    forged = mailgun_event(sent, "delivered", key="not-the-key")
    assert _post(url, forged) == 401
    # Right signature, wrong basic auth: refused too.
    assert _post(url, mailgun_event(sent, "delivered"), auth="tracking:guess") == 401
    postmark = f"{live_server.url}/hooks/anymail/postmark/tracking/"
    assert _post(postmark, postmark_event(sent, "Delivery"), auth=None) == 401
    assert MessageEvent.objects.count() == 0
    sent.refresh_from_db()
    assert sent.delivered_at is None


def test_the_same_event_twice_counts_once(live_server, sent):
    url = f"{live_server.url}/hooks/anymail/mailgun/tracking/"
    event = mailgun_event(sent, "clicked", url="https://kashi.test/tea")
    assert _post(url, event) == 200
    assert _post(url, event) == 200
    assert MessageEvent.objects.filter(kind="clicked").count() == 1
    sent.refresh_from_db()
    assert sent.clicked_at is not None
    # A click is a read.
    assert sent.opened_at is not None


def test_delivered_then_hard_bounce_suppresses(live_server, sent):
    url = f"{live_server.url}/hooks/anymail/mailgun/tracking/"
    assert _post(url, mailgun_event(sent, "delivered")) == 200
    sent.refresh_from_db()
    assert sent.state == "delivered"
    # A temporary failure is the ESP still trying: nothing is suppressed.
    assert _post(url, mailgun_event(sent, "failed", severity="temporary", reason="generic")) == 200
    assert not Suppression.objects.exists()
    assert _post(url, mailgun_event(sent, "failed", severity="permanent", reason="bounce")) == 200
    sent.refresh_from_db()
    assert sent.state == "bounced"
    assert Suppression.objects.get(address=sent.address).reason == "hard_bounce"
    # The next marketing message to her is not sent.
    again = message_queue(customer=sent.customer, template=sent.template, key="m:2")
    assert message_deliver(message_id=again.pk) == "suppressed"


def test_a_complaint_suppresses(live_server, sent):
    url = f"{live_server.url}/hooks/anymail/postmark/tracking/"
    complaint = postmark_event(sent, "SpamComplaint", Type="SpamComplaint", TypeCode=512,
                               ID=secrets.randbelow(10**12))  # fmt: skip
    assert _post(url, complaint) == 200
    sent.refresh_from_db()
    assert sent.state == "complained"
    assert Suppression.objects.get(address=sent.address).reason == "complaint"


def test_a_machine_open_is_not_an_open(live_server, sent):
    url = f"{live_server.url}/hooks/anymail/postmark/tracking/"
    # Apple Mail Privacy Protection: every image fetched by Apple's proxy, a bare agent.
    apple = postmark_event(sent, "Open", FirstOpen=True, UserAgent="Mozilla/5.0",
                           Client={"Name": "Unknown"}, Platform="Unknown")  # fmt: skip
    assert _post(url, apple) == 200
    sent.refresh_from_db()
    assert sent.opened_at is None
    assert MessageEvent.objects.get(kind="opened").machine is True
    # Gmail's image proxy, through Mailgun: a machine too.
    mailgun = f"{live_server.url}/hooks/anymail/mailgun/tracking/"
    proxy = mailgun_event(sent, "opened", **{"client-info": {
        "user-agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
                      "(via ggpht.com GoogleImageProxy)"}})  # fmt: skip
    assert _post(mailgun, proxy) == 200
    sent.refresh_from_db()
    assert sent.opened_at is None
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148"
    )
    person = postmark_event(sent, "Open", FirstOpen=False, Platform="Mobile", UserAgent=iphone)
    assert _post(url, person) == 200
    sent.refresh_from_db()
    assert sent.opened_at is not None
    assert list(MessageEvent.objects.order_by("pk").values_list("machine", flat=True)) == [
        True, True, False]  # fmt: skip


def soft(message):
    return postmark_event(
        message,
        "Bounce",
        Type="SoftBounce",
        TypeCode=4096,
        ID=secrets.randbelow(10**12),
        Description="Mailbox full",
    )


def test_soft_bounces_suppress_at_the_limit_and_a_delivery_resets_them(live_server, sent):
    from campaigns.models import SendingSettings

    SendingSettings.objects.create(merchant=sent.merchant, soft_bounce_limit=3)
    mailgun = f"{live_server.url}/hooks/anymail/mailgun/tracking/"
    postmark = f"{live_server.url}/hooks/anymail/postmark/tracking/"
    given_up = {"severity": "permanent", "reason": "old"}  # retried until Mailgun gave up
    assert _post(mailgun, mailgun_event(sent, "failed", **given_up)) == 200
    assert _post(postmark, soft(sent)) == 200
    assert not Suppression.objects.exists()
    # A delivery in between: the count starts again.
    assert _post(mailgun, mailgun_event(sent, "delivered")) == 200
    for _n in range(2):
        assert _post(mailgun, mailgun_event(sent, "failed", **given_up)) == 200
    assert not Suppression.objects.exists()
    assert _post(postmark, soft(sent)) == 200
    assert Suppression.objects.get(address=sent.address).reason == "soft_bounces"
    assert MessageEvent.objects.filter(kind="soft_bounced").count() == 5


def test_an_unsubscribe_reported_by_the_esp_withdraws_consent(live_server, sent):
    url = f"{live_server.url}/hooks/anymail/postmark/tracking/"
    change = postmark_event(sent, "SubscriptionChange", SuppressSending=True,
                            SuppressionReason="ManualSuppression")  # fmt: skip
    assert _post(url, change) == 200
    sent.customer.refresh_from_db()
    assert sent.customer.marketing_consent is False
    assert Suppression.objects.get(address=sent.address).reason == "unsubscribed"


def test_an_event_for_a_message_we_never_sent_is_dropped(live_server, sent):
    url = f"{live_server.url}/hooks/anymail/postmark/tracking/"
    stranger = postmark_event(sent, "Delivery", MessageID="nobody-elsewhere", Metadata={})
    assert _post(url, stranger) == 200
    assert MessageEvent.objects.count() == 0
