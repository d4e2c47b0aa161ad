"""The feedback inbox end to end, in real Chromium: a customer writes in from the rewards
page, the support agent takes the ticket from the "Unassigned" view with a bulk action,
answers it with a canned reply and resolves it; the customer gets the reply and the
"how did we do?" email, rates the answer through its link, and both sides see the
outcome on their own pages."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from customers.services.portal import storefront_link_make
from feedback.models import CsatSurvey, Feedback, State
from tests.customers.factories import CustomerFactory
from tests.feedback.factories import (
    CannedReplyFactory,
    DepartmentFactory,
    RoutingRuleFactory,
    SlaPolicyFactory,
)
from tests.merchants.factories import TEST_PASSWORD, MerchantFactory, StaffMemberFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]

CANNED = "Hello {customer_name}, about {ticket_number}: a new lid leaves today. {agent_name}"
CSAT_PATH = re.compile(r"/r/saffron-tea/feedback/csat/[\w-]+/")


def _staff_sign_in(page, base_url: str, *, email: str) -> None:
    page.goto(f"{base_url}/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def _emails_to(address: str, count: int, page) -> list:
    # The mails leave from the live server's thread once its transaction commits, which
    # is before the response; the wait only covers a slow machine.
    for _attempt in range(50):
        sent = [message for message in mail.outbox if address in message.to]
        if len(sent) >= count:
            return sent
        page.wait_for_timeout(100)
    return [message for message in mail.outbox if address in message.to]


def _mark_page(page) -> None:
    """A flag that only a full page load would wipe out."""
    page.evaluate("window.__sameDocument = true")


def _same_page(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def test_a_complaint_goes_from_the_rewards_page_to_a_rated_answer(live_server, phone, desktop):
    merchant = MerchantFactory(name="Saffron Tea", slug="saffron-tea")
    agent = StaffMemberFactory(
        merchant=merchant, role="support",
        user__email="sam@saffron.test", user__full_name="Sam Porter",
    )  # fmt: skip
    care = DepartmentFactory(merchant=merchant, name="Customer care")
    care.members.add(agent)
    RoutingRuleFactory(merchant=merchant, name="Everything to care", department=care)
    CannedReplyFactory(merchant=merchant, department=care, title="New lid", body=CANNED)
    billing = DepartmentFactory(merchant=merchant, name="Billing")
    CannedReplyFactory(merchant=merchant, department=billing, title="Refund issued")
    SlaPolicyFactory(merchant=merchant, priority="normal")
    customer = CustomerFactory(
        merchant=merchant, external_id="rana", first_name="Rana", email="rana@example.test"
    )

    # 1. The customer writes in from her rewards page.
    shopper = phone.page
    shopper.goto(live_server.url + storefront_link_make(customer=customer))
    panel = shopper.get_by_test_id("feedback-panel")
    panel.wait_for()
    panel.get_by_label("What is it about?").select_option("complaint")
    panel.get_by_label("Subject (optional)").fill("Cracked lid")
    panel.get_by_label("Message").fill("The teapot lid arrived cracked.")
    panel.get_by_role("button", name="Send", exact=True).click()
    shopper.get_by_test_id("feedback-notice").wait_for()
    mine = shopper.get_by_test_id("feedback-ticket").filter(has_text="Cracked lid")
    assert "Thank you" in shopper.get_by_test_id("feedback-notice").inner_text()
    assert mine.get_by_test_id("feedback-state").inner_text() == "Received"
    ticket = Feedback.objects.get(merchant=merchant)
    number = f"#{ticket.pk}"
    assert (ticket.department, ticket.assignee) == (care, None)  # routed, nobody's yet

    # 2. The agent takes it from "Unassigned" with a bulk action, in place.
    inbox = desktop.page
    _staff_sign_in(inbox, live_server.url, email="sam@saffron.test")
    inbox.get_by_test_id("sidebar").get_by_role("link", name="Inbox").click()
    inbox.get_by_test_id("inbox-views").get_by_role("link", name="Unassigned").click()
    inbox.wait_for_url(re.compile(r"view=unassigned"))
    row = inbox.get_by_test_id("inbox-table").get_by_role("row").filter(has_text="Cracked lid")
    assert "Rana" in row.inner_text()
    _mark_page(inbox)
    row.get_by_role("checkbox", name=f"Check ticket {number}").check()
    inbox.get_by_label("With the checked tickets").select_option("assign")
    inbox.get_by_label("Assign to").select_option("me")
    inbox.get_by_role("button", name="Apply to checked").click()
    result = inbox.get_by_test_id("bulk-result")
    result.wait_for()
    assert "1 ticket changed." in result.inner_text()
    assert _same_page(inbox), "the list swapped in place, no page load"
    assert row.count() == 0  # assigned now: gone from "Unassigned"
    ticket.refresh_from_db()
    assert ticket.assignee == agent

    # ... answers it with the department's canned reply, and resolves it.
    inbox.get_by_test_id("inbox-views").get_by_role("link", name="Mine").click()
    inbox.get_by_role("link", name=number, exact=True).click()
    inbox.wait_for_url(f"{live_server.url}/feedback/{ticket.pk}/")
    canned = inbox.get_by_label("Canned reply")
    assert canned.locator("option").all_inner_texts() == ["Start from a canned reply…", "New lid"]
    _mark_page(inbox)
    canned.select_option(label="New lid")
    filled = f"Hello Rana, about {number}: a new lid leaves today. Sam Porter"
    reply_box = inbox.get_by_role("textbox", name="Message", exact=True)
    inbox.wait_for_function(
        "text => document.getElementById('reply-body').value === text", arg=filled
    )
    assert reply_box.input_value() == filled
    inbox.get_by_role("button", name="Reply and resolve").click()
    work = inbox.get_by_test_id("ticket-work")
    work.get_by_test_id("notice").filter(has_text="Reply sent.").wait_for()
    assert _same_page(inbox)
    assert work.get_by_test_id("ticket-header").locator("[data-state]").inner_text() == "Resolved"
    assert filled in work.get_by_test_id("thread").inner_text()
    desktop.screenshot("feedback-flow-agent-resolved")

    # 3. Two emails to the customer: the reply, filled in, and the survey with its link.
    sent = _emails_to("rana@example.test", 2, inbox)
    assert len(sent) == 2, [message.subject for message in sent]
    # The survey is queued by the resolve, before the reply's own mail: match by subject.
    reply_mail = next(message for message in sent if message.subject.startswith("Re: "))
    csat_mail = next(message for message in sent if message is not reply_mail)
    assert reply_mail.subject == f"Re: Cracked lid [Saffron Tea {number}]"
    assert filled in reply_mail.body
    assert "How did we do?" in csat_mail.subject
    found = CSAT_PATH.search(csat_mail.body)
    assert found, csat_mail.body
    csat_url = live_server.url + found.group(0)

    # 4. She rates the answer through the link; the link works once.
    shopper.goto(csat_url)
    assert f"About your message {number}: “Cracked lid”" in shopper.locator("body").inner_text()
    shopper.get_by_label("5: Very happy").check()
    shopper.get_by_label("Anything to add? (optional)").fill("Quick and kind, thank you.")
    shopper.get_by_role("button", name="Send my rating").click()
    shopper.get_by_test_id("csat-thanks").wait_for()
    survey = CsatSurvey.objects.get(feedback=ticket)
    assert (survey.rating, survey.comment, survey.agent) == (5, "Quick and kind, thank you.", agent)
    phone.screenshot("feedback-flow-csat-thanks")
    logged = len(phone.errors)
    again = shopper.goto(csat_url)
    assert again.status == 410
    assert "answered already" in shopper.get_by_test_id("csat-refused").inner_text()
    assert shopper.get_by_test_id("csat-form").count() == 0
    # Chromium logs any document served with an error status; this 410 is the one meant.
    assert phone.errors[logged:] == [
        "Failed to load resource: the server responded with a status of 410 (Gone)"
    ]
    del phone.errors[logged:]

    # 5. The rewards page shows the answer and the resolved state ...
    shopper.get_by_role("link", name="Back to your rewards").click()
    mine = shopper.get_by_test_id("feedback-ticket").filter(has_text="Cracked lid")
    mine.wait_for()
    assert mine.get_by_test_id("feedback-state").inner_text() == "Resolved"
    mine.locator("summary").click()
    answer = mine.get_by_test_id("feedback-message").filter(has_text=filled)
    assert answer.is_visible()
    assert "Saffron Tea" in answer.inner_text()
    phone.screenshot("feedback-flow-rewards-resolved")

    # ... and the agent's ticket page the rating in the thread.
    inbox.reload()
    events = inbox.get_by_test_id("thread").locator("[data-kind=event]")
    assert events.filter(has_text="The customer rated the answer 5 of 5.").count() == 1
    ticket.refresh_from_db()
    assert ticket.state == State.RESOLVED

    for watch in (phone, desktop):
        assert watch.csp_violations == []
        assert watch.errors == []
