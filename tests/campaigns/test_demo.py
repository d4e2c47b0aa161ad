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
