"""A marketer makes a Gold-only promotion with unique codes and sees who may use it; a Gold
customer finds it on her rewards page in Arabic, gets her code and the shop's checkout
redeems it; a Silver customer never sees it; the marketer's report counts the use and
draws its chart."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal

import pytest

from campaigns.models import CodeUse, Promotion
from customers.services.portal import storefront_link_make
from loyalty.models import PointsAccount
from merchants.api_keys import api_key_create
from tests.browser.conftest import PageWatch
from tests.customers.factories import CustomerFactory
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.merchants.factories import TEST_PASSWORD, MerchantFactory, StaffMemberFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(db):
    merchant = MerchantFactory(name="Saffron Tea", slug="saffron-tea")
    ProgramFactory(merchant=merchant)
    silver = TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100.00"))
    gold = TierFactory(merchant=merchant, name="Gold", threshold=Decimal("500.00"))
    people = {}
    for n, (name, tier, language) in enumerate(
        [("Noor", gold, "ar"), ("Sam", silver, "en"), ("Lena", silver, "en")]
    ):
        customer = CustomerFactory(merchant=merchant, first_name=name, language=language,
                                   external_id=f"shop-{name.lower()}")  # fmt: skip
        PointsAccount.objects.create(merchant=merchant, customer=customer, tier=tier,
                                     referral_code=f"REF{n:05d}")  # fmt: skip
        people[name] = customer
    member = StaffMemberFactory(merchant=merchant, role="marketer")
    return merchant, people, member


def _checkout_redeems(base: str, merchant, code: str, customer) -> dict:
    """What the shop's checkout sends: the storefront API over real HTTP, with a key."""
    _key, raw = api_key_create(merchant=merchant, name="checkout", scopes=["redeem"])
    body = {"customer": {"external_id": customer.external_id},
            "cart": {"subtotal": "80.00", "shipping": "5.00", "lines": [], "other_codes": []},
            "order_external_id": "W-1001"}  # fmt: skip
    request = urllib.request.Request(
        f"{base}/api/v1/promotions/codes/{code}/redeem", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
        method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_a_gold_only_offer_from_the_form_to_her_checkout(live_server, desktop, browser, shop):
    merchant, people, member = shop
    base = live_server.url
    page = desktop.page
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    page.get_by_test_id("sidebar").get_by_role("link", name="Promotions").click()
    page.get_by_role("link", name="New promotion").click()
    form = page.get_by_test_id("promotion-form")
    form.get_by_label("Name · English").fill("Gold week")
    form.get_by_label("Name · Arabic").fill("أسبوع الذهب")
    form.get_by_label("Kind").select_option("percent")
    form.get_by_label("Value").fill("15")
    count = page.get_by_test_id("eligible-count")
    assert "3 customers may use it today." in count.inner_text()
    form.get_by_label("Who may use it").select_option("tiers")
    form.get_by_label("Gold").check()
    count.filter(has_text="1 customer may use it today.").wait_for()
    form.locator("select[name=codes]").select_option("unique")
    desktop.screenshot("promotion-form-gold-only")
    form.get_by_role("button", name="Save").click()
    page.get_by_test_id("promotion-status").filter(has_text="Running").wait_for()
    promotion = Promotion.objects.get(merchant=merchant)
    assert (promotion.eligibility, [t.name for t in promotion.tiers.all()]) == ("tiers", ["Gold"])

    # Noor, Gold, reads her rewards page in Arabic, right to left.
    noor_context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ar")
    noor_watch = PageWatch(noor_context.new_page())
    noor = noor_watch.page
    noor.goto(base + storefront_link_make(customer=people["Noor"]))
    offers = noor.get_by_test_id("offers-panel")
    offers.wait_for()
    assert noor.locator("html").get_attribute("dir") == "rtl"
    offer = offers.get_by_test_id("offer")
    assert "أسبوع الذهب" in offer.inner_text()
    assert offer.get_by_test_id("offer-exclusive").is_visible()
    offer.get_by_role("button").click()
    issued = noor.get_by_test_id("offer-issued")
    issued.wait_for()
    code = offers.get_by_test_id("offer-code").inner_text().strip()
    assert code in issued.inner_text()
    noor_watch.screenshot("promotion-offer-ar")
    # Pressed again after a reload: the same code, not a second one.
    noor.reload()
    assert noor.get_by_test_id("offer-code").inner_text().strip() == code

    answer = _checkout_redeems(base, merchant, code, people["Noor"])
    assert (answer["accepted"], answer["discount"]) == (True, "12.00")
    assert CodeUse.objects.get(state="redeemed").code.code == code
    noor.reload()
    noor.get_by_test_id("points-panel").wait_for()
    assert noor.get_by_test_id("offers-panel").count() == 0, "used up: she has no uses left"
    assert noor_watch.csp_violations == []
    assert noor_watch.errors == []
    noor_context.close()

    # Sam, Silver, sees no offer at all.
    sam_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    sam = sam_context.new_page()
    sam.goto(base + storefront_link_make(customer=people["Sam"]))
    sam.get_by_test_id("points-panel").wait_for()
    assert sam.get_by_test_id("offers-panel").count() == 0
    assert "Gold week" not in sam.content()
    sam_context.close()

    # The marketer's report counts it and draws the day's chart.
    page.reload()
    assert page.get_by_test_id("report-redeemed").inner_text().startswith("1")
    assert "12.00" in page.get_by_test_id("report-discount").inner_text()
    chart = page.get_by_test_id("report-chart")
    chart.wait_for()
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector("
                           "'[data-testid=report-chart]')) !== undefined")  # fmt: skip
    assert chart.bounding_box()["height"] > 100
    desktop.screenshot("promotion-report")
    assert desktop.csp_violations == []
    assert desktop.errors == []
