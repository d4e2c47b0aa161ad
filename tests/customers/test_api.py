from __future__ import annotations

import json
from copy import deepcopy

import pytest
from django.urls import get_resolver

from customers.models import Activity, Customer, Order, OrderLine, Refund
from merchants.api_keys import api_key_create, api_key_revoke
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db

ORDER = {
    "external_id": "1001",
    "placed_at": "2026-05-01T10:00:00Z",
    "currency": "USD",
    "subtotal": "90.00",
    "shipping": "5.00",
    "tax": "5.00",
    "total": "100.00",
    "channel": "web",
    "shipping_method": "express",
    "discount_codes": ["WELCOME10"],
    "customer": {"external_id": "c-1", "email": "Ada@Example.test", "first_name": "Ada"},
    "lines": [
        {"sku": "TEA-1", "name": "Green tea", "category": "tea", "quantity": 3, "price": "30.00"}
    ],
}


@pytest.fixture
def shop():
    return MerchantFactory(base_currency="USD")


@pytest.fixture
def api(client, shop):
    _key, raw = api_key_create(merchant=shop, name="Storefront", scopes=["ingest", "read"])

    class Api:
        def post(self, path, body, **headers):
            return client.post(
                f"/api/v1{path}",
                json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {raw}",
                **headers,
            )

        def get(self, path):
            return client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {raw}")

    return Api()


def _counts():
    from loyalty.models import Membership, PointsEntry, Redemption, Referral

    models = (Customer, Order, OrderLine, Activity, Refund, PointsEntry, Redemption, Membership,
              Referral)  # fmt: skip
    return tuple(m.objects.count() for m in models)


def test_an_order_is_stored_and_a_resend_returns_the_original(api, shop):
    first = api.post("/orders", ORDER)
    assert first.status_code == 201
    body = first.json()
    assert body["created"] is True
    assert body["total"] == "100.00"
    assert body["customer_external_id"] == "c-1"
    before = _counts()

    changed = deepcopy(ORDER) | {"total": "1.00"}
    again = api.post("/orders", changed)

    assert again.status_code == 200
    assert again.json() == body | {"created": False}
    assert _counts() == before
    order = Order.objects.get()
    assert (order.merchant, order.total, order.discount_codes) == (shop, 100, ["WELCOME10"])
    assert order.customer.email == "ada@example.test"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"placed_at": "2026-05-01T10:00:00"}, "placed_at"),
        ({"total": "-1"}, "total"),
        ({"total": "12.345"}, "total"),
        ({"currency": "EURO"}, "currency"),
        ({"status": "shipped"}, "status"),
        ({"customer": {"email": "not-an-email"}}, "customer.email"),
        ({"lines": [{"sku": "A", "quantity": 0, "price": "1"}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "A", "quantity": 1}]}, "lines[0].price"),
    ],
)
def test_a_malformed_order_is_400_naming_the_field_and_writes_nothing(api, change, field):
    response = api.post("/orders", deepcopy(ORDER) | change)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not any(_counts())


def test_a_refused_order_names_the_rule(api):
    response = api.post("/orders", ORDER | {"currency": "EUR"})
    assert response.status_code == 400
    assert "USD" in response.json()["errors"]["currency"][0]
    assert not any(_counts())


def test_bulk_orders_are_all_or_nothing_and_name_the_bad_one(api):
    orders = [ORDER | {"external_id": str(n)} for n in range(5)]
    orders[3] = orders[3] | {"currency": "EUR"}

    response = api.post("/orders/bulk", {"orders": orders})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["orders[3].currency"]
    assert not any(_counts())

    orders[3] = ORDER | {"external_id": "3"}
    response = api.post("/orders/bulk", {"orders": orders})
    assert response.status_code == 200
    assert [r["external_id"] for r in response.json()["results"]] == ["0", "1", "2", "3", "4"]
    assert Customer.objects.get().orders_count == 5


