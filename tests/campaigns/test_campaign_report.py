"""A campaign's report on hand-built entries, messages and orders, every figure worked out
by hand in the test: both groups over the attribution window and 30/60/90 days, the
discount its codes gave, what each order is credited to, and the CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from campaigns.models import Campaign, CampaignEntry, CodeUse, Message, SendingSettings
from campaigns.reports import campaign_report, report_csv
from customers.models import Order
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2027, 1, 1, 10, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@pytest.fixture
def shop():
    return MerchantFactory(name="Kashi Tea", timezone="UTC")


def _order(shop, customer, at, total, status="paid"):
    Order.objects.create(merchant=shop, customer=customer, source="api", placed_at=at,
                         external_id=f"o-{customer.pk}-{at.timestamp()}", currency="USD",
                         total=Decimal(total), status=status)  # fmt: skip


def _enter(shop, campaign, name, *, held_out=False, clicked=False, code=""):
    customer = CustomerFactory(merchant=shop, external_id=name, marketing_consent=True)
    entry = CampaignEntry.objects.create(
        merchant=shop, campaign=campaign, customer=customer, entered_on=T0.date(),
        entered_at=T0, starts_at=T0, held_out=held_out,
    )  # fmt: skip
    if not held_out:
        Message.objects.create(
            merchant=shop, customer=customer, kind="marketing", campaign=campaign, entry=entry,
            key=f"campaign:{campaign.pk}:{entry.pk}:1", state="delivered", sent_at=T0,
            delivered_at=T0 + HOUR, clicked_at=T0 + 2 * HOUR if clicked else None, code=code,
        )  # fmt: skip
    return customer


@pytest.fixture
def report_data(shop):
    campaign = Campaign.objects.create(merchant=shop, name="Come back", kind="winback",
                                       state="active")  # fmt: skip
    promotion = PromotionFactory(merchant=shop)
    code = CodeFactory(promotion=promotion, code="BACK-ADA")
    ada = _enter(shop, campaign, "ada", clicked=True, code="BACK-ADA")
    bea = _enter(shop, campaign, "bea")
    cy = _enter(shop, campaign, "cy")
    dan = _enter(shop, campaign, "dan")
    gil = _enter(shop, campaign, "gil")
    eve = _enter(shop, campaign, "eve", held_out=True)
    _enter(shop, campaign, "fay", held_out=True)
    _order(shop, ada, T0 - 30 * DAY, "500.00")  # before she entered: not counted
    _order(shop, ada, T0 + 2 * DAY, "40.00")  # clicked, then ordered: credited
    CodeUse.objects.create(merchant=shop, promotion=promotion, code=code, customer=ada, slot=1,
                           state="redeemed", discount=Decimal("5.00"), currency="USD",
                           redeemed_at=T0 + 2 * DAY)  # fmt: skip
    _order(shop, gil, T0 + DAY, "30.00")  # received, not clicked
    _order(shop, bea, T0 + 10 * DAY, "60.00")  # past the 5-day window
    _order(shop, cy, T0 + 45 * DAY, "100.00")
    _order(shop, dan, T0 + DAY, "80.00", status="cancelled")  # not counted
    _order(shop, eve, T0 + 3 * DAY, "20.00")
    return campaign


def test_both_groups_over_each_horizon_by_hand(report_data):
    report = campaign_report(campaign=report_data, at=T0 + 100 * DAY)
    assert (report.entered, report.held_out, report.messaged) == (7, 2, 5)
    assert (report.sent, report.delivered, report.clicked, report.skipped) == (5, 5, 1, 0)
    window, d30, d60, d90 = report.horizons
    assert (window.days, d30.days, d60.days, d90.days) == (5, 30, 60, 90)
    # Window: Ada (40) and Gil (30) of 5 messaged; Eve (20) of 2 held out.
    assert (window.messaged.customers, window.messaged.converted) == (5, 2)
    assert window.messaged.revenue == Decimal("70.00")
    assert window.messaged.per_customer == Decimal("14.00")
    assert (window.held_out.customers, window.held_out.converted) == (2, 1)
    assert window.held_out.per_customer == Decimal("10.00")
    assert window.conversion.estimate == pytest.approx(0.4 - 0.5)
    # 70 spent, 5 * 10 expected at the held-out rate, 5 of discount: 15.
    assert window.messaged.discount == Decimal("5.00")
    assert window.incremental_revenue == Decimal("15.00")
    assert window.incremental_conversions == pytest.approx(-0.5)
    # 30 days: Bea's 60 joins; 60 days: Cy's 100.
    assert (d30.messaged.converted, d30.messaged.revenue) == (3, Decimal("130.00"))
    assert (d60.messaged.converted, d60.messaged.revenue) == (4, Decimal("230.00"))
    assert d60.incremental_revenue == Decimal("175.00")  # 230 - 5 * 10 - 5
    assert (d90.messaged.converted, d90.held_out.converted) == (4, 1)
    assert window.verdict == "too_small"  # 2 held out can't tell anything
    # Credited by click (the default): Ada's order only.
    assert (report.attributed_orders, report.attributed_revenue) == (1, Decimal("40.00"))


def test_a_horizon_counts_only_the_entries_it_has_passed(report_data):
    report = campaign_report(campaign=report_data, at=T0 + 20 * DAY)
    window, d30, _d60, _d90 = report.horizons
    assert window.messaged.customers == 5
    assert d30.messaged.customers == d30.held_out.customers == 0
    assert d30.conversion is None
    assert d30.incremental_revenue is None


def test_credit_by_receipt_takes_in_orders_without_a_click(shop, report_data):
    SendingSettings.objects.create(merchant=shop, attribution_by="received")
    report = campaign_report(campaign=report_data, at=T0 + 100 * DAY)
    assert (report.attributed_orders, report.attributed_revenue) == (2, Decimal("70.00"))


def test_an_order_is_credited_once_to_the_last_message_clicked(shop, report_data):
    """A second campaign's message Ada clicked later, still before her order, takes the
    credit from the first."""
    ada = report_data.entries.get(customer__external_id="ada").customer
    later = Campaign.objects.create(merchant=shop, name="Spring", kind="broadcast", state="done")
    Message.objects.create(merchant=shop, customer=ada, kind="marketing", campaign=later,
                           key="later", state="delivered", sent_at=T0 + DAY,
                           delivered_at=T0 + DAY, clicked_at=T0 + DAY + HOUR)  # fmt: skip
    assert campaign_report(campaign=report_data, at=T0 + 100 * DAY).attributed_orders == 0
    assert campaign_report(campaign=later, at=T0 + 100 * DAY).attributed_orders == 1


def test_the_chart_shows_cumulative_conversion_of_both_groups(report_data):
    chart = campaign_report(campaign=report_data, at=T0 + 100 * DAY).chart
    messaged, held = chart["series"]
    assert chart["labels"][:4] == [0, 1, 2, 3]
    assert len(chart["labels"]) == 91
    assert messaged["values"][:3] == [0.0, 20.0, 40.0]  # Gil on day 1, Ada on day 2
    assert messaged["values"][45] == 80.0  # and Bea (day 10), Cy (day 45)
    assert held["values"][2:4] == [0.0, 50.0]  # Eve on day 3


def test_the_csv_has_a_row_per_horizon_and_group(report_data):
    rows = list(csv.DictReader(io.StringIO(report_csv(
        campaign_report(campaign=report_data, at=T0 + 100 * DAY)))))  # fmt: skip
    assert len(rows) == 8
    first = rows[0]
    assert (first["horizon_days"], first["group"], first["customers"]) == ("5", "messaged", "5")
    assert first["conversion_rate"] == "0.4000"
    assert first["conversion_difference"] == "-0.1000"
    assert first["incremental_revenue"] == "15.00"
    assert rows[1]["group"] == "held_out"
    assert rows[1]["revenue_per_customer"] == "10.00"
