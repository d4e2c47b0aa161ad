"""A marketer writes the thank-you in Persian, previews it on a customer, sends herself a
test and turns the flow on; the shop's order webhook and then its fulfilment webhook make
the thank-you and the shipped message arrive over SMTP, in Persian, right to left."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from campaigns.models import Flow, MessageTemplate
from campaigns.services.flows import due_claim, flows_advance
from campaigns.services.sending import messages_send
from merchants.api_keys import store_connection_create
from tests.campaigns.factories import TemplateFactory
from tests.campaigns.smtp_sink import html_of
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import TEST_PASSWORD, MerchantFactory, StaffMemberFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]
PAYLOADS = Path(__file__).parents[1] / "customers" / "payloads"


def _webhook(base: str, connection, topic: str, payload: dict) -> int:
    body = json.dumps(payload).encode()
    signature = base64.b64encode(
        hmac.new(connection.secret.encode(), body, hashlib.sha256).digest()
    ).decode()
    request = urllib.request.Request(
        f"{base}/hooks/shopify/{connection.public_id}/", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-Shopify-Topic": topic,
                 "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                 "X-Shopify-Shop-Domain": "saffron.myshopify.com"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status


def _beat_pass() -> None:
    """What the every-minute job does: activities to messages, due messages sent."""
    flows_advance()
    for chunk in due_claim():
        messages_send(message_ids=chunk)


def test_thank_you_and_shipped_in_persian_from_the_editor_to_her_inbox(
    live_server, desktop, smtp_sink
):
    shop = MerchantFactory(name="Saffron Tea", slug="saffron-tea")
    member = StaffMemberFactory(merchant=shop, role="marketer", user__email="mina@saffron.test")
    CustomerFactory(merchant=shop, external_id="7238462914613", email="noor.haddad@example.com",
                    first_name="Noor", language="fa")  # fmt: skip
    thanks = TemplateFactory(merchant=shop, name="Thank you", kind="transactional",
                             subject_en="Thank you, {{ first_name }}",
                             body_en="Your order {{ order_number }} is on its way to us.",
                             subject_fa="", body_fa="")  # fmt: skip
    shipped = TemplateFactory(merchant=shop, name="Shipped", kind="transactional",
                              subject_fa="سفارش {{ order_number }} ارسال شد",
                              body_fa="{{ first_name }} عزیز، بسته‌ی شما در راه است.")  # fmt: skip
    Flow.objects.create(merchant=shop, trigger="shipped", template=shipped, enabled=True,
                        enabled_at=shipped.updated_at)  # fmt: skip
    connection = store_connection_create(merchant=shop, platform="shopify")
    base, page = live_server.url, desktop.page

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    page.get_by_test_id("sidebar").get_by_role("link", name="Messages").click()
    page.get_by_test_id("mail-nav").get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="Thank you").click()
    form = page.get_by_test_id("template-form")
    form.get_by_label("Subject · Persian").fill("سپاس، {{ first_name }}")
    form.get_by_label("Body · Persian").fill("سفارش {{ order_number }} شما رسید. ممنونیم!")
    page.get_by_test_id("preview-email").fill("noor.haddad@example.com")
    page.get_by_test_id("preview-email").dispatch_event("change")
    preview = page.get_by_test_id("preview-body")
    # Each keystroke redraws it: wait for the draw of both fields as typed.
    preview.filter(has_text="سفارش 1001 شما رسید").wait_for()
    assert preview.get_attribute("dir") == "rtl"
    assert "سپاس، Noor" in preview.inner_text()
    desktop.screenshot("messages-template-fa-preview")
    form.get_by_test_id("template-save").click()
    page.get_by_role("status").or_(page.locator(".alert-success")).first.wait_for()
    thanks.refresh_from_db()
    assert thanks.subject_fa == "سپاس، {{ first_name }}"
    page.get_by_test_id("preview-email").fill("noor.haddad@example.com")
    page.get_by_test_id("test-send").click()
    page.locator(".alert-success").filter(has_text="mina@saffron.test").wait_for()
    [test] = smtp_sink.wait_for(1)
    assert test["To"] == "mina@saffron.test"
    assert "سپاس، Noor" in test["Subject"]

    page.get_by_test_id("mail-nav").get_by_role("link", name="Flows").click()
    page.get_by_test_id("flow-row-post_purchase").get_by_role("link").click()
    flow_form = page.get_by_test_id("flow-form")
    flow_form.get_by_label("On", exact=True).check()
    flow_form.get_by_label("Template").select_option(label="Thank you")
    flow_form.get_by_role("button", name="Save").click()
    page.get_by_test_id("flow-row-post_purchase").get_by_test_id("flow-on").wait_for()
    desktop.screenshot("messages-flows-on")

    order = json.loads((PAYLOADS / "shopify_order.json").read_text())
    # Placed just now (after the flow was turned on; the shop's clock counts whole
    # seconds): a flow writes about what happens, not about last year's orders.
    time.sleep(1.1)
    just_now = datetime.now(UTC).isoformat(timespec="seconds")
    order |= {"created_at": just_now, "processed_at": just_now, "updated_at": just_now}
    assert _webhook(base, connection, "orders/create", order) == 200
    _beat_pass()
    thank_you = smtp_sink.wait_for(2)[1]
    assert thank_you["To"] == "noor.haddad@example.com"
    assert thank_you["Subject"] == "سپاس، Noor"
    html = html_of(thank_you)
    assert 'dir="rtl"' in html
    assert 'lang="fa"' in html
    assert f"سفارش {order['id']} شما رسید" in html

    fulfilment = {"id": 4903, "order_id": order["id"], "status": "success",
                  "tracking_company": "DHL", "tracking_number": "1Z2345",
                  "shipment_status": None, "updated_at": just_now}  # fmt: skip
    assert _webhook(base, connection, "fulfillments/create", fulfilment) == 200
    _beat_pass()
    shipped_mail = smtp_sink.wait_for(3)[2]
    assert shipped_mail["Subject"] == f"سفارش {order['id']} ارسال شد"
    assert 'dir="rtl"' in html_of(shipped_mail)
    assert "Noor عزیز" in html_of(shipped_mail)
    assert MessageTemplate.objects.filter(merchant=shop).count() == 2

    # Her 360 page lists both.
    page.goto(f"{base}/customers/")
    page.get_by_role("link", name="Noor").first.click()
    panel = page.get_by_test_id("messages-panel")
    panel.get_by_test_id("message-row").nth(1).wait_for()
    assert panel.get_by_test_id("message-row").count() == 2
    desktop.screenshot("messages-customer-360")
    assert desktop.csp_violations == []
    assert desktop.errors == []