def test_a_bulk_of_more_than_a_thousand_is_refused(api):
    orders = [ORDER | {"external_id": str(n)} for n in range(1001)]
    response = api.post("/orders/bulk", {"orders": orders})
    assert response.status_code == 400
    assert "orders" in response.json()["errors"]
    assert not any(_counts())


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(api):
    first = api.post(
        "/customers", {"external_id": "c-5", "first_name": "Bo"}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    replay = api.post(
        "/customers", {"external_id": "c-5", "first_name": "Bo"}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    conflict = api.post(
        "/customers", {"external_id": "c-5", "first_name": "Al"}, HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert conflict.status_code == 409
    assert "another request" in conflict.json()["detail"]
    assert Customer.objects.get().first_name == "Bo"


def test_idempotency_keys_belong_to_one_merchant(api, client):
    _key, other_raw = api_key_create(merchant=MerchantFactory(), name="Other", scopes=["ingest"])
    api.post("/customers", {"external_id": "c-5"}, HTTP_IDEMPOTENCY_KEY="shared")
    response = client.post(
        "/api/v1/customers",
        json.dumps({"external_id": "c-6"}),
        content_type="application/json",
        HTTP_X_API_KEY=other_raw,
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    assert response.status_code == 201
    assert response.json()["external_id"] == "c-6"


def test_refunds_and_events_reach_the_customer(api):
    api.post("/orders", ORDER)
    refund = api.post(
        "/refunds",
        {
            "external_id": "r-1",
            "order_external_id": "1001",
            "amount": "40.00",
            "refunded_at": "2026-05-03T09:00:00Z",
        },
    )
    assert refund.status_code == 201
    assert refund.json()["order_status"] == "partially_refunded"
    event = api.post(
        "/events",
        {"key": "review_posted", "customer": {"external_id": "c-1"}, "data": {"stars": 5}},
    )
    assert event.status_code == 201
    customer = api.get("/customers/c-1").json()
    assert customer["total_spent"] == "60.00"
    activity = Activity.objects.get(kind="event")
    assert activity.data == {"key": "review_posted", "source": "api", "data": {"stars": 5}}


def test_openapi_schema_and_docs_are_served_from_here(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert {
        "/api/v1/orders",
        "/api/v1/orders/bulk",
        "/api/v1/customers",
        "/api/v1/refunds",
        "/api/v1/events",
    } <= set(schema["paths"])
    docs = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower()


def test_the_schema_says_what_it_cant_enforce_by_itself(client):
    """Rules a JSON schema can't hold are written where they apply, so a client (or a
    fuzzer) reads why an order it built was refused: the customer's identity, the date
    bounds, the shop's currency, and the largest amount."""
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert "at least one of the" in schemas["CustomerIn"]["description"]
    assert "1900-01-01" in schemas["CustomerIn"]["description"]
    order = schemas["OrderIn"]["properties"]
    assert "on or after 1990-01-01" in order["placed_at"]["description"]
    assert "base currency" in order["currency"]["description"]
    assert order["total"]["anyOf"][0]["maximum"] == 9999999999.99


# --- Access: every API route against missing, revoked, under-scoped and foreign keys ----

REFUND = {
    "external_id": "r",
    "order_external_id": "1001",
    "amount": "1",
    "refunded_at": "2026-05-03T09:00:00Z",
}
EVENT = {"key": "review_posted", "customer": {"external_id": "c-1"}}
API_CASES = {
    "api:order_create": ("post", "/orders", "ingest", ORDER),
    "api:orders_create_bulk": ("post", "/orders/bulk", "ingest", {"orders": [ORDER]}),
    "api:customer_upsert": ("post", "/customers", "ingest", {"external_id": "c-1"}),
    "api:customers_upsert_bulk": (
        "post",
        "/customers/bulk",
        "ingest",
        {"customers": [{"external_id": "c-1"}]},
    ),
    "api:customer_detail": ("get", "/customers/c-1", "read", None),
    "api:refund_create": ("post", "/refunds", "ingest", REFUND),
    "api:event_create": ("post", "/events", "ingest", EVENT),
    "api:loyalty_status": ("get", "/loyalty/customers/c-1", "read", None),
    "api:redemption_create": (
        "post",
        "/loyalty/redemptions",
        "redeem",
        {"customer": {"external_id": "c-1"}, "reward_id": 1, "redemption_key": "k"},
    ),
    "api:code_use": ("post", "/loyalty/codes/ABC/use", "redeem", {}),
    **{
        f"api:code_{action}": (
            "post",
            f"/promotions/codes/ABC/{action}",
            "redeem",
            {
                "customer": {"external_id": "c-1"},
                "cart": {"subtotal": "10.00"},
                "order_external_id": "o-1",
            },
        )
        for action in ("validate", "reserve", "redeem", "release")
    },
    "api:codes_roll_back": ("post", "/promotions/orders/o-1/rollback", "redeem", None),
    "api:feedback_create": (
        "post",
        "/feedback",
        "ingest",
        {"customer": {"external_id": "c-1"}, "kind": "question", "body": "Hello"},
    ),
    "api:review_create": (
        "post",
        "/reviews",
        "ingest",
        {"id": "r-1", "customer": {"external_id": "c-1"}, "rating": 5},
    ),
    "api:feedback_detail": ("get", "/feedback/1", "read", None),
    "api:membership_payment_create": (
        "post",
        "/loyalty/memberships/payments",
        "ingest",
        {
            "customer": {"external_id": "c-1"},
            "plan_id": 1,
            "external_id": "p-1",
            "amount": "9.00",
            "currency": "USD",
            "paid_at": "2026-05-03T09:00:00Z",
        },
    ),
    "api:membership_create": (
        "post",
        "/loyalty/memberships",
        "ingest",
        {"customer": {"external_id": "c-1"}, "plan_id": 1},
    ),
    "api:membership_cancel": ("post", "/loyalty/memberships/c-1/cancel", "ingest", None),
    "api:referral_create": (
        "post",
        "/loyalty/referrals",
        "ingest",
        {"code": "ABC", "friend": {"external_id": "c-2"}},
    ),
}


def test_every_api_route_is_in_the_access_table():
    api_routes = {
        f"api:{p.name}"
        for p in get_resolver().url_patterns
        if getattr(p, "namespace", None) == "api"
        for p in p.url_patterns
    }
    api_routes -= {"api:openapi-json", "api:openapi-view", "api:api-root"}
    assert api_routes == set(API_CASES)


@pytest.mark.parametrize("name", sorted(API_CASES))
def test_api_routes_refuse_missing_revoked_and_underscoped_keys(client, shop, name):
    method, path, scope, payload = API_CASES[name]
    body = (
        {} if payload is None else {"data": json.dumps(payload), "content_type": "application/json"}
    )

    def call(**headers):
        return getattr(client, method)(f"/api/v1{path}", **body, **headers)

    assert call().status_code == 401
    assert call(HTTP_AUTHORIZATION="Bearer rk_nothing_here").status_code == 401
    owner = StaffMemberFactory(merchant=shop)
    revoked, raw = api_key_create(merchant=shop, name="old", scopes=["ingest", "read", "redeem"])
    api_key_revoke(key=revoked, actor=owner.user)
    assert call(HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    other_scope = next(s for s in ("redeem", "read", "ingest") if s != scope)
    _key, raw = api_key_create(merchant=shop, name="narrow", scopes=[other_scope])

    response = call(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 403
    assert f"'{scope}' scope" in response.json()["detail"]
    assert not any(_counts())


def test_a_key_never_reads_another_merchants_customer(api, shop):
    CustomerFactory(external_id="c-1")  # another merchant's
    assert api.get("/customers/c-1").status_code == 404


def test_a_refund_for_another_merchants_order_is_refused(api):
    foreign = MerchantFactory()
    _key, raw = api_key_create(merchant=foreign, name="x", scopes=["ingest"])
    api.post("/orders", ORDER)
    from django.test import Client

    response = Client().post(
        "/api/v1/refunds",
        json.dumps(
            {
                "external_id": "r",
                "order_external_id": "1001",
                "amount": "1",
                "refunded_at": "2026-05-03T09:00:00Z",
            }
        ),
        content_type="application/json",
        HTTP_X_API_KEY=raw,
    )
    assert response.status_code == 400
    assert "order_external_id" in response.json()["errors"]
    assert Refund.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o["customer"].update(first_name="Ada\x00"), "customer.first_name"),
        (lambda o: o.update(external_id="10\x0001"), "external_id"),
        (lambda o: o["lines"][0].update(name="Green\x00tea"), "lines[0].name"),
        (lambda o: o["lines"][0].update(quantity=10**18), "lines[0].quantity"),
        (lambda o: o.update(placed_at="9999-12-31T00:00:00Z"), "placed_at"),
        (lambda o: o.update(placed_at="0001-01-01T00:00:00Z"), "placed_at"),
        (lambda o: o.update(placed_at=1764000000), "placed_at"),
        (lambda o: o["customer"].update(birth_date="9999-12-31"), "customer.birth_date"),
        (lambda o: o["customer"].update(birth_date=19900101), "customer.birth_date"),
        (lambda o: o.update(discount_codes=["SPRING\x00"]), "discount_codes"),
    ],
)
def test_input_no_column_can_hold_or_no_shop_means_is_a_400_naming_the_field(api, change, field):
    order = deepcopy(ORDER)
    change(order)
    response = api.post("/orders", order)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert Order.objects.count() == 0
    assert Customer.objects.count() == 0


def test_an_event_with_a_nul_in_its_data_is_a_400(api):
    response = api.post("/events", {"key": "review", "customer": {"external_id": "c-1"},
                                    "data": {"text": "great\x00"}})  # fmt: skip
    assert (response.status_code, list(response.json()["errors"])) == (400, ["data"])
    assert Activity.objects.count() == 0


def test_a_nul_in_the_address_is_a_400_not_a_server_error(api):
    refused = api.get("/customers/c%001")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"path": ["The address contains a NUL character."]}
    assert api.get("/customers/c-1?x=%00").status_code == 400
