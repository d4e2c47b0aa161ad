"""A customer opens the magic link from their email, sees their balance and how far Gold
is, redeems a reward and sees the code and the history line, switches to Persian; a used
or stale link is refused kindly. On a 360 by 740 phone and on a desktop."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils.timezone import now

from customers.models import Customer
from customers.services import CustomerData, order_ingest
from customers.services.portal import storefront_link_make
from loyalty.models import PointsEntry, Redemption
from loyalty.services.ledger import account_for, account_locked, entry_write
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, RewardFactory, TierFactory
from tests.merchants.factories import MerchantFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(db):
    merchant = MerchantFactory(name="Saffron Tea", slug="saffron-tea", brand_color="#7a3e9d")
    ProgramFactory(merchant=merchant, point_value=Decimal("0.01"), pending_days=14)
    TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100.00"))
    TierFactory(merchant=merchant, name="Gold", threshold=Decimal("500.00"))
    RewardFactory(merchant=merchant, name="5 off your order", points_cost=500)
    RewardFactory(merchant=merchant, name="Teapot", points_cost=5000)
    person = CustomerData(external_id="rana", email="rana@example.test", first_name="Rana")
    order_ingest(merchant=merchant, data=order_data("A-100", customer=person, total="320.00"))
    customer = Customer.objects.get(merchant=merchant, external_id="rana")
    account = account_for(customer=customer)
    from django.db import transaction

    with transaction.atomic():
        entry_write(account=account_locked(account=account), kind=PointsEntry.Kind.EARN,
                    points=1000, key="welcome", note="Welcome gift",
                    expires_at=None)  # fmt: skip
    return merchant, customer


def _emailed_link(page, base: str, merchant) -> str:
    """Asks for a link on the sign-in page; the Celery task that emails it runs inline."""
    from config.celery import app

    mail.outbox.clear()
    app.conf.task_always_eager = True
    try:
        page.goto(f"{base}/r/{merchant.slug}/")
        page.get_by_label("Your email").fill("rana@example.test")
        page.get_by_role("button", name="Email me a sign-in link").click()
        page.get_by_test_id("link-sent").wait_for()
    finally:
        app.conf.task_always_eager = False
    (message,) = mail.outbox
    return re.sub(r"^https?://[^/]+", base, re.search(r"https?://\S+", message.body).group(0))


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_a_customer_signs_in_redeems_and_reads_it_in_persian(live_server, request, device, shop):
    merchant, customer = shop
    watch = request.getfixturevalue(device)
    page = watch.page
    link = _emailed_link(page, live_server.url, merchant)

    page.goto(link)
    page.get_by_test_id("continue").click()
    page.get_by_test_id("points-panel").wait_for()
    assert page.get_by_test_id("points-available").inner_text() == "1,000"
    assert "Worth 10.00 USD" in page.get_by_test_id("points-panel").inner_text()
    assert "Your tier: Silver" in page.get_by_test_id("tier-name").inner_text()
    assert (
        "Spend 180.00 USD more to reach Gold." in page.get_by_test_id("tier-progress").inner_text()
    )
    # Nothing wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    watch.screenshot(f"rewards-page-{device}")

    reward = page.get_by_test_id("reward").filter(has_text="5 off your order")
    # The first press asks; nothing is spent until the customer says yes.
    ask = reward.get_by_text("Redeem", exact=True)
    confirm = reward.get_by_role("button", name="Yes, redeem")
    if device == "desktop":
        ask.focus()  # by keyboard
        page.keyboard.press("Enter")
        confirm.wait_for()
        assert "Spend your points on 5 off your order?" in reward.inner_text()
        confirm.focus()
        page.keyboard.press("Enter")
    else:
        ask.click()
        confirm.click()
    page.get_by_test_id("issued-code").wait_for()
    code = Redemption.objects.get(account__customer=customer).code
    assert code in page.get_by_test_id("issued-code").inner_text()
    page.get_by_test_id("points-available").filter(has_text="500").wait_for()
    history = page.get_by_test_id("history-panel")
    history.get_by_text("Redeemed · 5 off your order").wait_for()
    assert "-500" in history.inner_text()
    watch.screenshot(f"rewards-page-{device}-redeemed")

    page.get_by_test_id("language-menu").get_by_role("button").click()
    page.get_by_role("button", name="فارسی").click()
    page.wait_for_selector('html[dir="rtl"][lang="fa"]')
    customer.refresh_from_db()
    assert customer.language == "fa"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    watch.screenshot(f"rewards-page-{device}-persian")
    assert watch.csp_violations == []
    assert watch.errors == []


def test_a_used_or_stale_link_is_refused_kindly(live_server, phone, shop):
    merchant, customer = shop
    page = phone.page
    link = _emailed_link(page, live_server.url, merchant)
    page.goto(link)
    page.get_by_test_id("continue").click()
    page.get_by_test_id("points-panel").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You're signed out.").wait_for()

    page.goto(link)
    refused = page.get_by_test_id("link-refused")
    assert "already used" in refused.inner_text()
    # The page offers a new link right there.
    assert page.get_by_role("button", name="Email me a sign-in link").is_visible()
    phone.screenshot("rewards-link-used")

    stale = storefront_link_make(customer=customer, at=now() - timedelta(minutes=11))
    page.goto(live_server.url + stale)
    assert "too old" in page.get_by_test_id("link-refused").inner_text()
    page.goto(f"{live_server.url}/r/{merchant.slug}/")
    assert page.get_by_test_id("points-panel").count() == 0
    phone.screenshot("rewards-link-stale")
