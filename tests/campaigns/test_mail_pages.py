"""The staff pages of messages: templates written per language with a live preview and a
test send, flows with their numbers, sending settings, the suppression list, the 360
panel; each change audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils.timezone import now

from campaigns.models import Flow, Message, MessageEvent, MessageTemplate, SendingSettings
from campaigns.services.flows import due_claim, flows_advance
from campaigns.services.sending import messages_send
from customers.services import CustomerData, order_ingest
from merchants.models import AuditEvent
from tests.campaigns.factories import TemplateFactory
from tests.customers.factories import CustomerFactory, order_data
from tests.loyalty.test_portal import _text
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client, merchant):
    member = StaffMemberFactory(merchant=merchant, role="marketer", user__email="mona@shop.test")
    client.force_login(member.user)
    return member


TEMPLATE = {
    "name": "Thank you", "kind": "transactional",
    "subject_en": "Thanks, {{ first_name }}", "body_en": "Order {{ order_number }} is ours.",
    "subject_fa": "سپاس {{ first_name }}", "body_fa": "سفارش {{ order_number }} رسید.",
}  # fmt: skip


def test_a_template_is_written_previewed_on_a_customer_and_sent_as_a_test(
    client, marketer, merchant
):
    CustomerFactory(merchant=merchant, email="sara@example.test", first_name="Sara",
                    language="fa")  # fmt: skip
    # The live preview draws the unsaved text, in her language, right to left.
    preview = client.post("/campaigns/messages/templates/preview/",
                          {**TEMPLATE, "customer": "sara@example.test"})  # fmt: skip
    html = preview.content.decode()
    assert 'dir="rtl"' in html
    assert "سپاس Sara" in _text(preview)
    assert "سفارش 1001 رسید." in _text(preview)
    response = client.post("/campaigns/messages/templates/new/", TEMPLATE)
    template = MessageTemplate.objects.get(merchant=merchant)
    assert response.status_code == 302
    assert (template.subject_fa, template.kind) == ("سپاس {{ first_name }}", "transactional")
    assert AuditEvent.objects.filter(action="campaigns.template_saved").count() == 1
    client.post(f"/campaigns/messages/templates/{template.pk}/test/",
                {"customer": "sara@example.test"})  # fmt: skip
    [test] = mail.outbox
    assert test.to == ["mona@shop.test"]
    assert "سپاس Sara" in test.subject
    assert test.subject.startswith("[")


def test_a_template_error_names_the_field_and_saves_nothing(client, marketer, merchant):
    bad = {**TEMPLATE, "body_fa": "سفارش {% if %}"}
    response = client.post("/campaigns/messages/templates/new/", bad)
    assert response.status_code == 200
    assert "This template has an error" in _text(response)
    assert not MessageTemplate.objects.exists()


def test_a_flow_is_set_up_and_the_list_shows_its_numbers(client, marketer, merchant):
    template = TemplateFactory(merchant=merchant, kind="transactional")
    form = {"enabled": "on", "delay_minutes": "0", "template": template.pk}
    response = client.post("/campaigns/messages/flows/edit/?trigger=post_purchase", form)
    assert response.status_code == 302
    flow = Flow.objects.get(merchant=merchant)
    assert (flow.trigger, flow.enabled) == ("post_purchase", True)
    assert AuditEvent.objects.filter(action="campaigns.flow_saved").exists()
    person = CustomerData(external_id="ada", email="ada@example.test", marketing_consent=True)
    order_ingest(merchant=merchant, data=order_data("1001", customer=person))
    flows_advance()
    for chunk in due_claim():
        messages_send(message_ids=chunk)
    message = Message.objects.get(flow=flow)
    Message.objects.filter(pk=message.pk).update(delivered_at=now(), clicked_at=now())
    MessageEvent.objects.create(merchant=merchant, message=message, esp="test", event_key="1",
                                kind="clicked")  # fmt: skip
    # She orders again two days later: credited to the thank-you.
    with time_machine.travel(now() + timedelta(days=2)):
        order_ingest(merchant=merchant, data=order_data("1002", customer=person, total="80.00"))
        # Two days idle: signed out, then signed in again (a fresh session, whichever
        # store still holds the old one).
        client.logout()
        client.force_login(marketer.user)
        page = client.get("/campaigns/messages/flows/")
    assert "Thank you after a purchase" in _text(page), (page.status_code, _text(page)[:3000])
    row = _text(page).split("Thank you after a purchase", 1)[1].split("Points earned")[0]
    assert row.split()[:2] == ["On", template.name.split()[0]]
    assert "80.00 USD" in row
    assert "1 (100%)" in row  # clicked, of delivered


def test_sending_settings_are_saved_checked_and_audited(client, marketer, merchant):
    response = client.post("/campaigns/messages/settings/", {
        "from_name": "Kashi", "from_email": "", "reply_to": "", "cap_messages": "2",
        "cap_days": "7", "quiet_from": "21:00", "quiet_until": "",
        "soft_bounce_limit": "7", "send_rate": "600", "attribution_days": "5",
        "attribution_by": "clicked",
    })  # fmt: skip
    assert "Give both ends of the quiet hours" in _text(response)
    assert not SendingSettings.objects.exists()
    client.post("/campaigns/messages/settings/", {
        "from_name": "Kashi", "from_email": "", "reply_to": "", "cap_messages": "2",
        "cap_days": "7", "quiet_from": "21:00", "quiet_until": "08:00",
        "soft_bounce_limit": "7", "send_rate": "600", "attribution_days": "5",
        "attribution_by": "clicked",
    })  # fmt: skip
    saved = SendingSettings.objects.get(merchant=merchant)
    assert (saved.cap_messages, saved.cap_days, str(saved.quiet_until)) == (2, 7, "08:00:00")
    assert AuditEvent.objects.filter(action="campaigns.sending_saved").exists()


def test_an_address_is_suppressed_by_hand_and_taken_off(client, marketer, merchant):
    client.post("/campaigns/messages/suppressions/change/", {"address": "Spam@Example.test"})
    assert "spam@example.test" in _text(client.get("/campaigns/messages/suppressions/"))
    client.post("/campaigns/messages/suppressions/change/",
                {"address": "spam@example.test", "remove": "1"})  # fmt: skip
    assert "No suppressed addresses." in _text(client.get("/campaigns/messages/suppressions/"))
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"campaigns.suppression_added", "campaigns.suppression_removed"} <= actions


def test_the_360_panel_lists_what_she_was_sent_and_what_was_skipped(client, marketer, merchant):
    from campaigns.services.sending import message_deliver, message_queue

    customer = CustomerFactory(merchant=merchant, marketing_consent=False)
    template = TemplateFactory(merchant=merchant)
    message = message_queue(customer=customer, template=template, key="m:1")
    message_deliver(message_id=message.pk)
    panel = client.get(f"/campaigns/customers/{customer.pk}/messages/")
    assert "Skipped" in _text(panel)
    assert "No marketing consent" in _text(panel)


def test_an_analyst_reads_flows_but_cannot_change_them(client, merchant):
    analyst = StaffMemberFactory(merchant=merchant, role="analyst")
    client.force_login(analyst.user)
    assert client.get("/campaigns/messages/flows/").status_code == 200
    assert client.get("/campaigns/messages/flows/edit/?trigger=welcome").status_code == 403
