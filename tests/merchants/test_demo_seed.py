from __future__ import annotations

import pytest
from django.core.management import call_command

from merchants.models import Merchant, StaffMember, User

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        list(Merchant.objects.order_by("slug").values_list("slug", "name")),
        list(
            StaffMember.objects.order_by("user__email").values_list(
                "user__email", "merchant__slug", "role"
            )
        ),
        list(User.objects.order_by("email").values_list("email", "password")),
    )


def test_demo_seed_creates_both_merchants_with_every_role_and_a_second_run_changes_nothing(client):
    call_command("seed_demo", quiet_signins=True)
    first = _snapshot()
    call_command("seed_demo", quiet_signins=True)

    assert _snapshot() == first
    merchants, staff, _users = first
    assert merchants == [("demo-store", "Demo Store"), ("other-shop", "Other Shop")]
    assert {(email, role) for email, slug, role in staff if slug == "demo-store"} == {
        ("owner@demo.test", "owner"),
        ("manager@demo.test", "manager"),
        ("marketer@demo.test", "marketer"),
        ("support@demo.test", "support"),
        ("analyst@demo.test", "analyst"),
    }
    assert ("other@demo.test", "other-shop", "owner") in staff
    assert (
        client.post(
            "/accounts/login/", {"username": "owner@demo.test", "password": "regulars-demo"}
        ).status_code
        == 302
    )


def test_demo_owners_see_only_their_own_store(client):
    call_command("seed_demo", quiet_signins=True)
    client.post("/accounts/login/", {"username": "other@demo.test", "password": "regulars-demo"})
    body = client.get("/merchants/staff/").content.decode()
    assert "other@demo.test" in body
    assert "owner@demo.test" not in body
    assert "Demo Store" not in body
