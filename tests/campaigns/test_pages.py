"""The staff pages of promotions: list with status, create and edit with the live eligible
count, batches with their progress and CSV, the report, the attempts log with filters."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.formats import date_format
from django.utils.timezone import localdate, now

from campaigns.models import Code, CodeBatch, Promotion
from campaigns.services.batches import codes_make
from campaigns.services.codes import Cart, code_redeem, code_validate
from customers.services import order_ingest
from loyalty.models import PointsAccount
from merchants.models import AuditEvent
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.factories import CustomerFactory, order_data
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.loyalty.test_portal import _text

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold(merchant):
    ProgramFactory(merchant=merchant)
    tier = TierFactory(merchant=merchant, name="Gold")
    for n in range(3):
        PointsAccount.objects.create(merchant=merchant, customer=CustomerFactory(merchant=merchant),
                                     tier=tier, referral_code=f"GOLD{n:04d}")  # fmt: skip
    CustomerFactory(merchant=merchant)  # not Gold
    return tier


FORM = {
    "name_en": "Gold week", "kind": "percent", "value": "15", "bonus_points": "0",
    "eligibility": "tiers", "min_spend": "0", "per_customer_limit": "1", "codes": "unique",
    "is_exclusive": "on", "is_active": "on",
}  # fmt: skip


def test_a_marketer_creates_a_gold_only_promotion_and_sees_who_may_use_it(
    client, marketer, merchant, gold
):
    live = client.get("/campaigns/promotions/eligible/", {**FORM, "tiers": [gold.pk]})
    assert "3 customers may use it today." in _text(live)
    assert "4 customers may use it today." in _text(client.get("/campaigns/promotions/new/"))

    response = client.post("/campaigns/promotions/new/", {**FORM, "tiers": [gold.pk]})

    promotion = Promotion.objects.get(merchant=merchant)
    assert response.status_code == 302
    assert (promotion.name, promotion.kind, list(promotion.tiers.all())) == (
        "Gold week", "percent", [gold]
    )  # fmt: skip
    assert AuditEvent.objects.filter(action="campaigns.promotion_saved").exists()
    listing = _text(client.get("/campaigns/promotions/"))
    assert "Gold week" in listing
    assert "Running" in listing
    edit = _text(client.get(f"/campaigns/promotions/{promotion.pk}/edit/"))
    assert "3 customers may use it today." in edit


def test_the_form_names_what_is_missing_and_a_taken_code(client, marketer, merchant, gold):
    response = client.post("/campaigns/promotions/new/", {**FORM, "value": "150"})
    errors = response.context["form"].errors
    assert errors["value"] == ["At most 100 percent."]
    assert errors["tiers"] == ["Choose who may use it."]
    CodeFactory(promotion=PromotionFactory(merchant=merchant), code="SUMMER")
    public = {**FORM, "eligibility": "everyone", "codes": "public", "public_code": "summer"}
    response = client.post("/campaigns/promotions/new/", public)
    assert response.context["form"].errors["public_code"] == ["The shop already has a code SUMMER."]
    assert Promotion.objects.filter(merchant=merchant).count() == 1


def test_statuses_on_the_list(client, marketer, merchant):
    PromotionFactory(merchant=merchant, name="Later", starts_at=now() + timedelta(days=2))
    PromotionFactory(merchant=merchant, name="Over", ends_at=now() - timedelta(days=1))
    PromotionFactory(merchant=merchant, name="Full", usage_limit=1, taken=1)
    PromotionFactory(merchant=merchant, name="Paused", is_active=False)
    text = _text(client.get("/campaigns/promotions/"))
    for name, status in (("Later", "Scheduled"), ("Over", "Ended"), ("Full", "Exhausted"),
                         ("Paused", "Off")):  # fmt: skip
        assert f"{name} " in text
        assert status in text


def test_a_batch_is_queued_shows_its_progress_and_exports_its_codes(
    client, marketer, merchant, django_capture_on_commit_callbacks
):
    promotion = PromotionFactory(merchant=merchant)
    with django_capture_on_commit_callbacks() as queued:
        client.post(f"/campaigns/promotions/{promotion.pk}/batches/",
                    {"count": "25", "prefix": "MAY-", "length": "6"})  # fmt: skip
    batch = CodeBatch.objects.get(promotion=promotion)
    assert (batch.state, len(queued)) == ("queued", 1)
    assert "0 / 25" in _text(client.get(f"/campaigns/batches/{batch.pk}/"))
    codes_make(batch_id=batch.pk)
    assert "25 / 25" in _text(client.get(f"/campaigns/batches/{batch.pk}/"))
    csv = b"".join(client.get(f"/campaigns/batches/{batch.pk}/codes.csv").streaming_content)
    rows = csv.decode().splitlines()
    assert len(rows) == 26
    assert all(row.startswith("MAY-") for row in rows[1:])


def test_the_report_and_the_attempts_log(client, marketer, merchant):
    promotion = PromotionFactory(merchant=merchant, value=Decimal("5.00"), budget=Decimal("50"))
    CodeFactory(promotion=promotion, code="FIVE", single_use=False)
    promotion.per_customer_limit = 1
    promotion.save()
    order_ingest(merchant=merchant, data=order_data("o-1", total="40.00"))
    ada = CustomerFactory(merchant=merchant)
    code_redeem(merchant=merchant, code="FIVE", customer=ada, cart=Cart(Decimal("40.00")),
                order_external_id="o-1")  # fmt: skip
    code_validate(merchant=merchant, code="FIVE", customer=ada, cart=Cart(Decimal("40.00")))
    code_validate(merchant=merchant, code="NOPE", customer=ada, cart=Cart(Decimal("40.00")))

    page = client.get(f"/campaigns/promotions/{promotion.pk}/")
    text = _text(page)
    assert "Redemptions 1" in text
    assert "Revenue of the orders that used it 40.00 USD · 1 order" in text
    assert "Discount given 5.00 USD" in text
    assert "Budget left 45.00 USD" in text

    refused = _text(client.get("/campaigns/attempts/", {"result": "refused"}))
    assert "This customer has already used this promotion." in refused
    assert "No such code." in refused
    assert "Accepted" not in refused.split("Discount", 1)[1]
    only = _text(client.get("/campaigns/attempts/", {"reason": "unknown_code"}))
    assert "NOPE" in only
    assert "FIVE" not in only
    assert Code.objects.filter(code="FIVE").exists()
    html = page.content.decode()
    chart = json.loads(html.split('id="report-chart-data" type="application/json">')[1]
                       .split("</script>")[0])  # fmt: skip
    assert chart["labels"] == [date_format(localdate(timezone=merchant.zone), "SHORT_DATE_FORMAT")]
    assert [s["values"] for s in chart["series"]] == [[1], [5.0]]
    assert "vendor/chartjs/chart.umd.min.js" in html


def test_a_promotion_for_a_list_takes_its_customers_from_a_csv(client, marketer, merchant):
    noor = CustomerFactory(merchant=merchant, email="noor@example.com")
    sam = CustomerFactory(merchant=merchant, external_id="shop-77")
    CustomerFactory(merchant=merchant, email="not-listed@example.com")
    posted = {**FORM, "eligibility": "list", "name_en": "Friends"}

    missing = client.post("/campaigns/promotions/new/", posted)
    assert "Upload the list of customers." in _text(missing)
    wrong = SimpleUploadedFile("list.csv", b"email\nNOOR@example.com\nghost@example.com\n")
    refused = client.post("/campaigns/promotions/new/", {**posted, "customer_list": wrong})
    assert "Row 3: no customer ghost@example.com." in _text(refused)
    assert not Promotion.objects.exists(), "nothing is kept when a row is wrong"

    good = SimpleUploadedFile("list.csv", b"\xef\xbb\xbfname,email\nNoor,NOOR@example.com\n,\n")
    client.post("/campaigns/promotions/new/", {**posted, "customer_list": good})
    promotion = Promotion.objects.get()
    assert list(promotion.listed.all()) == [noor]
    assert "1 customer may use it today." in _text(
        client.get(f"/campaigns/promotions/{promotion.pk}/edit/")
    )
    by_id = SimpleUploadedFile("ids.csv", b"shop-77\nnoor@example.com\n")
    edit = {**posted, "customer_list": by_id}
    client.post(f"/campaigns/promotions/{promotion.pk}/edit/", edit)
    assert set(promotion.listed.all()) == {noor, sam}
    # Saved again without a file: the list stays.
    client.post(f"/campaigns/promotions/{promotion.pk}/edit/", posted)
    assert set(promotion.listed.all()) == {noor, sam}
