"""The staff pages of campaigns: create with the live count of who would enter and be held
out, refusals named on the form, start and pause, the report and its CSV, who may do what."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils.timezone import now

from campaigns.models import Campaign, CampaignEntry, CampaignStep
from campaigns.services.campaigns import campaign_enter
from merchants.models import AuditEvent
from tests.campaigns.factories import TemplateFactory
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiet(merchant):
    long_ago = now() - timedelta(days=120)
    return [
        CustomerFactory(merchant=merchant, marketing_consent=True, orders_count=1,
                        last_order_at=long_ago, first_order_at=long_ago)
        for _n in range(40)
    ]  # fmt: skip


def _form(template, **extra):
    return {
        "name": "Come back", "kind": "winback", "selection": "days", "days_since": "90",
        "gap_multiple": "2.00", "consent_only": "on", "reentry_days": "180",
        "holdout_percent": "10", "step1_template": template.pk, "step1_delay": "0",
        "step2_delay": "3", "step3_delay": "3", **extra,
    }  # fmt: skip


def test_a_marketer_creates_a_campaign_seeing_who_would_enter(client, marketer, merchant, quiet):
    template = TemplateFactory(merchant=merchant, name="We miss you")
    CustomerFactory(merchant=merchant, marketing_consent=True, orders_count=1,
                    last_order_at=now() - timedelta(days=10))  # fmt: skip
    live = client.get("/campaigns/campaigns/audience/", _form(template, holdout_percent="0"))
    text = live.content.decode()
    assert "40 customers would enter today, 0 of them held out." in text
    assert 'data-testid="no-holdout-warning"' in text
    response = client.post("/campaigns/campaigns/new/", _form(template))
    campaign = Campaign.objects.get(merchant=merchant)
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/campaigns/{campaign.pk}/"
    assert list(
        CampaignStep.objects.filter(campaign=campaign).values_list("template", flat=True)
    ) == [template.pk]
    page = client.get(f"/campaigns/campaigns/{campaign.pk}/edit/").content.decode()
    assert "40 customers would enter today" in page
    assert AuditEvent.objects.filter(action="campaigns.campaign_saved").exists()


def test_refusals_are_named_on_the_form_and_nothing_is_saved(client, marketer, merchant):
    template = TemplateFactory(merchant=merchant)
    theirs = TemplateFactory(merchant=MerchantFactory())
    for data, words in [
        (_form(template, holdout_percent="80"), "50"),
        (_form(template, step1_template=theirs.pk), "Select a valid choice"),
        (_form(template, step1_template=""), "This field is required"),
        (
            _form(template, kind="broadcast", step2_template=template.pk),
            "A broadcast is one message",
        ),
        (_form(template, selection="predicted"), "Select a valid choice"),
    ]:
        response = client.post("/campaigns/campaigns/new/", data)
        assert response.status_code == 200
        assert words in response.content.decode()
    assert not Campaign.objects.exists()


def test_start_pause_and_the_report(client, marketer, merchant, quiet):
    template = TemplateFactory(merchant=merchant)
    client.post("/campaigns/campaigns/new/", _form(template))
    campaign = Campaign.objects.get(merchant=merchant)
    client.post(f"/campaigns/campaigns/{campaign.pk}/change/", {"move": "start"})
    campaign.refresh_from_db()
    assert campaign.state == "active"
    campaign_enter(campaign_id=campaign.pk, at=now().replace(hour=12))
    page = client.get(f"/campaigns/campaigns/{campaign.pk}/").content.decode()
    entered = CampaignEntry.objects.filter(campaign=campaign)
    assert f'data-testid="count-entered">{entered.count()}<' in page
    assert f'data-testid="count-held-out">{entered.filter(held_out=True).count()}<' in page
    assert "No one has been in the campaign for 5 days yet" in page
    assert 'id="campaign-chart-data"' in page
    listing = client.get("/campaigns/campaigns/").content.decode()
    assert "Come back" in listing
    client.post(f"/campaigns/campaigns/{campaign.pk}/change/", {"move": "pause"})
    campaign.refresh_from_db()
    assert campaign.state == "paused"
    refused = client.post(f"/campaigns/campaigns/{campaign.pk}/change/", {"move": "pause"},
                          follow=True)  # fmt: skip
    assert "be changed that way now" in refused.content.decode()
    export = client.get(f"/campaigns/campaigns/{campaign.pk}/report.csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [r["group"] for r in rows[:2]] == ["messaged", "held_out"]
    assert AuditEvent.objects.filter(action="campaigns.report_export").exists()


def test_an_analyst_reads_the_report_but_changes_nothing(client, merchant):
    campaign = Campaign.objects.create(merchant=merchant, name="Back", kind="winback")
    analyst = StaffMemberFactory(merchant=merchant, role="analyst")
    client.force_login(analyst.user)
    assert client.get(f"/campaigns/campaigns/{campaign.pk}/").status_code == 200
    assert client.get("/campaigns/campaigns/new/").status_code == 403
    client.post(f"/campaigns/campaigns/{campaign.pk}/change/", {"move": "start"})
    campaign.refresh_from_db()
    assert campaign.state == "draft"
