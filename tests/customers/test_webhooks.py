"""Shopify- and WooCommerce-shaped deliveries over real HTTP, signed with HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection as db_connection

from customers.models import Activity, Customer, Order, OrderLine, Refund, WebhookDelivery
from merchants.api_keys import store_connection_create
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db(transaction=True)
PAYLOADS = Path(__file__).parent / "payloads"


def _payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def _sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _counts():
    return tuple(
        m.objects.count() for m in (Customer, Order, OrderLine, Refund, Activity, WebhookDelivery)
    )


@pytest.fixture
def shop():
    return MerchantFactory(base_currency="USD")


@pytest.fixture
def shopify(live_server, shop):
    connection = store_connection_create(merchant=shop, platform="shopify")
    url = f"{live_server.url}/hooks/shopify/{connection.public_id}/"

    def send(payload, *, topic="orders/create", delivery=None, secret=None, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        return _post(
            url,
            body,
            {
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": _sign(secret or connection.secret, body),
                "X-Shopify-Webhook-Id": delivery or str(uuid.uuid4()),
                "X-Shopify-Shop-Domain": "kashi-tea.myshopify.com",
            },
        )

    return send


@pytest.fixture
def woocommerce(live_server, shop):
    connection = store_connection_create(merchant=shop, platform="woocommerce")
    url = f"{live_server.url}/hooks/woocommerce/{connection.public_id}/"

    def send(payload, *, topic="order.created", delivery=None, secret=None, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {
            "X-WC-Webhook-Signature": _sign(secret or connection.secret, body),
            "X-WC-Webhook-Delivery-ID": delivery or uuid.uuid4().hex,
            "X-WC-Webhook-Source": "https://tea.example.com/",
        }
        if topic:
            headers["X-WC-Webhook-Topic"] = topic
        return _post(url, body, headers)

    return send


def test_a_shopify_order_is_stored_with_its_customer_lines_and_money(shopify, shop):
    status, body = shopify(_payload("shopify_order.json"))

    assert (status, body) == (200, {"outcome": "order stored"})
    order = Order.objects.get(merchant=shop)
    assert (order.source, order.external_id, order.status) == ("shopify", "5560942526773", "paid")
    assert (order.total, order.subtotal, order.discount, order.shipping, order.tax) == (
        Decimal("97.52"),
        Decimal("84.00"),
        Decimal("6.00"),
        Decimal("7.00"),
        Decimal("6.52"),
    )
    assert order.discount_codes == ["SPRING6"]
    assert (order.channel, order.shipping_method) == ("web", "Express (1-2 days)")
    assert order.placed_at.isoformat() == "2026-05-01T16:04:10+00:00"
    assert sorted(order.lines.values_list("sku", "quantity", "price")) == [
        ("POT-CLAY", 1, Decimal("42.00")),
        ("TEA-JAS-100", 2, Decimal("24.00")),
    ]
    customer = order.customer
    assert (customer.external_id, customer.email, customer.city, customer.country) == (
        "7238462914613",
        "noor.haddad@example.com",
        "Montreal",
        "CA",
    )
    assert customer.marketing_consent is True
    assert (customer.orders_count, customer.total_spent) == (1, Decimal("97.52"))


def test_a_wrong_signature_is_401_and_writes_nothing(shopify):
    status, body = shopify(_payload("shopify_order.json"), secret="not-the-secret")
    assert status == 401
    assert body["field"] == "X-Shopify-Hmac-Sha256"
    assert _counts() == (0, 0, 0, 0, 0, 0)


def test_a_body_changed_after_signing_is_refused(live_server, shop):
    connection = store_connection_create(merchant=shop, platform="shopify")
    body = json.dumps(_payload("shopify_order.json")).encode()
    signature_of_original = _sign(connection.secret, body)
    tampered = body.replace(b'"97.52"', b'"0.01"')

    status, _body = _post(
        f"{live_server.url}/hooks/shopify/{connection.public_id}/",
        tampered,
        {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": signature_of_original,
            "X-Shopify-Webhook-Id": "w-1",
        },
    )

    assert status == 401
    assert _counts() == (0, 0, 0, 0, 0, 0)


def test_a_redelivery_is_answered_and_changes_nothing(shopify):
    shopify(_payload("shopify_order.json"), delivery="w-1")
    before = _counts()

    status, body = shopify(_payload("shopify_order.json"), delivery="w-1")

    assert (status, body) == (200, {"outcome": "duplicate delivery"})
    assert _counts() == before


def test_orders_paid_after_orders_create_keeps_one_order(shopify):
    shopify(_payload("shopify_order.json"), topic="orders/create")
    _status, body = shopify(_payload("shopify_order.json"), topic="orders/paid")
    assert body == {"outcome": "order already stored"}
    assert Order.objects.count() == 1
    assert Customer.objects.get().orders_count == 1


def test_an_unpaid_order_waits_for_payment(shopify):
    status, body = shopify(_payload("shopify_order.json") | {"financial_status": "pending"})
    assert (status, body) == (200, {"outcome": "waiting for payment"})
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["line_items"][1].pop("price"), "line_items[1].price"),
        (lambda p: p["line_items"][0].update(quantity="two"), "line_items[0].quantity"),
        (lambda p: p.update(total_price="ninety"), "total_price"),
        (lambda p: p.update(created_at="yesterday", processed_at=None), "created_at"),
        (lambda p: p.pop("currency"), "currency"),
        (lambda p: p.update(customer=None, email=None), "customer"),
    ],
)
def test_a_malformed_shopify_order_is_kept_as_rejected_naming_the_field_and_writes_nothing(
    shopify, change, field
):
    payload = _payload("shopify_order.json")
    change(payload)

    status, body = shopify(payload, delivery="w-7")

    # Answered as received, so Shopify stops resending it; the field is named.
    assert (status, body["outcome"], body["field"]) == (200, "rejected", field)
    assert field in body["detail"]
    assert _counts()[:5] == (0, 0, 0, 0, 0)
    rejected = WebhookDelivery.objects.get()
    assert (rejected.delivery_id, rejected.rejected_field) == ("w-7", field)
    assert shopify(payload, delivery="w-7")[1]["outcome"] == "duplicate delivery"


def test_an_order_in_another_currency_is_rejected_naming_currency(shopify):
    status, body = shopify(_payload("shopify_order.json") | {"currency": "EUR"})
    assert (status, body["outcome"], body["field"]) == (200, "rejected", "currency")
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["line_items"][0].update(title="Green\x00tea"), "lines[0].name"),
        (lambda p: p["line_items"][0].update(quantity=10**18), "lines[0].quantity"),
        (lambda p: p.update(processed_at="9999-12-31T10:00:00Z"), "placed_at"),
        (lambda p: p.update(processed_at="0001-01-01T10:00:00Z"), "placed_at"),
        (lambda p: p.update(processed_at="2026-02-30T10:00:00Z"), "processed_at"),
        (lambda p: p["customer"].update(first_name="A\x00"), "customer.first_name"),
        (lambda p: p.update(total_price="NaN"), "total_price"),
    ],
)
def test_a_signed_payload_no_column_can_hold_is_rejected_not_a_server_error(
    shopify, shop, client, change, field
):
    payload = _payload("shopify_order.json")
    change(payload)
    status, body = shopify(payload, delivery="bad-1")
    assert (status, body["outcome"], body["field"]) == (200, "rejected", field)
    assert Order.objects.count() == 0
    # The shop's connection page says what arrived and couldn't be stored.
    owner = StaffMemberFactory(merchant=shop, role="owner")
    client.force_login(owner.user)
    page = client.get("/merchants/connections/").content.decode()
    panel_url = re.search(r'hx-get="(/customers/connections/\d+/rejected/)"', page).group(1)
    panel = client.get(panel_url).content.decode()
    assert "1 delivery couldn't be stored" in panel
    assert field in panel


def test_not_json_is_400(shopify):
    status, body = shopify(None, raw=b"<xml/>")
    assert (status, body["field"]) == (400, "body")


def test_a_shopify_refund_counts_only_successful_transactions(shopify):
    shopify(_payload("shopify_order.json"))
    status, body = shopify(_payload("shopify_refund.json"), topic="refunds/create")

    assert (status, body) == (200, {"outcome": "refund stored"})
    refund = Refund.objects.get()
    assert refund.amount == Decimal("38.64")
    assert refund.reason == "Teapot arrived chipped"
    assert refund.lines == [{"sku": "POT-CLAY", "quantity": 1, "amount": "36.00"}]
    order = Order.objects.get()
    assert (order.status, order.refunded_amount) == ("partially_refunded", Decimal("38.64"))
    assert Customer.objects.get().total_spent == Decimal("58.88")


def test_a_refund_before_its_order_is_409_so_the_platform_sends_it_again(shopify):
    status, body = shopify(_payload("shopify_refund.json"), topic="refunds/create",
                           delivery="r-1")  # fmt: skip
    assert (status, body["field"]) == (409, "order_id")
    assert Refund.objects.count() == 0
    assert not WebhookDelivery.objects.filter(delivery_id="r-1").exists()  # the resend counts


def test_shopify_customer_topics_update_the_profile(shopify):
    customer = _payload("shopify_order.json")["customer"] | {"first_name": "Nour"}
    _status, body = shopify(customer, topic="customers/update")
    assert body == {"outcome": "customer stored"}
    assert Customer.objects.get().first_name == "Nour"


def test_a_cancelled_shopify_order_stops_counting(shopify):
    shopify(_payload("shopify_order.json"))
    shopify(
        _payload("shopify_order.json") | {"cancelled_at": "2026-05-02T08:00:00-04:00"},
        topic="orders/cancelled",
    )
    assert Order.objects.get().status == "cancelled"
    assert Customer.objects.get().orders_count == 0


def test_a_woocommerce_guest_order_is_stored(woocommerce, shop):
    status, body = woocommerce(_payload("woocommerce_order.json"))

    assert (status, body) == (200, {"outcome": "order stored"})
    order = Order.objects.get(merchant=shop)
    assert (order.source, order.external_id) == ("woocommerce", "7281")
    assert (order.total, order.subtotal, order.discount, order.shipping, order.tax) == (
        Decimal("42.70"),
        Decimal("40.00"),
        Decimal("5.00"),
        Decimal("4.50"),
        Decimal("3.20"),
    )
    assert order.placed_at.isoformat() == "2026-05-02T11:31:07+00:00"
    assert order.discount_codes == ["hello5"]
    assert order.shipping_method == "Flat rate"
    assert sorted(order.lines.values_list("sku", "quantity", "price")) == [
        ("TEA-SEN-50", 2, Decimal("15.00")),
        ("WHISK-BMB", 1, Decimal("10.00")),
    ]
    customer = order.customer
    assert (customer.external_id, customer.email, customer.country) == (
        "",
        "ivan.petrov@example.com",
        "RU",
    )


def test_woocommerce_refunds_arrive_inside_order_updates_once(woocommerce):
    woocommerce(_payload("woocommerce_order.json"))
    updated = _payload("woocommerce_order.json") | {
        "status": "processing",
        "refunds": [{"id": 7290, "reason": "Whisk broken", "total": "-10.80"}],
    }
    woocommerce(updated, topic="order.updated")
    woocommerce(updated, topic="order.updated")

    refund = Refund.objects.get()
    assert (refund.external_id, refund.amount, refund.reason) == (
        "7290",
        Decimal("10.80"),
        "Whisk broken",
    )
    assert Customer.objects.get().total_spent == Decimal("31.90")


def test_woocommerce_ping_on_webhook_creation_is_accepted(woocommerce):
    status, body = woocommerce(None, raw=b"webhook_id=12", topic="")
    assert (status, body) == (200, {"outcome": "ping received"})


def test_a_woocommerce_order_without_billing_email_for_a_guest_names_it(woocommerce):
    payload = _payload("woocommerce_order.json")
    payload["billing"]["email"] = ""
    status, body = woocommerce(payload)
    assert (status, body["outcome"], body["field"]) == (200, "rejected", "billing.email")
    assert Order.objects.count() == 0


def test_a_connection_answers_only_to_its_own_platform_and_secret(live_server, shop):
    woo = store_connection_create(merchant=shop, platform="woocommerce")
    body = json.dumps(_payload("shopify_order.json")).encode()
    status, _ = _post(
        f"{live_server.url}/hooks/shopify/{woo.public_id}/",
        body,
        {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": _sign(woo.secret, body),
            "X-Shopify-Webhook-Id": "x",
        },
    )
    assert status == 404
    status, _ = _post(f"{live_server.url}/hooks/shopify/{uuid.uuid4()}/", body, {})
    assert status == 404
    assert Order.objects.count() == 0


def test_another_merchants_secret_cannot_write_into_this_store(live_server, shop):
    ours = store_connection_create(merchant=shop, platform="shopify")
    theirs = store_connection_create(merchant=MerchantFactory(), platform="shopify")
    body = json.dumps(_payload("shopify_order.json")).encode()
    status, _ = _post(
        f"{live_server.url}/hooks/shopify/{ours.public_id}/",
        body,
        {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": _sign(theirs.secret, body),
            "X-Shopify-Webhook-Id": "x",
        },
    )
    assert status == 401
    assert Order.objects.count() == 0


@pytest.mark.needs_postgres
def test_the_same_delivery_sent_twice_at_once_makes_one_order(shopify):
    barrier = threading.Barrier(2)
    results = []

    def deliver():
        barrier.wait()
        try:
            results.append(shopify(_payload("shopify_order.json"), delivery="same-delivery"))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(body["outcome"] for _status, body in results) == [
        "duplicate delivery",
        "order stored",
    ]
    assert Order.objects.count() == 1
    customer = Customer.objects.get()
    assert (customer.orders_count, customer.total_spent) == (1, Decimal("97.52"))


@pytest.mark.needs_postgres
def test_two_copies_of_an_order_with_different_delivery_ids_at_once_make_one_order(shopify):
    barrier = threading.Barrier(2)

    def deliver(topic):
        barrier.wait()
        try:
            shopify(_payload("shopify_order.json"), topic=topic)
        finally:
            db_connection.close()

    threads = [
        threading.Thread(target=deliver, args=(t,)) for t in ("orders/create", "orders/paid")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Order.objects.count() == 1
    assert Customer.objects.get().orders_count == 1


def test_create_store_connection_prints_the_webhook_url_and_secret(shop):
    out = StringIO()
    call_command("create_store_connection", merchant=shop.slug, platform="woocommerce", stdout=out)
    connection = shop.connections.get()
    assert f"/hooks/woocommerce/{connection.public_id}/" in out.getvalue()
    assert connection.secret in out.getvalue()


# --- Shipped and delivered: Shopify's fulfilment topics, WooCommerce's statuses -----------


def _fulfilment(**fields):
    return {
        "id": 4903, "order_id": 5560942526773, "status": "success",
        "tracking_company": "DHL Express", "tracking_number": "1Z2345",
        "tracking_url": "https://dhl.example/track/1Z2345",
        "shipment_status": None, "created_at": "2026-05-02T09:00:00+00:00",
        "updated_at": "2026-05-02T09:00:00+00:00", **fields,
    }  # fmt: skip


def _steps():
    return list(Activity.objects.filter(kind__in=["order.shipped", "order.delivered"])
                .order_by("pk").values_list("kind", flat=True))  # fmt: skip


def test_shopify_fulfilment_ships_then_delivers_once_each(shopify):
    assert shopify(_payload("shopify_order.json"))[0] == 200
    assert shopify(_fulfilment(), topic="fulfillments/create") == (
        200,
        {"outcome": "order shipped"},
    )
    # Shopify updates a fulfilment with every scan of the carrier's.
    in_transit = _fulfilment(shipment_status="in_transit", updated_at="2026-05-03T08:00:00+00:00")
    assert shopify(in_transit, topic="fulfillments/update")[1] == {
        "outcome": "fulfilment already recorded"}  # fmt: skip
    delivered = _fulfilment(shipment_status="delivered", updated_at="2026-05-04T10:00:00+00:00")
    assert shopify(delivered, topic="fulfillments/update")[1] == {"outcome": "order delivered"}
    assert shopify(delivered, topic="fulfillments/update")[0] == 200
    assert _steps() == ["order.shipped", "order.delivered"]
    shipped = Activity.objects.get(kind="order.shipped")
    assert shipped.data["tracking_number"] == "1Z2345"
    assert shipped.occurred_at.isoformat() == "2026-05-02T09:00:00+00:00"


def test_a_fulfilment_before_its_order_is_asked_again_later(shopify):
    status, body = shopify(_fulfilment(), topic="fulfillments/create")
    assert status == 409
    assert "order_id" in str(body)
    assert _steps() == []


def test_woocommerce_completed_is_shipped_and_delivered_is_delivered(woocommerce):
    order = _payload("woocommerce_order.json")
    assert woocommerce(order)[0] == 200
    assert woocommerce({**order, "status": "completed"}, topic="order.updated")[0] == 200
    assert woocommerce({**order, "status": "completed"}, topic="order.updated")[0] == 200
    assert _steps() == ["order.shipped"]
    assert woocommerce({**order, "status": "delivered"}, topic="order.updated")[0] == 200
    assert _steps() == ["order.shipped", "order.delivered"]
