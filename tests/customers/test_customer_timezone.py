"""A customer's own time zone, for her quiet hours: every door takes it, checks it, and the
staff page shows and edits it."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, time

import pytest

from campaigns.models import SendingSettings
from campaigns.services.messages import quiet_until
from customers.imports import import_stream, sample_csv
from customers.models import Customer, Order
from merchants.api_keys import api_key_create
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db

ORDER = {
    "external_id": "1001", "placed_at": "2026-05-01T10:00:00Z", "currency": "USD",
    "total": "40.00",
    "customer": {"external_id": "c-1", "email": "ada@example.test", "timezone": "Asia/Tokyo"},
}  # fmt: skip


@pytest.fixture
def shop():
    return MerchantFactory(base_currency="USD", timezone="Europe/London")


def _post(client, shop, body):
    _key, raw = api_key_create(merchant=shop, name="Storefront", scopes=["ingest"])
    return client.post("/api/v1/orders", json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip


def test_her_time_zone_from_the_api_sets_her_quiet_hours_not_the_shops(client, shop):
    assert _post(client, shop, ORDER).status_code == 201
    ada = Customer.objects.select_related("merchant").get(external_id="c-1")
    assert ada.timezone == "Asia/Tokyo"
    sending = SendingSettings(merchant=shop, quiet_from=time(21), quiet_until=time(8))
    # 14:00 in London, 23:00 in Tokyo: quiet for her until 08:00 Tokyo (23:00 UTC).
    at = datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
    assert quiet_until(customer=ada, sending=sending, at=at) == datetime(
        2026, 7, 1, 23, 0, tzinfo=UTC
    )
    ben = CustomerFactory(merchant=shop)  # no zone of his own: the shop's afternoon
    assert quiet_until(customer=ben, sending=sending, at=at) is None


def test_an_unknown_time_zone_is_a_400_naming_it_and_writes_nothing(client, shop):
    body = {**ORDER, "customer": {**ORDER["customer"], "timezone": "Mars/Olympus_Mons"}}
    response = _post(client, shop, body)
    assert response.status_code == 400
    assert "customer.timezone" in response.json()["errors"]
    assert (Customer.objects.count(), Order.objects.count()) == (0, 0)


def test_a_csv_row_with_a_time_zone_lands_and_a_bad_one_is_named(shop):
    text = (
        "external_id,email,timezone\n"
        "c-1,ana@example.test,America/Sao_Paulo\n"
        "c-2,bob@example.test,Somewhere/Else\n"
    )
    errors = []
    import_stream(merchant=shop, kind="customers", stream=io.BytesIO(text.encode()),
                  on_error=lambda *e: errors.append(e))  # fmt: skip
    assert Customer.objects.get(external_id="c-1").timezone == "America/Sao_Paulo"
    assert [(row, column) for row, column, _message in errors] == [(3, "timezone")]
    assert not Customer.objects.filter(external_id="c-2").exists()
    assert "timezone" in sample_csv("customers").splitlines()[0].split(",")


def test_staff_set_her_time_zone_on_her_profile_and_see_it(client, shop):
    member = StaffMemberFactory(merchant=shop, role="owner")
    client.force_login(member.user)
    customer = CustomerFactory(merchant=shop, first_name="Kim", email="kim@x.test")
    fields = {"first_name": "Kim", "email": "kim@x.test", "gender": ""}
    response = client.post(f"/customers/{customer.pk}/edit/",
                           {**fields, "timezone": "Nowhere/Atlantis"})  # fmt: skip
    assert "is not a known time zone" in response.content.decode()
    response = client.post(f"/customers/{customer.pk}/edit/",
                           {**fields, "timezone": "Asia/Tehran"})  # fmt: skip
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.timezone == "Asia/Tehran"
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    assert 'data-testid="customer-timezone">Asia/Tehran<' in page
