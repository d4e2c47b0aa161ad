"""Merchant content in the reader's language, in Chromium: a customer reads the rewards
page in Arabic and then Persian with the rewards, tiers and plans the merchant wrote in
those languages (an untranslated reward name keeps its own direction inside an Arabic
sentence), and an Arabic-speaking agent reads a ticket whose event lines are Arabic and
starts a reply from the Arabic text of a canned reply."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from customers.models import Customer
from customers.services import CustomerData, order_ingest
from customers.services.portal import storefront_link_make
from feedback.models import Channel, Kind, State
from feedback.services.intake import feedback_submit
from feedback.services.tickets import feedback_assign, feedback_transition
from loyalty.models import MembershipPlan, PointsEntry
from loyalty.services.ledger import account_for, account_locked, entry_write
from tests.browser.test_feedback_rtl import _sign_in
from tests.customers.factories import order_data
from tests.feedback.factories import CannedReplyFactory
from tests.loyalty.factories import ProgramFactory, RewardFactory, TierFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]

# Where in the line each character of a text node sits: the x of its left edge.
CHAR_LEFT = """(element, index) => {
  const node = element.firstChild, range = document.createRange();
  range.setStart(node, index); range.setEnd(node, index + 1);
  return range.getBoundingClientRect().left;
}"""


@pytest.fixture
def shop(db):
    merchant = MerchantFactory(name="Saffron Tea", slug="saffron-tea")
    ProgramFactory(merchant=merchant, point_value=Decimal("0.01"),
                   terms_en="Points never expire.", terms_ar="لا تنتهي صلاحية النقاط.",
                   terms_fa="امتیازها هرگز منقضی نمی‌شوند.")  # fmt: skip
    TierFactory(merchant=merchant, threshold=Decimal("100.00"), name_en="Silver",
                name_ar="الفضي", name_fa="نقره‌ای", perks_en="Free gift wrapping",
                perks_ar="تغليف هدايا مجاني", perks_fa="کادوپیچی رایگان")  # fmt: skip
    TierFactory(merchant=merchant, threshold=Decimal("500.00"), name_en="Gold",
                name_ar="الذهبي", name_fa="طلایی")  # fmt: skip
    RewardFactory(merchant=merchant, points_cost=500, name_en="Tea sampler",
                  name_ar="علبة شاي متنوعة", name_fa="جعبه چای")  # fmt: skip
    # Written in English only: Arabic and Persian readers get the English name.
    RewardFactory(merchant=merchant, points_cost=800, name_en="$5 off your order")
    MembershipPlan.objects.create(merchant=merchant, price=Decimal("9.00"), currency="USD",
                                  period="month", name_en="Tea Club", name_ar="نادي الشاي",
                                  name_fa="باشگاه چای")  # fmt: skip
    person = CustomerData(external_id="rana", email="rana@example.test", first_name="Rana")
    order_ingest(merchant=merchant, data=order_data("A-100", customer=person, total="320.00"))
    customer = Customer.objects.get(merchant=merchant, external_id="rana")
    customer.language = "ar"
    customer.save(update_fields=["language"])
    with transaction.atomic():
        entry_write(account=account_locked(account=account_for(customer=customer)),
                    kind=PointsEntry.Kind.EARN, points=1000, key="welcome",
                    expires_at=None)  # fmt: skip
    return merchant, customer


def test_the_rewards_page_reads_in_arabic_then_persian(live_server, desktop, shop):
    _merchant, customer = shop
    page = desktop.page
    page.goto(live_server.url + storefront_link_make(customer=customer))
    page.get_by_test_id("points-panel").wait_for()
    page.wait_for_selector('html[dir="rtl"][lang="ar"]')
    assert "الفضي" in page.get_by_test_id("tier-name").inner_text()
    assert "الذهبي" in page.get_by_test_id("tier-progress").inner_text()
    assert "تغليف هدايا مجاني" in page.get_by_test_id("tier-perks").inner_text()
    rewards = page.get_by_test_id("rewards-panel").inner_text()
    assert "علبة شاي متنوعة" in rewards
    assert "Tea sampler" not in rewards
    assert "نادي الشاي" in page.get_by_test_id("membership-panel").inner_text()
    page.get_by_test_id("program-terms").locator("summary").click()
    assert "لا تنتهي صلاحية النقاط." in page.get_by_test_id("program-terms").inner_text()

    # The English-only reward inside the Arabic question keeps its own order: "$5" stays
    # at the left of "off your order", as written, not scrambled by the sentence around it.
    offer = page.get_by_test_id("reward").filter(has_text="$5 off your order")
    offer.locator(".regulars-confirm summary").click()
    name = offer.locator(".regulars-confirm bdi")
    assert name.inner_text() == "$5 off your order"
    dollar, letter_o = (name.evaluate(CHAR_LEFT, i) for i in (0, 3))
    assert dollar < letter_o
    desktop.screenshot("content-rewards-page-ar")

    page.get_by_test_id("language-menu").get_by_role("button").click()
    page.get_by_role("button", name="فارسی").click()
    page.wait_for_selector('html[dir="rtl"][lang="fa"]')
    assert "نقره‌ای" in page.get_by_test_id("tier-name").inner_text()
    assert "کادوپیچی رایگان" in page.get_by_test_id("tier-perks").inner_text()
    rewards = page.get_by_test_id("rewards-panel").inner_text()
    assert "جعبه چای" in rewards
    assert "علبة شاي متنوعة" not in rewards
    assert "باشگاه چای" in page.get_by_test_id("membership-panel").inner_text()
    desktop.screenshot("content-rewards-page-fa")
    assert desktop.csp_violations == []
    assert desktop.errors == []


def test_an_arabic_agent_reads_arabic_events_and_starts_from_the_arabic_canned_reply(
    live_server, desktop, shop
):
    merchant, customer = shop
    agent = StaffMemberFactory(merchant=merchant, role="manager", user__full_name="Sam Porter")
    agent.user.language = "ar"
    agent.user.save(update_fields=["language"])
    ticket = feedback_submit(
        merchant=merchant, customer=customer, channel=Channel.PORTAL, kind=Kind.QUESTION,
        subject="Late parcel", body="My parcel is a week late.",
    )  # fmt: skip
    feedback_assign(feedback=ticket, assignee=agent, member=agent)
    feedback_transition(feedback=ticket, to=State.OPEN, member=agent)
    CannedReplyFactory(merchant=merchant, title_en="Parcel delayed", title_ar="تأخر الطرد",
                       body_en="Sorry, {customer_name}: your parcel is late.",
                       body_ar="نعتذر يا {customer_name}، طردك متأخر.")  # fmt: skip

    page = desktop.page
    _sign_in(page, live_server.url, agent.user.email)
    page.goto(f"{live_server.url}/feedback/{ticket.pk}/")
    thread = page.get_by_test_id("thread")
    thread.wait_for()
    assert page.locator("html").get_attribute("dir") == "rtl"
    lines = thread.inner_text()
    # The event lines in Arabic (assigned; moved New → Open), never the English sentences.
    assert "assigned the ticket" not in lines
    assert "Sam Porter" in lines
    assert "مفتوحة" in lines  # Open
    canned = page.get_by_label("رد جاهز")
    canned.select_option(label="تأخر الطرد")
    page.wait_for_function(
        "text => document.getElementById('reply-body').value === text",
        arg="نعتذر يا Rana، طردك متأخر.",
    )
    desktop.screenshot("content-ticket-ar")
    assert desktop.csp_violations == []
    assert desktop.errors == []


def test_an_owner_puts_the_shop_on_the_solar_hijri_calendar(live_server, desktop, shop):
    """Settings → Calendar → Solar Hijri: the owner's customer page and the customer's
    Arabic rewards page then date everything in that calendar."""
    import jdatetime
    from django.utils.timezone import localtime

    merchant, customer = shop
    owner = StaffMemberFactory(merchant=merchant, role="owner")
    solar = jdatetime.date.fromgregorian(date=localtime(customer.first_order_at,
                                                        merchant.zone).date())  # fmt: skip
    page = desktop.page
    _sign_in(page, live_server.url, owner.user.email)
    page.goto(f"{live_server.url}/merchants/settings/")
    page.get_by_label("Calendar").select_option(label="Solar Hijri (Persian)")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url(f"{live_server.url}/merchants/settings/")
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    stats = page.get_by_test_id("customer-stats").inner_text()
    assert f"{solar.month:02d}/{solar.day:02d}/{solar.year}" in stats  # First order, m/d/Y
    desktop.screenshot("calendar-customer-solar-hijri")

    page.goto(live_server.url + storefront_link_make(customer=customer))
    history = page.get_by_test_id("history-panel")
    history.wait_for()
    # Arabic's short date, day‏/month‏/year, in the Solar Hijri calendar.
    assert f"{solar.day:02d}\u200f/{solar.month:02d}\u200f/{solar.year}" in history.inner_text()
    assert str(localtime(customer.first_order_at).year) not in history.inner_text()
    assert desktop.csp_violations == []
    assert desktop.errors == []
