from __future__ import annotations

import pytest
from django.core.management import call_command

from loyalty.models import (
    EarningRule,
    Membership,
    MembershipPlan,
    PointsAccount,
    PointsEntry,
    Redemption,
    Referral,
    Reward,
    Tier,
)
from loyalty.services.schedule import accounts_mismatched

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        PointsEntry.objects.count(),
        Redemption.objects.count(),
        Membership.objects.count(),
        Referral.objects.count(),
        list(PointsAccount.objects.order_by("pk").values_list("available", "pending", "tier_id")),
    )


def test_the_demo_program_runs_on_the_real_ledger_and_seeding_again_changes_nothing():
    call_command("seed_demo", quiet_signins=True)
    first = _snapshot()
    assert Tier.objects.filter(merchant__slug="demo-store").count() == 4
    assert Reward.objects.filter(merchant__slug="demo-store").count() == 5
    assert MembershipPlan.objects.filter(merchant__slug="demo-store").count() == 2
    assert EarningRule.objects.filter(merchant__slug="demo-store").count() == 6
    # The demo orders earned through the services: one earn entry per order at least.
    assert PointsEntry.objects.filter(kind="earn", order__isnull=False).count() > 100
    assert PointsAccount.objects.exclude(tier=None).exists()
    assert Membership.objects.exists()
    assert Referral.objects.filter(state="flagged").exists()
    assert Referral.objects.filter(state="rewarded").exists()
    assert not accounts_mismatched().exists()
    call_command("seed_demo", quiet_signins=True)
    assert _snapshot() == first
