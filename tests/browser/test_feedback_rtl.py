"""The feedback inbox on a 390 px phone: in Arabic the pages run right to left, a customer's
English message still reads left to right, nothing is wider than the screen (wide tables
scroll inside their own box) and the console stays quiet.

The contexts here are plain 390 px windows, not emulated phones: an emulated phone widens
its layout viewport to fit whatever overflows, so an overflow would never show."""

from __future__ import annotations

import pytest

from feedback.models import Message, State
from tests.browser.conftest import PageWatch
from tests.feedback.factories import (
    DepartmentFactory,
    FeedbackFactory,
    MessageFactory,
    RoutingRuleFactory,
)
from tests.merchants.factories import TEST_PASSWORD, MerchantFactory, StaffMemberFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
OVERFLOW = "[document.documentElement.scrollWidth, window.innerWidth]"


@pytest.fixture
def narrow(browser):
    context = browser.new_context(viewport=PHONE, locale="en-US")
    watch = PageWatch(context.new_page())
    yield watch
    context.close()


def _sign_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def _shop(language: str):
    merchant = MerchantFactory(name="Saffron Tea", slug="saffron-tea")
    manager = StaffMemberFactory(merchant=merchant, role="manager")
    manager.user.language = language
    manager.user.save(update_fields=["language"])
    department = DepartmentFactory(merchant=merchant, name="Product care")
    department.members.add(manager)
    RoutingRuleFactory(
        merchant=merchant,
        name="Damaged goods",
        keywords="dented, broken",
        department=department,
        priority="high",
    )
    ticket = FeedbackFactory(
        merchant=merchant,
        subject="Caffeine in green tea?",
        state=State.OPEN,
        department=department,
        assignee=manager,
        sender_email="a.very.long.address.for.a.customer@example.test",
    )
    MessageFactory(feedback=ticket, body="Is there caffeine in your green tea?")
    MessageFactory(
        feedback=ticket,
        kind=Message.Kind.NOTE,
        author=manager.user,
        body="Checked with the supplier.",
    )
    MessageFactory(
        feedback=ticket, kind=Message.Kind.REPLY, author=manager.user, body="نعم، قليلًا."
    )
    for number in range(5):
        FeedbackFactory(
            merchant=merchant, subject=f"طلبي رقم {number} لم يصل بعد إلى العنوان", state=State.NEW
        )
    return manager, ticket


def test_inbox_and_ticket_in_arabic_fit_a_phone_right_to_left(live_server, narrow):
    manager, ticket = _shop("ar")
    page = narrow.page
    _sign_in(page, live_server.url, manager.user.email)

    page.goto(f"{live_server.url}/feedback/?view=all")
    page.get_by_test_id("inbox-table").wait_for()
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator(f"tr[data-ticket='{ticket.pk}']").is_visible()
    width, window = page.evaluate(OVERFLOW)
    assert width <= window == PHONE["width"], "the inbox table scrolls inside its box"
    narrow.screenshot("feedback-inbox-ar-390")

    page.goto(f"{live_server.url}/feedback/{ticket.pk}/")
    page.get_by_test_id("thread").wait_for()
    page.get_by_test_id("presence-poll").wait_for(state="attached")
    assert page.locator("html").get_attribute("dir") == "rtl"
    width, window = page.evaluate(OVERFLOW)
    assert width <= window == PHONE["width"]
    # The customer wrote in English: the question mark stays at the end of her sentence.
    customer_text = page.locator("[data-kind='customer'] .text-break")
    assert customer_text.evaluate("element => getComputedStyle(element).direction") == "ltr"
    reply_text = page.locator("[data-kind='reply'] .text-break")
    assert reply_text.evaluate("element => getComputedStyle(element).direction") == "rtl"
    assert page.locator("[data-kind='note']").is_visible()
    narrow.screenshot("feedback-ticket-ar-390")

    assert narrow.csp_violations == []
    assert narrow.errors == []


@pytest.mark.parametrize("path", ["/feedback/departments/", "/feedback/rules/"])
def test_inbox_settings_tables_scroll_inside_their_box_on_a_phone(live_server, narrow, path):
    # A table's visually hidden "Actions" heading once escaped its scrolling box and
    # widened the whole page in left-to-right languages.
    manager, _ticket = _shop("ru")
    page = narrow.page
    _sign_in(page, live_server.url, manager.user.email)

    page.goto(live_server.url + path)
    page.locator("table").wait_for()
    assert page.locator("html").get_attribute("lang") == "ru"
    width, window = page.evaluate(OVERFLOW)
    assert width <= window == PHONE["width"]
    assert narrow.csp_violations == []
    assert narrow.errors == []
