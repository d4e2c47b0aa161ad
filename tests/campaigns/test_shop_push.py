"""Promotions and their codes created in the connected shop, against local servers that
speak Shopify's Admin GraphQL and WooCommerce's REST API: batches the shop accepts, a busy
shop tried again later, a refusal shown on the promotion, nothing sent twice."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection as db

from campaigns.models import Code, Promotion, ShopCode, ShopPush
from campaigns.services import shops
from campaigns.services.batches import batch_create, codes_make
from campaigns.services.codes import code_issue
from campaigns.services.promotions import promotion_save
from campaigns.services.shops import ShopBusy, retry_wait, shop_push
from campaigns.tasks import shop_push_task
from merchants.api_keys import store_connection_create
from tests.campaigns.factories import PromotionFactory
from tests.campaigns.fake_shops import fake_shop
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


def _connected(merchant, shop, platform="shopify", token=None):
    if platform == "shopify":
        return store_connection_create(
            merchant=merchant,
            platform=platform,
            admin_url=shop.url,
            admin_token=token or "shpat_test",
        )
    return store_connection_create(
        merchant=merchant,
        platform=platform,
        admin_url=shop.url,
        admin_key="ck_test",
        admin_token=token or "cs_test",
    )


def _unique(merchant, count, **fields):
    fields = {
        "kind": Promotion.Kind.PERCENT,
        "value": Decimal("15.00"),
        "name": "Gold spring",
        **fields,
    }
    promotion = PromotionFactory(merchant=merchant, codes=Promotion.Codes.UNIQUE, **fields)
    codes_make(batch_id=batch_create(promotion=promotion, count=count, prefix="GDN-").pk)
    return promotion


def _ours(promotion):
    return list(
        Code.objects.filter(promotion=promotion).order_by("pk").values_list("code", flat=True)
    )


def test_shopify_gets_one_discount_and_its_codes_250_at_a_time_once(merchant):
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop)
        promotion = _unique(merchant, 600, usage_limit=1000, min_spend=Decimal("50.00"))
        push = shop_push(promotion_id=promotion.pk, connection_id=connection.pk)

        codes = _ours(promotion)
        created = shop.sent("discountCodeBasicCreate")
        assert len(created) == 1
        sent = created[0].body["variables"]["d"]
        assert created[0].headers["X-Shopify-Access-Token"] == "shpat_test"
        assert created[0].path == "/admin/api/2025-01/graphql.json"
        assert sent["code"] == codes[0]
        assert sent["title"] == "Gold spring"
        assert sent["customerGets"] == {"value": {"percentage": 0.15}, "items": {"all": True}}
        assert sent["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "50.00"}}
        assert (sent["usageLimit"], sent["appliesOncePerCustomer"]) == (1000, True)
        bulks = [len(r.body["variables"]["codes"]) for r in shop.sent("discountRedeemCodeBulkAdd")]
        assert bulks == [249, 250, 100], "the first call of 250 is the discount with one code"
        assert sorted(shop.codes) == sorted(codes)
        assert set(shop.codes.values()) == {push.remote_id}
        rows = ShopCode.objects.filter(connection=connection)
        assert rows.count() == 600
        assert rows.filter(confirmed=True, error="").count() == 600

        # Run again (the task queued twice, or a retry): the shop hears nothing new.
        asked = len(shop.requests)
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        assert len(shop.requests) == asked
        # A code issued to a customer later is sent on its own, to the same discount.
        customer = CustomerFactory(merchant=merchant)
        issued = code_issue(promotion=promotion, customer=customer)
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        last = shop.sent("discountRedeemCodeBulkAdd")[-1].body["variables"]
        assert last == {"id": push.remote_id, "codes": [{"code": issued.code}]}
        assert len(shop.sent("discountCodeBasicCreate")) == 1


def test_a_changed_promotion_is_updated_in_the_shop_once(merchant):
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop)
        promotion = _unique(merchant, 3)
        push = shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        Promotion.objects.filter(pk=promotion.pk).update(value=Decimal("20.00"), is_active=False)
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        updates = shop.sent("discountCodeBasicUpdate")
        assert len(updates) == 1
        assert updates[0].body["variables"]["id"] == push.remote_id
        discount = shop.discounts[push.remote_id]
        assert discount["customerGets"]["value"] == {"percentage": 0.2}
        # Switched off here, ended there: the shop's checkout refuses it too.
        assert discount["endsAt"] is not None
        assert discount["endsAt"] > discount["startsAt"]


def test_a_busy_shop_is_tried_again_with_a_growing_wait_and_sent_once(merchant, monkeypatch):
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop)
        promotion = _unique(merchant, 300)
        shop.upcoming.append((429, {"Retry-After": "7"}, {"errors": "Exceeded 2 calls/second"}))
        with pytest.raises(ShopBusy) as busy:
            shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        assert busy.value.wait == 7
        assert retry_wait(0, busy.value.wait) == 7
        assert [retry_wait(n, None) for n in range(4)] == [5, 10, 20, 40]
        assert retry_wait(12, None) == 600
        assert not ShopCode.objects.exists()
        assert ShopPush.objects.get().claimed_until is None, "a busy shop leaves no lease"

        # Throttled half way (Shopify's GraphQL answers 200 with THROTTLED): the task
        # retries, and the codes already answered for are not sent again.
        shop.upcoming.append(
            (200, {}, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]})
        )
        shop.wait_for = 2  # the discount and the first 250 codes go through
        waits = []
        retry = shop_push_task.retry
        monkeypatch.setattr(shop_push_task, "retry", lambda **kw: waits.append(kw) or retry(**kw))
        result = shop_push_task.apply(args=[promotion.pk, connection.pk])
        assert result.state == "SUCCESS"
        assert [w["countdown"] for w in waits] == [5], "retried once, after 5 s"
        assert isinstance(waits[0]["exc"], ShopBusy)
        codes = _ours(promotion)
        assert sorted(shop.codes) == sorted(codes)
        assert ShopCode.objects.filter(error="", confirmed=True).count() == 300
        # What the shop took: 299 codes in bulk, none of them twice (the throttled call
        # took nothing and its codes went in the retry).
        taken = [node for nodes in shop.bulks.values() for node in nodes]
        assert len(taken) == 299
        assert all(node["errors"] == [] for node in taken)


def test_a_failure_right_after_the_discount_is_made_neither_makes_it_nor_sends_its_code_twice(
    merchant,
):
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop)
        promotion = _unique(merchant, 30)
        shop.upcoming.append((503, {}, {"errors": "Service unavailable"}))
        shop.wait_for = 1  # the discount is made, then the bulk add fails
        with pytest.raises(ShopBusy):
            shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        assert len(shop.sent("discountCodeBasicCreate")) == 1
        taken = [node for nodes in shop.bulks.values() for node in nodes]
        assert len(taken) == 29
        assert all(node["errors"] == [] for node in taken)
        assert ShopCode.objects.filter(error="", confirmed=True).count() == 30


def test_a_refusal_is_shown_on_the_promotion_and_not_retried(merchant, client):
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop, token="shpat_revoked")
        promotion = _unique(merchant, 5)
        result = shop_push_task.apply(args=[promotion.pk, connection.pk])
        assert result.state == "SUCCESS"
        assert len(shop.requests) == 1
        push = ShopPush.objects.get()
        assert "HTTP 401" in push.error
        assert "Invalid API key" in push.error

        client.force_login(StaffMemberFactory(merchant=merchant, role="marketer").user)
        page = client.get(f"/campaigns/promotions/{promotion.pk}/").content.decode()
        assert "The shop refused this promotion" in page
        assert "Invalid API key or access token" in page
        assert "5 still to send" in page


def test_a_public_code_the_shop_already_has_is_named(merchant):
    with fake_shop("shopify") as shop:
        shop.codes["SHIPFREE"] = "gid://shopify/DiscountCodeNode/900"
        connection = _connected(merchant, shop)
        promotion = promotion_save(
            merchant=merchant,
            promotion=None,
            actor=None,
            data={
                "name": "Free shipping",
                "kind": Promotion.Kind.FREE_SHIPPING,
                "codes": "public",
                "eligibility": "everyone",
                "per_customer_limit": 1,
            },
            public_code="shipfree",
        )
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        sent = shop.sent("discountCodeFreeShippingCreate")[0].body["variables"]["d"]
        assert sent["destination"] == {"all": True}
        assert "Code must be unique" in ShopPush.objects.get().error


def test_woocommerce_gets_a_coupon_per_code_100_at_a_time_each_answered(merchant, client):
    with fake_shop("woocommerce") as shop:
        connection = _connected(merchant, shop, platform="woocommerce")
        promotion = _unique(merchant, 250, min_spend=Decimal("30.00"))
        customer = CustomerFactory(merchant=merchant, email="noor@example.com")
        bound = code_issue(promotion=promotion, customer=customer)
        clash = _ours(promotion)[7]
        shop.codes[clash.lower()] = "55"  # the shop has a coupon of that name already
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)

        batches = shop.sent("coupons/batch")
        assert [len(r.body["create"]) for r in batches] == [100, 100, 51]
        first = batches[0]
        assert first.headers["Authorization"].startswith("Basic ")
        coupon = first.body["create"][0]
        assert coupon | {"code": "-"} == {
            "code": "-",
            "description": "Gold spring",
            "discount_type": "percent",
            "amount": "15.00",
            "individual_use": True,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "minimum_amount": "30.00",
            "date_expires_gmt": None,
            "free_shipping": False,
        }
        mine = next(c for r in batches for c in r.body["create"] if c["code"] == bound.code)
        assert mine["email_restrictions"] == ["noor@example.com"]
        refused = ShopCode.objects.get(code__code=clash)
        assert refused.error == "The coupon code already exists"
        assert ShopCode.objects.filter(error="").exclude(remote_id="").count() == 250

        asked = len(shop.requests)
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        assert len(shop.requests) == asked, "nothing is sent twice"

        client.force_login(StaffMemberFactory(merchant=merchant, role="marketer").user)
        page = client.get(f"/campaigns/promotions/{promotion.pk}/").content.decode()
        assert "250 codes in the shop" in page
        assert "1 refused by the shop" in page

        Promotion.objects.filter(pk=promotion.pk).update(value=Decimal("10.00"))
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        updates = [r.body["update"] for r in shop.sent("coupons/batch") if "update" in r.body]
        assert [len(u) for u in updates] == [100, 100, 50]
        assert {item["amount"] for u in updates for item in u} == {"10.00"}


def test_a_free_product_is_found_by_its_sku_in_the_shop(merchant):
    with fake_shop("woocommerce") as shop:
        connection = _connected(merchant, shop, platform="woocommerce")
        promotion = _unique(merchant, 2, kind=Promotion.Kind.FREE_PRODUCT, product_sku="TOTE-1")
        shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
        coupon = shop.sent("coupons/batch")[0].body["create"][0]
        assert (coupon["product_ids"], coupon["amount"]) == ([4411], "100")
        missing = _unique(merchant, 2, kind=Promotion.Kind.FREE_PRODUCT, product_sku="NOPE")
        push = shop_push(promotion_id=missing.pk, connection_id=connection.pk)
        assert push.error == "No product with the SKU NOPE in the shop."
        assert not ShopCode.objects.filter(code__promotion=missing).exists()


def test_bonus_points_and_shops_without_credentials_are_not_sent_anything(merchant):
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop)
        points = _unique(merchant, 2, kind=Promotion.Kind.BONUS_POINTS, bonus_points=50)
        assert shop_push(promotion_id=points.pk, connection_id=connection.pk) is None
        hooks_only = store_connection_create(merchant=merchant, platform="shopify")
        promotion = _unique(merchant, 2)
        assert shop_push(promotion_id=promotion.pk, connection_id=hooks_only.pk) is None
        assert shop.requests == []


def test_changes_and_new_codes_queue_a_push_to_each_shop_that_takes_codes(
    merchant, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(shop_push_task, "delay", lambda *args: queued.append(args))
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop)
        store_connection_create(merchant=merchant, platform="woocommerce")  # hooks only
        with django_capture_on_commit_callbacks(execute=True):
            promotion = promotion_save(
                merchant=merchant,
                promotion=None,
                actor=None,
                data={
                    "name": "Gold",
                    "kind": "percent",
                    "value": Decimal("10"),
                    "codes": "unique",
                    "eligibility": "everyone",
                    "per_customer_limit": 1,
                },
            )
        with django_capture_on_commit_callbacks(execute=True):
            codes_make(batch_id=batch_create(promotion=promotion, count=3).pk)
        with django_capture_on_commit_callbacks(execute=True):
            code_issue(promotion=promotion, customer=CustomerFactory(merchant=merchant))
    assert queued == [(promotion.pk, connection.pk)] * 3


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        (
            {"platform": "shopify", "admin_url": "http://shop.example.com", "admin_token": "t"},
            "admin_url",
        ),
        ({"platform": "shopify", "admin_url": "https://shop.example.com"}, "admin_token"),
        (
            {
                "platform": "woocommerce",
                "admin_url": "https://shop.example.com",
                "admin_token": "cs_1",
            },
            "admin_key",
        ),
        ({"platform": "woocommerce", "admin_key": "ck_1"}, "admin_url"),
    ],
)
def test_shop_credentials_that_cant_work_are_named(merchant, fields, wrong):
    with pytest.raises(ValidationError) as refused:
        store_connection_create(merchant=merchant, **fields)
    assert wrong in refused.value.message_dict


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_each_code_once(merchant, monkeypatch):
    monkeypatch.setattr(shops.Shopify, "batch", 50)
    with fake_shop("shopify") as shop:
        connection = _connected(merchant, shop)
        promotion = _unique(merchant, 400)
        start = threading.Barrier(4)
        failures = []

        def run():
            try:
                start.wait()
                shop_push(promotion_id=promotion.pk, connection_id=connection.pk)
            except Exception as error:
                failures.append(error)
            finally:
                db.close()

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        sent = [
            c["code"]
            for r in shop.sent("discountRedeemCodeBulkAdd")
            for c in r.body["variables"]["codes"]
        ]
        assert len(shop.sent("discountCodeBasicCreate")) == 1
        assert len(sent) == len(set(sent)) == 399
        assert ShopCode.objects.count() == 400
