from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils.timezone import now

from loyalty.models import Membership, MembershipPlan, PointsAccount, Redemption, Referral
from loyalty.services.memberships import memberships_run
from merchants.api_keys import api_key_create
from tests.loyalty.factories import ProgramFactory, RewardFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db
ORDER = {
    "external_id": "1001",
    "placed_at": "2026-05-01T10:00:00Z",
    "currency": "USD",
    "total": "250.00",
    "customer": {"external_id": "ada", "email": "ada@example.test"},
}


@pytest.fixture
def shop():
    shop = MerchantFactory(base_currency="USD")
    ProgramFactory(merchant=shop)
    return shop


@pytest.fixture
def api(client, shop):
    _key, raw = api_key_create(merchant=shop, name="Storefront",
                               scopes=["ingest", "read", "redeem"])  # fmt: skip

    class Api:
        def post(self, path, body=None):
            return client.post(f"/api/v1{path}", json.dumps(body or {}),
                               content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip

        def get(self, path):
            return client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {raw}")

    return Api()


def test_an_order_earns_and_a_redemption_answers_a_code_once(api, shop):
    reward = RewardFactory(merchant=shop, points_cost=200, value=Decimal("10.00"))
    assert api.post("/orders", ORDER).status_code == 201
    status = api.get("/loyalty/customers/ada").json()
    assert status["available_points"] == 250
    assert status["points_value"] == "2.50"

    body = {"customer": {"external_id": "ada"}, "reward_id": reward.pk, "redemption_key": "r1"}
    first = api.post("/loyalty/redemptions", body)
    again = api.post("/loyalty/redemptions", body)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["code"] == first.json()["code"]
    assert first.json()["available_points"] == 50
    assert Redemption.objects.count() == 1
    code = first.json()["code"]
    assert api.post(f"/loyalty/codes/{code}/use", {"order_external_id": "1001"}).status_code == 200
    second_use = api.post(f"/loyalty/codes/{code}/use", {})
    assert second_use.status_code == 400
    assert "already used" in second_use.json()["errors"]["code"][0]


def test_another_merchants_reward_or_customer_is_not_found(api, shop):
    foreign = RewardFactory(merchant=MerchantFactory(), points_cost=1)
    api.post("/orders", ORDER)
    body = {"customer": {"external_id": "ada"}, "reward_id": foreign.pk, "redemption_key": "r"}
    assert api.post("/loyalty/redemptions", body).status_code == 404
    assert api.get("/loyalty/customers/nobody").status_code == 404
    assert not Redemption.objects.exists()
    not_enough = RewardFactory(merchant=shop, points_cost=10_000)
    body["reward_id"] = not_enough.pk
    response = api.post("/loyalty/redemptions", body)
    assert response.status_code == 400
    assert "Not enough points" in response.json()["errors"]["points"][0]


def test_membership_payments_extend_from_the_anchor_and_the_job_ends_unpaid_ones(api, shop):
    plan = MembershipPlan.objects.create(merchant=shop, name="Tea Club", price=Decimal("9.00"),
                                         currency="USD", period="month", grace_days=5,
                                         recurring_points=100)  # fmt: skip
    payment = {"customer": {"external_id": "ada"}, "plan_id": plan.pk, "external_id": "p-1",
               "amount": "9.00", "currency": "USD", "paid_at": "2026-01-31T12:00:00Z"}  # fmt: skip
    assert api.post("/loyalty/memberships/payments", payment).status_code == 201
    assert api.post("/loyalty/memberships/payments", payment).status_code == 200
    second = api.post(
        "/loyalty/memberships/payments",
        {**payment, "external_id": "p-2", "paid_at": "2026-02-27T12:00:00Z"},
    )
    # Two months from Jan 31: Mar 31, not Feb 28 + 1 month.
    assert second.json()["current_period_end"].startswith("2026-03-31")
    account = PointsAccount.objects.get(customer__external_id="ada")
    assert account.available == 200
    membership = Membership.objects.get()
    end = membership.current_period_end
    with time_machine.travel(end + timedelta(days=1), tick=False):
        assert memberships_run(merchant_id=shop.pk) == {"past_due": 1, "expired": 0}
        assert memberships_run(merchant_id=shop.pk) == {"past_due": 0, "expired": 0}
    with time_machine.travel(end + timedelta(days=6), tick=False):
        assert memberships_run(merchant_id=shop.pk) == {"past_due": 0, "expired": 1}
    membership.refresh_from_db()
    assert membership.state == Membership.State.EXPIRED


def test_a_cancelled_membership_keeps_its_benefits_to_the_period_end(api, shop):
    plan = MembershipPlan.objects.create(merchant=shop, name="Club", price=Decimal("5.00"),
                                         currency="USD", period="year", trial_days=14)  # fmt: skip
    started = api.post("/loyalty/memberships", {"customer": {"external_id": "ada"},
                                                "plan_id": plan.pk})  # fmt: skip
    assert started.json()["state"] == "trialing"
    cancelled = api.post("/loyalty/memberships/ada/cancel")
    assert cancelled.json()["state"] == "cancelled"
    with time_machine.travel(now() + timedelta(days=15), tick=False):
        memberships_run(merchant_id=shop.pk)
    assert Membership.objects.get().state == Membership.State.EXPIRED


def test_a_referred_friend_gets_a_welcome_code_and_the_referrer_earns_on_the_first_order(api, shop):
    program = shop.loyalty_program
    program.friend_reward = RewardFactory(merchant=shop, value=Decimal("5.00"))
    program.referrer_points = 300
    program.pending_days = 30
    program.save()
    api.post("/orders", ORDER)
    code = api.get("/loyalty/customers/ada").json()["referral_code"]

    response = api.post(
        "/loyalty/referrals",
        {"code": code.lower(), "friend": {"external_id": "bob", "email": "bob@example.test"}},
    )
    assert response.status_code == 201
    assert response.json()["state"] == "invited"
    assert response.json()["welcome_code"]
    api.post("/orders", {**ORDER, "external_id": "2001", "placed_at": now().isoformat(),
                         "customer": {"external_id": "bob"}})  # fmt: skip
    ada = PointsAccount.objects.get(customer__external_id="ada")
    assert ada.pending == 300
    assert Referral.objects.get().state == Referral.State.REWARDED


def test_suspicious_referrals_wait_for_review(api, shop):
    api.post("/orders", ORDER)
    code = api.get("/loyalty/customers/ada").json()["referral_code"]
    same_email = api.post("/loyalty/referrals", {"code": code, "friend": {
        "external_id": "ada-2", "email": "ADA@example.test"}})  # fmt: skip
    assert same_email.json()["state"] == "flagged"
    assert "same_email" in same_email.json()["flags"]
    assert same_email.json()["welcome_code"] is None
    self_referral = api.post("/loyalty/referrals", {"code": code, "friend": {"external_id": "ada"}})
    assert self_referral.status_code == 400
    for n in range(4):
        busy = api.post(
            "/loyalty/referrals",
            {"code": code, "ip_address": "203.0.113.9", "friend": {"external_id": f"f-{n}"}},
        )
    assert "busy_address" in busy.json()["flags"]


def test_a_referrers_own_mailbox_under_another_spelling_waits_for_review(api, shop):
    api.post("/orders", {**ORDER, "customer": {"external_id": "sam",
                                               "email": "Sam.Lee@gmail.com"}})  # fmt: skip
    code = api.get("/loyalty/customers/sam").json()["referral_code"]
    for n, spelling in enumerate(
        ["sam.lee+rewards@gmail.com", "SAMLEE@googlemail.com", "s.a.m.l.e.e+x@gmail.com"]
    ):
        answer = api.post("/loyalty/referrals", {"code": code, "friend": {
            "external_id": f"alias-{n}", "email": spelling}})  # fmt: skip
        assert answer.json()["state"] == "flagged", spelling
        assert "same_email" in answer.json()["flags"]
    # Elsewhere only case and the +tag are ignored: dots are part of the mailbox.
    answer = api.post("/loyalty/referrals", {"code": code, "friend": {
        "external_id": "someone", "email": "sam.lee2@gmail.com"}})  # fmt: skip
    assert answer.json()["state"] == "invited"


def test_a_friend_from_the_address_the_referrer_signed_in_from_waits_for_review(api, shop, client):
    from customers.models import Customer
    from customers.services.portal import storefront_link_make

    api.post("/orders", ORDER)
    ada = Customer.objects.get(merchant=shop, external_id="ada")
    # Ada opens her rewards page from her laptop's address…
    client.get(storefront_link_make(customer=ada), REMOTE_ADDR="198.51.100.7")
    code = api.get("/loyalty/customers/ada").json()["referral_code"]
    # …and "a friend" arrives from the same one; another friend from elsewhere is fine.
    same = api.post("/loyalty/referrals", {"code": code, "ip_address": "198.51.100.7",
                                           "friend": {"external_id": "twin"}})  # fmt: skip
    assert same.json()["state"] == "flagged"
    assert "same_address" in same.json()["flags"]
    other = api.post("/loyalty/referrals", {"code": code, "ip_address": "203.0.113.50",
                                            "friend": {"external_id": "real-friend"}})  # fmt: skip
    assert other.json()["state"] == "invited"


def test_marking_a_code_used_with_a_nul_in_the_body_is_a_400_naming_the_field(api):
    answer = api.post("/loyalty/codes/ABC/use", {"order_external_id": "1", "source": "a\x00"})
    assert answer.status_code == 400
    assert "source" in answer.json()["errors"]


def test_a_referral_code_with_a_nul_is_a_400_naming_the_code(api):
    answer = api.post("/loyalty/referrals", {"code": "AB\x00C", "friend": {"external_id": "f"}})
    assert answer.status_code == 400
    assert answer.json()["errors"]["code"] == ["Must not contain a NUL character."]
