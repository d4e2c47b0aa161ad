"""A marketer writes a win-back campaign, watching the live count of who would enter and
be held out change as she narrows it, starts it, sees today's entries on its report, and
pauses it; an older campaign's report shows a lift the held-out group makes clear, in
words, in the table and on the chart, and on the list at a glance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.timezone import now

from campaigns.models import Campaign, CampaignEntry, Message
from campaigns.services.campaigns import campaign_enter
from customers.models import Order
from tests.campaigns.factories import TemplateFactory, zone_in_its_day
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import TEST_PASSWORD, MerchantFactory, StaffMemberFactory

pytestmark = [pytest.mark.needs_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(db):
    merchant = MerchantFactory(name="Saffron Tea", slug="saffron-tea",
                               timezone=zone_in_its_day())  # fmt: skip
    for n in range(30):
        days = 100 if n < 20 else 40  # 20 quiet for 100 days, 10 for 40
        last = now() - timedelta(days=days)
        CustomerFactory(merchant=merchant, marketing_consent=True, orders_count=1,
                        last_order_at=last, first_order_at=last, external_id=f"q{n}")  # fmt: skip
    TemplateFactory(merchant=merchant, name="We miss you")
    return merchant, StaffMemberFactory(merchant=merchant, role="marketer")


def _an_older_campaign_that_worked(merchant) -> Campaign:
    """Entered 40 days ago: 200 messaged of whom 60 ordered within 5 days, 100 held out of
    whom 10 did: 30% against 10%."""
    campaign = Campaign.objects.create(merchant=merchant, name="Spring win-back",
                                       kind="winback", state="done")  # fmt: skip
    start = now() - timedelta(days=40)
    people = CustomerFactory.create_batch(300, merchant=merchant, marketing_consent=True)
    entries = CampaignEntry.objects.bulk_create([
        CampaignEntry(merchant=merchant, campaign=campaign, customer=c, entered_on=start.date(),
                      entered_at=start, starts_at=start, held_out=n >= 200)
        for n, c in enumerate(people)
    ])  # fmt: skip
    Message.objects.bulk_create([
        Message(merchant=merchant, customer_id=e.customer_id, kind="marketing", campaign=campaign,
                entry=e, key=f"old:{e.pk}", state="delivered", sent_at=start, delivered_at=start)
        for e in entries if not e.held_out
    ])  # fmt: skip
    buyers = people[:60] + people[200:210]
    Order.objects.bulk_create([
        Order(merchant=merchant, customer=c, source="api", external_id=f"back-{c.pk}",
              placed_at=start + timedelta(days=2), currency="USD", total="40.00")
        for c in buyers
    ])  # fmt: skip
    return campaign


def test_a_win_back_from_the_form_to_its_lift(live_server, desktop, shop):
    merchant, member = shop
    base = live_server.url
    page = desktop.page
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    page.get_by_test_id("sidebar").get_by_role("link", name="Win-back").click()
    page.get_by_role("link", name="New campaign").click()
    form = page.get_by_test_id("campaign-form")
    form.locator("input[name=name]").fill("Come back")
    form.locator("input[name=days_since]").fill("30")
    form.locator("input[name=days_since]").blur()
    audience = page.get_by_test_id("campaign-audience")
    audience.filter(has_text="30 customers would enter today").wait_for()
    form.locator("input[name=days_since]").fill("90")
    form.locator("input[name=days_since]").blur()
    form.locator("input[name=holdout_percent]").fill("10")
    form.locator("input[name=holdout_percent]").blur()
    audience.filter(has_text="20 customers would enter today, 2 of them held out.").wait_for()
    form.locator("input[name=holdout_percent]").fill("0")
    form.locator("input[name=holdout_percent]").blur()
    page.get_by_test_id("no-holdout-warning").wait_for()
    form.locator("input[name=holdout_percent]").fill("10")
    form.locator("input[name=holdout_percent]").blur()
    form.locator("select[name=step1_template]").select_option(label="We miss you")
    desktop.screenshot("campaign-form")
    form.get_by_role("button", name="Save").click()
    page.get_by_test_id("campaign-state").filter(has_text="Draft").wait_for()
    page.get_by_role("button", name="Start").click()
    page.get_by_test_id("campaign-state").filter(has_text="Running").wait_for()

    campaign = Campaign.objects.get(merchant=merchant, name="Come back")
    detail = campaign_enter(campaign_id=campaign.pk)  # the pass beat runs every 15 minutes
    page.reload()
    assert page.get_by_test_id("count-entered").inner_text() == str(detail["entered"]) == "20"
    assert page.get_by_test_id("count-held-out").inner_text() == str(detail["held_out"])
    assert "No one has been in the campaign for 5 days yet" in page.get_by_test_id(
        "campaign-verdict").inner_text()  # fmt: skip
    page.get_by_role("button", name="Pause").click()
    page.get_by_test_id("campaign-state").filter(has_text="Paused").wait_for()

    _an_older_campaign_that_worked(merchant)
    page.get_by_test_id("campaigns-nav").get_by_role("link", name="Win-back and broadcasts").click()
    row = page.get_by_test_id("campaign-row").filter(has_text="Spring win-back")
    assert "Clear lift" in row.get_by_test_id("campaign-lift").inner_text()
    assert "20.0 points" in row.get_by_test_id("campaign-lift").inner_text()
    row.get_by_role("link", name="Spring win-back").click()
    verdict = page.get_by_test_id("campaign-verdict")
    verdict.filter(has_text="converted 20.0 points more than those held out").wait_for()
    window = page.get_by_test_id("horizon-5")
    assert "30.0%" in window.inner_text()
    assert "10.0%" in window.inner_text()
    chart = page.get_by_test_id("campaign-chart")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector("
                           "'[data-testid=campaign-chart]'))")  # fmt: skip
    assert chart.bounding_box()["height"] > 100
    desktop.screenshot("campaign-report")
    with page.expect_download() as download:
        page.get_by_test_id("campaign-export").click()
    assert download.value.suggested_filename.endswith("-report.csv")
    assert desktop.csp_violations == []
    assert desktop.errors == []
