"""Messages over real SMTP (a local aiosmtpd server): what arrives, who may get marketing
mail, the one-click unsubscribe, the frequency cap and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.test import Client

from campaigns.models import Message, MessageTemplate, SendingSettings, Suppression
from campaigns.services.messages import quiet_until, template_check, unsubscribe_url
from campaigns.services.sending import message_deliver, message_queue
from customers.models import Customer
from tests.campaigns.factories import TemplateFactory
from tests.campaigns.smtp_sink import html_of, text_of
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return MerchantFactory(name="Kashi Tea", reply_to_email="help@kashi.test",
                           default_language="en")  # fmt: skip


@pytest.fixture
def sara(shop):
    return CustomerFactory(merchant=shop, first_name="<b>Sara</b>", language="fa",
                           marketing_consent=True, email="sara@example.test")  # fmt: skip


def _send(customer, template, key):
    message = message_queue(customer=customer, template=template, key=key,
                            data={"external_id": "1001"})  # fmt: skip
    return message, message_deliver(message_id=message.pk)


def test_marketing_message_arrives_right_to_left_with_one_click_headers(smtp_sink, shop, sara):
    template = TemplateFactory(merchant=shop)
    message, outcome = _send(sara, template, "manual:1")
    assert outcome == "sent"
    [arrived] = smtp_sink.wait_for(1)
    message.refresh_from_db()
    assert arrived["To"] == "sara@example.test"
    assert arrived["Reply-To"] == "help@kashi.test"
    assert "Kashi Tea" in arrived["From"]
    assert arrived["Message-ID"] == message.esp_message_id
    assert arrived["List-Unsubscribe"].strip() == f"<{unsubscribe_url(message)}>"
    assert arrived["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert arrived["Subject"] == "سپاس، <b>Sara</b>"
    html = html_of(arrived)
    assert 'dir="rtl"' in html
    assert 'lang="fa"' in html
    assert "از سفارش 1001 سپاسگزاریم" in html
    # Her name is text, not markup.
    assert "&lt;b&gt;Sara&lt;/b&gt;" in html
    assert "<b>Sara" not in html
    assert unsubscribe_url(message) in text_of(arrived)
    assert (message.state, message.language, message.address) == ("sent", "fa", sara.email)


def test_english_customer_gets_english_and_missing_language_falls_back(smtp_sink, shop):
    russian = CustomerFactory(merchant=shop, first_name="Olga", language="ru",
                              marketing_consent=True)  # fmt: skip
    _send(russian, TemplateFactory(merchant=shop), "manual:ru")
    [arrived] = smtp_sink.wait_for(1)
    # No Russian text was written: the merchant's default language stands in.
    assert arrived["Subject"] == "Thank you, Olga"
    assert 'dir="ltr"' in html_of(arrived)


def test_no_consent_stops_marketing_not_transactional(smtp_sink, shop):
    quiet = CustomerFactory(merchant=shop, marketing_consent=False)
    marketing = TemplateFactory(merchant=shop)
    receipt = TemplateFactory(merchant=shop, kind=MessageTemplate.Kind.TRANSACTIONAL)
    message, outcome = _send(quiet, marketing, "m:1")
    assert outcome == "no_consent"
    message.refresh_from_db()
    assert (message.state, message.skip_reason) == ("skipped", "no_consent")
    _message, outcome = _send(quiet, receipt, "t:1")
    assert outcome == "sent"
    [arrived] = smtp_sink.wait_for(1)
    assert "List-Unsubscribe" not in arrived


def test_one_click_post_unsubscribes_without_a_session(smtp_sink, shop, sara):
    message, _outcome = _send(sara, TemplateFactory(merchant=shop), "m:1")
    # A mail program's POST: no cookie, no CSRF token, no confirmation.
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(unsubscribe_url(message), data="List-Unsubscribe=One-Click",
                            content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert response.status_code == 200
    sara.refresh_from_db()
    assert sara.marketing_consent is False
    assert Suppression.objects.get(merchant=shop, address=sara.email).reason == "unsubscribed"
    # The next marketing message is not sent; a transactional one still is.
    _next, outcome = _send(sara, TemplateFactory(merchant=shop), "m:2")
    assert outcome == "no_consent"
    receipt = TemplateFactory(merchant=shop, kind=MessageTemplate.Kind.TRANSACTIONAL)
    assert _send(sara, receipt, "t:1")[1] == "sent"
    assert len(smtp_sink.wait_for(2)) == 2


def test_opening_the_link_only_asks(smtp_sink, shop, sara):
    message, _outcome = _send(sara, TemplateFactory(merchant=shop), "m:1")
    page = Client().get(unsubscribe_url(message))
    assert page.status_code == 200
    assert 'data-testid="unsubscribe"' in page.content.decode()
    sara.refresh_from_db()
    assert sara.marketing_consent is True
    assert not Suppression.objects.exists()


def test_a_link_of_another_shop_is_not_found(smtp_sink, shop, sara):
    message, _outcome = _send(sara, TemplateFactory(merchant=shop), "m:1")
    other = MerchantFactory()
    url = unsubscribe_url(message).replace(f"/r/{shop.slug}/", f"/r/{other.slug}/")
    assert Client().post(url).status_code == 404
    assert Client().post(unsubscribe_url(message)[:-3] + "xx/").status_code == 404
    sara.refresh_from_db()
    assert sara.marketing_consent is True


def test_fewer_emails_keeps_her_subscribed_once_a_week(smtp_sink, shop, sara):
    SendingSettings.objects.create(merchant=shop, cap_messages=0)  # no shop-wide cap
    first, _outcome = _send(sara, TemplateFactory(merchant=shop), "m:1")
    Client().post(unsubscribe_url(first), {"every": "7"})
    sara.refresh_from_db()
    assert sara.marketing_consent is True
    assert _send(sara, TemplateFactory(merchant=shop), "m:2")[1] == "fewer_emails"
    with time_machine.travel(datetime.now(UTC) + timedelta(days=7, minutes=1)):
        assert _send(sara, TemplateFactory(merchant=shop), "m:3")[1] == "sent"


def test_resubscribing_later_lifts_an_unsubscribe(smtp_sink, shop, sara):
    from customers.services import consent_set

    message, _outcome = _send(sara, TemplateFactory(merchant=shop), "m:1")
    Client().post(unsubscribe_url(message))
    with time_machine.travel(datetime.now(UTC) + timedelta(days=10)):
        consent_set(customer=Customer.objects.get(pk=sara.pk), granted=True, source="checkout")
        assert _send(sara, TemplateFactory(merchant=shop), "m:2")[1] == "sent"


def test_cap_holds_across_flows_and_a_manual_send(smtp_sink, shop, sara):
    from campaigns.models import Flow

    template = TemplateFactory(merchant=shop)
    flows = [Flow.objects.create(merchant=shop, trigger=trigger, enabled=True, template=template)
             for trigger in ("post_purchase", "points_earned")]  # fmt: skip
    queued = [
        message_queue(customer=sara, template=template, key="flow:a", flow=flows[0]),
        message_queue(customer=sara, template=template, key="flow:b", flow=flows[1]),
        message_queue(customer=sara, template=template, key="manual:1"),
    ]
    outcomes = [message_deliver(message_id=m.pk) for m in queued]
    assert outcomes == ["sent", "capped", "capped"]
    assert len(smtp_sink.wait_for(1)) == 1
    skipped = Message.objects.filter(state="skipped")
    assert sorted(skipped.values_list("skip_reason", flat=True)) == ["capped", "capped"]
    # Three days on, the cap has room again.
    with time_machine.travel(datetime.now(UTC) + timedelta(days=3, minutes=1)):
        later = message_queue(customer=sara, template=template, key="manual:2")
        assert message_deliver(message_id=later.pk) == "sent"


def test_a_message_delivered_twice_is_sent_once(smtp_sink, shop, sara):
    message = message_queue(customer=sara, template=TemplateFactory(merchant=shop), key="m:1")
    assert message_deliver(message_id=message.pk) == "sent"
    assert message_deliver(message_id=message.pk) == ""
    assert message_queue(customer=sara, template=message.template, key="m:1") is None
    assert len(smtp_sink.wait_for(2, seconds=0.5)) == 1


@pytest.mark.parametrize(
    ("zone", "at", "expected"),
    [
        # New York's spring-forward night (8 March 2026): 22:30 EST waits until 08:00 EDT.
        ("America/New_York", datetime(2026, 3, 8, 3, 30, tzinfo=UTC),
         datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # Its fall-back night (1 November 2026): 23:00 EDT waits until 08:00 EST.
        ("America/New_York", datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
         datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # After midnight, the same morning.
        ("Asia/Tehran", datetime(2026, 6, 1, 0, 0, tzinfo=UTC),
         datetime(2026, 6, 1, 4, 30, tzinfo=UTC)),
        # Daytime: no wait.
        ("Asia/Tehran", datetime(2026, 6, 1, 8, 0, tzinfo=UTC), None),
    ],
)  # fmt: skip
def test_quiet_hours_in_her_time_zone_across_dst(shop, zone, at, expected):
    customer = CustomerFactory(merchant=shop, timezone=zone)
    sending = SendingSettings(merchant=shop, quiet_from=time(21), quiet_until=time(8))
    assert quiet_until(customer=customer, sending=sending, at=at) == expected


def test_quiet_hours_fall_back_to_the_shops_time_zone(smtp_sink, shop, sara):
    SendingSettings.objects.create(merchant=shop, quiet_from=time(21), quiet_until=time(8))
    # 23:00 in London (the shop's zone; she has none): put off to 08:00, not skipped.
    with time_machine.travel(datetime(2026, 7, 1, 22, 0, tzinfo=UTC), tick=False):
        message, outcome = _send(sara, TemplateFactory(merchant=shop), "m:1")
    assert outcome == "quiet_hours"
    message.refresh_from_db()
    assert (message.state, message.send_after) == ("queued", datetime(2026, 7, 2, 7, 0, tzinfo=UTC))
    assert smtp_sink.wait_for(1, seconds=0.3) == []


def test_a_template_with_an_error_names_the_field():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        template_check("Hello {% if %}", "body_fa")
    assert "body_fa" in error.value.message_dict
    # No include of the product's own templates, no tag libraries.
    with pytest.raises(ValidationError):
        template_check('{% include "base.html" %}{% load static %}', "body_en")
