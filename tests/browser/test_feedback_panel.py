"""A customer writes to the shop from the rewards page on a phone, with a photo attached,
through htmx: the panel swaps in place with the thank-you and the new ticket; a staff reply
shows up after a reload and she answers it the same way."""

from __future__ import annotations

import pytest

from customers.services.portal import storefront_link_make
from feedback.models import Attachment, Feedback, State
from feedback.services.tickets import staff_reply
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_customer_writes_in_with_a_photo_and_answers_the_reply(live_server, phone):
    merchant = MerchantFactory(name="Saffron Tea", slug="saffron-tea")
    customer = CustomerFactory(merchant=merchant, external_id="rana", first_name="Rana")
    page = phone.page
    page.goto(live_server.url + storefront_link_make(customer=customer))
    panel = page.get_by_test_id("feedback-panel")
    panel.wait_for()

    panel.get_by_label("What is it about?").select_option("complaint")
    panel.get_by_label("Subject (optional)").fill("Broken lid")
    panel.get_by_label("Message").fill("The teapot lid arrived cracked.")
    panel.get_by_label("Attachments (optional)").set_input_files(
        files=[{"name": "lid.png", "mimeType": "image/png", "buffer": PNG}]
    )
    url_before = page.url
    panel.get_by_role("button", name="Send", exact=True).click()
    page.get_by_test_id("feedback-notice").wait_for()

    assert page.url == url_before  # swapped in place, no page load
    ticket = Feedback.objects.get()
    assert (ticket.kind, ticket.subject) == ("complaint", "Broken lid")
    assert Attachment.objects.get().name == "lid.png"
    assert "Broken lid" in page.get_by_test_id("feedback-ticket").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.screenshot("feedback-panel-phone-sent")

    agent = StaffMemberFactory(merchant=merchant, role="support")
    staff_reply(feedback=ticket, member=agent, body="Sorry! Which colour?", then=State.PENDING)
    page.reload()
    thread = page.get_by_test_id("feedback-ticket")
    assert "Waiting for you" in thread.inner_text()
    assert "Sorry! Which colour?" in thread.inner_text()
    thread.get_by_label("Your reply").fill("The blue one.")
    thread.get_by_role("button", name="Send reply").click()
    page.get_by_test_id("feedback-notice").wait_for()

    ticket.refresh_from_db()
    assert ticket.state == State.OPEN
    assert "The blue one." in page.get_by_test_id("feedback-ticket").inner_text()
    assert phone.csp_violations == []
    assert phone.errors == []
