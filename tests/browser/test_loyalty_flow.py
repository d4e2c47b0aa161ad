"""The support agent adjusts a customer's points with a reason; the owner adds a tier and,
after a recalculation run by a real Celery worker, sees customers move into it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from customers.models import Customer
from loyalty.models import PointsAccount, Tier
from tests.browser.test_staff_shell import _sign_in

pytestmark = [
    pytest.mark.needs_chromium,
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]


def test_support_adjusts_points_and_the_owner_adds_a_tier_customers_move_into(
    live_server, desktop, browser, worker_broker
):
    call_command("seed_demo", quiet_signins=True)
    account = (
        PointsAccount.objects.filter(merchant__slug="demo-store", customer__external_id__regex=
                                     r"^demo-\d+$").order_by("-available").first()
    )  # fmt: skip
    customer = Customer.objects.get(pk=account.customer_id)
    page = desktop.page
    _sign_in(page, live_server.url, email="support@demo.test")
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    panel = page.get_by_test_id("loyalty-panel")
    panel.wait_for()
    before = int(page.get_by_test_id("points-available").inner_text().replace(",", ""))
    assert before == account.available
    adjust = page.get_by_test_id("adjust-form")
    adjust.get_by_label("Points (negative to deduct)").fill("50")
    adjust.get_by_label("Reason").fill("Parcel arrived late")
    adjust.get_by_role("button", name="Adjust").click()
    page.get_by_test_id("points-available").filter(has_text=f"{before + 50:,}").wait_for()
    assert "Parcel arrived late" in page.get_by_test_id("points-ledger").inner_text()
    assert page.get_by_test_id("tier-form").count() == 0  # support can't set tiers
    desktop.screenshot("loyalty-support-adjusts")
    assert desktop.csp_violations == []

    owner_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    owner = owner_context.new_page()
    _sign_in(owner, live_server.url)
    owner.get_by_test_id("sidebar").get_by_role("link", name="Loyalty").click()
    owner.get_by_role("link", name="Tiers").click()
    owner.get_by_role("link", name="Add").click()
    owner.get_by_label("Name · English").fill("Diamond")
    owner.get_by_label("Threshold").fill("400")
    owner.get_by_label("Earning multiplier").fill("1.75")
    owner.get_by_role("button", name="Save").click()
    diamond = owner.get_by_role("row").filter(has_text="Diamond")
    assert diamond.get_by_test_id("tier-holders").inner_text() == "0"
    owner.get_by_role("button", name="Recalculate tiers now").click()
    # The POST redirects back with a notice; reloading before that lands races the navigation.
    owner.get_by_text("Tiers are being recalculated").wait_for()
    expected = PointsAccount.objects.none()
    for _attempt in range(60):
        tier = Tier.objects.get(name="Diamond")
        expected = PointsAccount.objects.filter(tier=tier)
        if expected.exists():
            break
        owner.wait_for_timeout(500)
    owner.reload()
    holders = owner.get_by_role("row").filter(has_text="Diamond").get_by_test_id("tier-holders")
    assert int(holders.inner_text()) == expected.count() > 0
    owner.screenshot(path="test-results/loyalty-owner-tiers.png", full_page=True)
    owner_context.close()
