from __future__ import annotations

import pytest
from django.core.management import call_command

from campaigns.models import CodeUse, Promotion
from campaigns.services.codes import promotion_counts

pytestmark = pytest.mark.django_db


def test_the_demo_has_three_promotions_used_through_the_services_and_seeding_again_adds_none():
    call_command("seed_demo", quiet_signins=True)
    promotions = {p.kind: p for p in Promotion.objects.filter(merchant__slug="demo-store")}
    assert {p.name for p in promotions.values()} == {
        "Gold week: 15% off", "10 off your next express order", "Free shipping over 40"
    }  # fmt: skip
    assert promotions["percent"].name_ar == "أسبوع الذهبي: خصم 15%"
    assert promotions["percent"].eligibility == "tiers"
    assert promotions["percent"].code_set.count() >= 200
    assert promotions["free_shipping"].code_set.get().code == "SHIPFREE"
    redeemed = CodeUse.objects.filter(state="redeemed")
    assert redeemed.filter(promotion=promotions["percent"]).exists()
    assert redeemed.filter(promotion=promotions["free_shipping"]).exists()
    assert redeemed.filter(order__isnull=False).count() == redeemed.count()
    for promotion in promotions.values():
        promotion.refresh_from_db()
        counts = promotion_counts(promotion=promotion)
        assert (promotion.taken, promotion.committed) == (counts["taken"], counts["committed"])
    uses = CodeUse.objects.count()
    call_command("seed_demo", quiet_signins=True)
    assert CodeUse.objects.count() == uses


def test_the_demo_writes_its_mail_in_four_languages_and_sends_recent_thank_yous():
    from campaigns.models import Flow, Message, MessageEvent, MessageTemplate

    call_command("seed_demo", quiet_signins=True)
    templates = MessageTemplate.objects.filter(merchant__slug="demo-store")
    assert templates.count() == 6
    assert all(t.subject_ar and t.subject_fa and t.subject_ru for t in templates)
    assert set(Flow.objects.filter(enabled=True).values_list("trigger", flat=True)) == {
        "post_purchase", "shipped", "welcome", "points_expiring", "tier_down",
        "second_order"}  # fmt: skip
    sent = Message.objects.filter(state__in=["sent", "delivered"])
    assert sent.count() >= 6
    assert MessageEvent.objects.filter(kind="clicked").exists()
    assert sent.filter(delivered_at__isnull=False).count() == sent.count()
    messages = Message.objects.count()
    call_command("seed_demo", quiet_signins=True)
    assert Message.objects.count() == messages


def test_the_demo_has_a_win_back_campaign_with_a_report_and_seeding_again_adds_none():
    from campaigns.models import Campaign, CampaignEntry
    from campaigns.reports import campaign_report

    call_command("seed_demo", quiet_signins=True)
    campaign = Campaign.objects.get(merchant__slug="demo-store")
    assert campaign.state == "active"
    entries = CampaignEntry.objects.filter(campaign=campaign)
    assert entries.filter(held_out=False).exists()
    report = campaign_report(campaign=campaign)
    assert report.entered == entries.count()
    assert report.sent > 0
    assert report.window.messaged.customers == report.messaged  # ten weeks: all in
    call_command("seed_demo", quiet_signins=True)
    assert CampaignEntry.objects.filter(campaign__merchant__slug="demo-store").count() == (
        entries.count()
    )
