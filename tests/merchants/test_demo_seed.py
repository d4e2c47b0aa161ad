from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from customers.models import Customer, Order, Persona
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
        Customer.objects.count(),
        Order.objects.count(),
        list(
            Customer.objects.order_by("id").values_list("segment", "persona__name", "total_spent")
        ),
    )


def test_demo_seed_creates_both_merchants_with_every_role_and_a_second_run_changes_nothing(
    client, caplog
):
    out = StringIO()
    with caplog.at_level("WARNING"):
        call_command("seed_demo", quiet_signins=True, stdout=out)
    assert "Created the demo shops" in out.getvalue()
    assert "demo rows" not in out.getvalue()
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text
    first = _snapshot()
    call_command("seed_demo", quiet_signins=True)

    assert _snapshot() == first
    merchants, staff, *_rest = first
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


def test_demo_store_gets_customers_with_orders_segments_and_personas(settings):
    call_command("seed_demo", quiet_signins=True)
    demo = Merchant.objects.get(slug="demo-store")
    # The demo's customers, beside the friends loyalty's demo referrals bring.
    customers = Customer.objects.filter(merchant=demo, external_id__regex=r"^demo-\d+$")
    assert customers.count() == settings.DEMO_CUSTOMERS
    assert Order.objects.filter(merchant=demo).count() > 3 * settings.DEMO_CUSTOMERS
    assert len(set(customers.values_list("segment", flat=True))) >= 5
    assert set(Persona.objects.filter(merchant=demo).values_list("name", flat=True)) == {
        "Busy professional",
        "Budget shopper",
        "Tea lover",
    }
    assert customers.filter(persona__isnull=False).count() > settings.DEMO_CUSTOMERS / 4
    assert not Customer.objects.filter(merchant__slug="other-shop").exists()


def test_the_demo_ledger_is_lived_over_its_months(settings):
    """The demo's two years of orders earn their points on the months they were placed,
    through the real services, and the nights' jobs run at each month's end: this month's
    figures hold this month only, points past their 12 months have expired, and Gold and
    Platinum hold customers who earned them over the rolling year."""
    from django.db.models import Max, Min, Sum
    from django.utils.timezone import now

    from loyalty.models import PointsAccount, PointsEntry
    from loyalty.selectors import program_figures

    call_command("seed_demo", quiet_signins=True)
    demo = Merchant.objects.get(slug="demo-store")
    earned = PointsEntry.objects.filter(merchant=demo, kind=PointsEntry.Kind.EARN)
    span = earned.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert (span["last"] - span["first"]).days > 600
    figures = program_figures(merchant=demo)
    issued_all = earned.aggregate(total=Sum("points"))["total"]
    assert 0 < figures["issued_month"] < issued_all / 10
    expired = PointsEntry.objects.filter(merchant=demo, kind=PointsEntry.Kind.EXPIRE)
    assert expired.count() > settings.DEMO_CUSTOMERS / 10
    assert expired.aggregate(last=Max("created_at"))["last"] < now()
    # An expired lot is one that was earned more than 12 months before it expired.
    first_expiry = expired.aggregate(first=Min("created_at"))["first"]
    assert (first_expiry - span["first"]).days >= 365
    assert PointsAccount.objects.filter(merchant=demo, tier__isnull=False).exists()
