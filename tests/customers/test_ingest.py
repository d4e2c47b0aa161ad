from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import now

from customers.models import Activity, ConsentRecord, Customer, Order, OrderLine, Refund
from customers.services import (
    CustomerData,
    OrderLineData,
    RefundData,
    customer_upsert,
    order_ingest,
    orders_ingest_many,
    refund_record,
)
from tests.customers.factories import CustomerFactory, order_data
from tests.merchants.factories import MerchantFactory
from tests.races import race

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return MerchantFactory(base_currency="USD")


def _counts():
    return (
        Customer.objects.count(),
        Order.objects.count(),
        OrderLine.objects.count(),
        Activity.objects.count(),
        Refund.objects.count(),
    )


def test_an_order_creates_its_customer_lines_timeline_and_stats(shop):
    placed = now() - timedelta(days=3)
    result = order_ingest(merchant=shop, data=order_data("1001", total="80.00", placed_at=placed))

    assert result.created
    customer = result.order.customer
    assert (customer.external_id, customer.email) == ("c-1", "ada@example.test")
    assert result.order.lines.get().sku == "TEA-1"
    customer.refresh_from_db()
    assert customer.orders_count == 1
    assert customer.total_spent == Decimal("80.00")
    assert customer.average_order_value == Decimal("80.00")
    assert customer.first_order_at == customer.last_order_at == placed
    kinds = list(customer.activities.order_by("id").values_list("kind", flat=True))
    assert kinds == ["profile.created", "order.placed"]


def test_a_first_order_with_consent_records_it_once_in_order_on_the_timeline(shop):
    data = order_data(
        "1002",
        total="25.00",
        customer=CustomerData(external_id="c-2", email="bo@example.test", marketing_consent=True),
    )
    customer = order_ingest(merchant=shop, data=data).order.customer
    customer.refresh_from_db()
    assert (customer.marketing_consent, customer.marketing_consent_source) == (True, "api")
    assert list(ConsentRecord.objects.values_list("customer_id", "granted")) == [
        (customer.pk, True)
    ]
    kinds = list(customer.activities.order_by("id").values_list("kind", flat=True))
    assert kinds == ["profile.created", "consent.changed", "order.placed"]
    assert (customer.orders_count, customer.total_spent) == (1, Decimal("25.00"))


def test_a_cancelled_first_order_makes_a_customer_with_nothing_counted(shop):
    customer = order_ingest(
        merchant=shop, data=order_data("1003", status="cancelled")
    ).order.customer
    customer.refresh_from_db()
    assert (customer.orders_count, customer.total_spent, customer.last_order_at) == (
        0,
        Decimal("0"),
        None,
    )


def test_an_order_finds_its_customer_by_id_before_email_and_by_email_without_another_id(shop):
    by_email = CustomerFactory(merchant=shop, external_id="", email="cy@example.test")
    by_id = CustomerFactory(merchant=shop, external_id="c-7", email="other@example.test")
    with_other_id = CustomerFactory(merchant=shop, external_id="c-8", email="di@example.test")

    def owner(external_id, email):
        data = order_data(
            f"o-{external_id}-{email}", customer=CustomerData(external_id=external_id, email=email)
        )
        return order_ingest(merchant=shop, data=data).order.customer_id

    assert owner("c-7", "cy@example.test") == by_id.pk
    assert owner("c-new", "cy@example.test") == by_email.pk
    assert owner("c-9", "di@example.test") not in {with_other_id.pk, by_email.pk, by_id.pk}
    assert owner("", "di@example.test") == with_other_id.pk


def test_one_order_is_stored_in_a_fixed_number_of_statements(shop, django_assert_num_queries):
    CustomerFactory(merchant=shop, external_id="c-5", email="eve@example.test")
    order_ingest(merchant=shop, data=order_data("first"))  # the shop's catalog is cached now
    # Find (locked), customer insert or stats update, order, lines, timeline; and the
    # transaction, a savepoint inside the test's own.
    returning = order_data("r-1", customer=CustomerData(external_id="c-5"))
    with django_assert_num_queries(5 + 2):
        order_ingest(merchant=shop, data=returning)
    fresh = order_data("n-1", customer=CustomerData(external_id="c-6", email="fay@example.test"))
    with django_assert_num_queries(5 + 2):
        order_ingest(merchant=shop, data=fresh)
    # A resend: the order's constraint refuses it at the insert, all is rolled back, and the
    # first order answers.
    with django_assert_num_queries(3 + 3 + 1):
        assert not order_ingest(merchant=shop, data=fresh).created
    assert Order.objects.filter(external_id="n-1").count() == 1


def test_stats_add_up_over_orders_and_ignore_cancelled_ones(shop):
    first = now() - timedelta(days=30)
    order_ingest(merchant=shop, data=order_data("1", total="10.00", placed_at=first))
    order_ingest(
        merchant=shop, data=order_data("2", total="25.00", placed_at=first + timedelta(days=5))
    )
    order_ingest(
        merchant=shop, data=order_data("3", total="50.00", placed_at=first + timedelta(days=9))
    )
    order_ingest(
        merchant=shop,
        data=order_data(
            "4", total="999.00", placed_at=first + timedelta(days=20), status="cancelled"
        ),
    )

    customer = Customer.objects.get(merchant=shop, external_id="c-1")
    assert customer.orders_count == 3
    assert customer.total_spent == Decimal("85.00")
    assert customer.average_order_value == Decimal("28.33")
    assert customer.first_order_at == first
    assert customer.last_order_at == first + timedelta(days=9)


def test_the_same_order_sent_again_returns_the_original_and_writes_nothing(shop):
    original = order_ingest(merchant=shop, data=order_data("1001", total="80.00")).order
    before = _counts()

    again = order_ingest(merchant=shop, data=order_data("1001", total="12345.00"))

    assert not again.created
    assert again.order.pk == original.pk
    assert again.order.total == Decimal("80.00")
    assert _counts() == before
    assert Customer.objects.get().total_spent == Decimal("80.00")


def test_the_same_external_id_from_another_source_is_another_order(shop):
    order_ingest(merchant=shop, data=order_data("1001", source="api"))
    assert order_ingest(merchant=shop, data=order_data("1001", source="shopify")).created


def test_orders_in_another_currency_are_refused_naming_the_field(shop):
    with pytest.raises(ValidationError) as error:
        order_ingest(merchant=shop, data=order_data("1001", currency="EUR"))
    assert "currency" in error.value.message_dict
    assert "USD" in error.value.message_dict["currency"][0]
    assert _counts() == (0, 0, 0, 0, 0)


def test_a_bad_line_is_named_and_nothing_is_written(shop):
    bad = (
        OrderLineData(sku="A", price=Decimal("5")),
        OrderLineData(sku="B", price=Decimal("5"), quantity=0),
    )
    with pytest.raises(ValidationError) as error:
        order_ingest(merchant=shop, data=order_data("1001", lines=bad))
    assert list(error.value.message_dict) == ["lines[1].quantity"]
    assert _counts() == (0, 0, 0, 0, 0)


def test_an_order_finds_a_known_customer_by_email_in_any_case(shop):
    known = CustomerFactory(merchant=shop, external_id="", email="grace@example.test")
    result = order_ingest(
        merchant=shop,
        data=order_data(
            "1", customer=CustomerData(external_id="shop-77", email=" Grace@Example.TEST ")
        ),
    )
    assert result.order.customer_id == known.pk
    known.refresh_from_db()
    assert known.external_id == "shop-77"
    assert Customer.objects.count() == 1


def test_customers_of_another_merchant_are_never_matched(shop):
    CustomerFactory(external_id="c-1", email="ada@example.test")  # another merchant's
    result = order_ingest(merchant=shop, data=order_data("1"))
    assert result.order.customer.merchant == shop
    assert Customer.objects.count() == 2


def test_a_customer_needs_an_id_or_an_email(shop):
    with pytest.raises(ValidationError) as error:
        customer_upsert(merchant=shop, data=CustomerData(first_name="Anon"), source="api")
    assert "customer" in error.value.message_dict


def test_profile_updates_change_only_what_was_sent_and_consent_is_recorded(shop):
    customer, created = customer_upsert(
        merchant=shop,
        data=CustomerData(
            external_id="c-9", email="lin@example.test", city="Oslo", marketing_consent=True
        ),
        source="api",
    )
    assert created
    customer, created = customer_upsert(
        merchant=shop,
        data=CustomerData(external_id="c-9", first_name="Lin", marketing_consent=False),
        source="csv",
    )
    assert not created
    customer.refresh_from_db()
    assert (customer.first_name, customer.city, customer.email) == (
        "Lin",
        "Oslo",
        "lin@example.test",
    )
    assert customer.marketing_consent is False
    assert customer.marketing_consent_source == "csv"
    assert list(ConsentRecord.objects.order_by("id").values_list("granted", "source")) == [
        (True, "api"),
        (False, "csv"),
    ]
    update = Activity.objects.get(kind="profile.updated")
    assert update.data == {"source": "csv", "fields": ["first_name"]}


def test_refunds_lower_what_was_spent_once_and_never_past_the_order(shop):
    order_ingest(merchant=shop, data=order_data("1", total="100.00"))
    refund = RefundData(
        source="api",
        external_id="r-1",
        order_external_id="1",
        amount=Decimal("30.00"),
        refunded_at=now(),
    )

    refund_record(merchant=shop, data=refund)
    _again, created = refund_record(merchant=shop, data=refund)

    assert not created
    order = Order.objects.get()
    assert (order.status, order.refunded_amount) == ("partially_refunded", Decimal("30.00"))
    assert Customer.objects.get().total_spent == Decimal("70.00")
    with pytest.raises(ValidationError) as error:
        refund_record(
            merchant=shop,
            data=RefundData(
                source="api",
                external_id="r-2",
                order_external_id="1",
                amount=Decimal("70.01"),
                refunded_at=now(),
            ),
        )
    assert "70.00" in error.value.message_dict["amount"][0]
    refund_record(
        merchant=shop,
        data=RefundData(
            source="api",
            external_id="r-3",
            order_external_id="1",
            amount=Decimal("70.00"),
            refunded_at=now(),
        ),
    )
    order.refresh_from_db()
    assert order.status == "refunded"
    customer = Customer.objects.get()
    assert (customer.orders_count, customer.total_spent) == (1, Decimal("0.00"))


def test_a_refund_for_another_merchants_order_is_not_found(shop):
    order_ingest(merchant=MerchantFactory(), data=order_data("1"))
    with pytest.raises(ValidationError) as error:
        refund_record(
            merchant=shop,
            data=RefundData(
                source="api",
                external_id="r-1",
                order_external_id="1",
                amount=Decimal("1"),
                refunded_at=now(),
            ),
        )
    assert "order_external_id" in error.value.message_dict


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_copies_sent_at_once_make_one_order_and_one_set_of_stats():
    shop = MerchantFactory()
    for attempt in range(5):
        errors = race(
            lambda _i, n=attempt: order_ingest(
                merchant=shop, data=order_data(f"dup-{n}", total="40.00")
            ),
            2,
        )
        assert errors == []
    assert Order.objects.count() == 5
    assert OrderLine.objects.count() == 5
    customer = Customer.objects.get()
    assert (customer.orders_count, customer.total_spent) == (5, Decimal("200.00"))
    assert Activity.objects.filter(kind="order.placed").count() == 5


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_different_orders_for_a_new_customer_at_once_all_count():
    shop = MerchantFactory()
    errors = race(
        lambda i: order_ingest(merchant=shop, data=order_data(f"o-{i}", total="10.00")), 8
    )
    assert errors == []
    customer = Customer.objects.get()
    assert customer.orders_count == 8
    assert customer.total_spent == Decimal("80.00")
    assert customer.average_order_value == Decimal("10.00")


def test_bulk_ingest_matches_one_by_one_ingest_and_skips_what_is_stored(shop):
    other = MerchantFactory(base_currency="USD")
    batch = [
        order_data(f"b-{n}", total=f"{10 + n}.00", customer=CustomerData(external_id=f"c-{n % 3}"))
        for n in range(9)
    ]
    order_ingest(merchant=shop, data=batch[0])

    results = orders_ingest_many(merchant=shop, orders=batch)
    assert [r.created for r in results] == [False] + [True] * 8
    assert results[0].order.pk == Order.objects.get(merchant=shop, external_id="b-0").pk
    for data in batch:
        order_ingest(merchant=other, data=data)

    def stats(merchant):
        return sorted(
            Customer.objects.filter(merchant=merchant).values_list(
                "external_id",
                "orders_count",
                "total_spent",
                "average_order_value",
                "first_order_at",
                "last_order_at",
            )
        )

    assert stats(shop) == stats(other)
    assert OrderLine.objects.filter(order__merchant=shop).count() == 9
    assert Activity.objects.filter(merchant=shop, kind="order.placed").count() == 9
    assert not any(r.created for r in orders_ingest_many(merchant=shop, orders=batch))
    assert Order.objects.filter(merchant=shop).count() == 9


def test_bulk_ingest_is_all_or_nothing(shop):
    batch = [order_data("ok"), order_data("bad", currency="EUR")]
    with pytest.raises(ValidationError) as error:
        orders_ingest_many(merchant=shop, orders=batch)
    assert list(error.value.message_dict) == ["orders[1].currency"]
    assert _counts() == (0, 0, 0, 0, 0)


def test_a_batch_stores_each_order_once_even_when_it_is_sent_twice_in_it(shop):
    batch = [order_data("twice"), order_data("other"), order_data("twice", total="99.00")]
    results = orders_ingest_many(merchant=shop, orders=batch)
    assert [r.created for r in results] == [True, True, False]
    assert results[2].order.pk == results[0].order.pk
    assert results[2].order.total == Decimal("50.00")
    customer = Customer.objects.get()
    assert (customer.orders_count, customer.total_spent) == (2, Decimal("100.00"))


def test_a_batch_creates_new_customers_with_their_consent_and_claims_a_known_email(shop):
    known = CustomerFactory(merchant=shop, external_id="", email="known@example.test")
    batch = [
        order_data("a", customer=CustomerData(external_id="x-1", email="Known@Example.test")),
        order_data(
            "b",
            customer=CustomerData(
                external_id="x-2", email="new@example.test", marketing_consent=True
            ),
        ),
        order_data("c", customer=CustomerData(external_id="x-2", first_name="Ines")),
    ]
    results = orders_ingest_many(merchant=shop, orders=batch)

    assert results[0].order.customer_id == known.pk
    known.refresh_from_db()
    assert known.external_id == "x-1"
    fresh = Customer.objects.get(merchant=shop, external_id="x-2")
    assert (fresh.email, fresh.first_name, fresh.orders_count) == ("new@example.test", "Ines", 2)
    assert fresh.marketing_consent is True
    assert ConsentRecord.objects.get(customer=fresh).granted is True
    kinds = set(Activity.objects.filter(customer=fresh).values_list("kind", flat=True))
    assert kinds == {"profile.created", "consent.changed", "order.placed"}


def test_a_batch_names_a_bad_customer_field_and_writes_nothing(shop):
    batch = [order_data("ok"), order_data("bad", customer=CustomerData(email="not-an-email"))]
    with pytest.raises(ValidationError) as error:
        orders_ingest_many(merchant=shop, orders=batch)
    assert list(error.value.message_dict) == ["orders[1].customer.email"]
    assert _counts() == (0, 0, 0, 0, 0)


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_batches_at_once_store_every_order_once_with_true_stats():
    """Four batches over the same new customers, each sharing half its orders with the
    next: no deadlock, no duplicate customer or order, and stats that add up."""
    shop = MerchantFactory()
    people = [CustomerData(external_id=f"p-{n}", email=f"p{n}@example.test") for n in range(6)]

    def batch(index: int) -> list:
        numbers = range(index * 10, index * 10 + 20)
        return [order_data(f"o-{n}", total="10.00", customer=people[n % 6]) for n in numbers]

    errors = race(lambda i: orders_ingest_many(merchant=shop, orders=batch(i)), 4)
    assert errors == []
    assert Order.objects.filter(merchant=shop).count() == 50
    assert Customer.objects.filter(merchant=shop).count() == 6
    assert Activity.objects.filter(merchant=shop, kind="order.placed").count() == 50
    for customer in Customer.objects.filter(merchant=shop):
        mine = Order.objects.filter(customer=customer).count()
        assert customer.orders_count == mine
        assert customer.total_spent == Decimal("10.00") * mine


@pytest.mark.parametrize("path", [pytest.param("copy", marks=pytest.mark.needs_postgres), "values"])
def test_each_insert_path_stores_what_bulk_create_stores(monkeypatch, path):
    """The PostgreSQL COPY path of bulk ingest, and the one INSERT … VALUES of a few rows,
    against bulk_create, on one batch."""
    from customers import inserts

    if path == "copy":
        monkeypatch.setattr(inserts, "FEW_ROWS", 0)

    people = [
        CustomerData(external_id=f"p-{n}", email=f"p{n}@example.test", marketing_consent=n == 1)
        for n in range(3)
    ]
    batch = [
        order_data(f"o-{n}", total=f"{10 + n}.00", customer=people[n % 3], placed_at=now())
        for n in range(7)
    ]

    def stored(merchant) -> dict:
        def rows(model, *names):
            return sorted(model.objects.filter(merchant=merchant).values_list(*names))

        return {
            "customers": rows(
                Customer, "external_id", "email", "orders_count", "total_spent",
                "average_order_value", "marketing_consent", "marketing_consent_source",
            ),
            "orders": rows(
                Order, "external_id", "customer__external_id", "total", "discount_codes",
                "placed_at", "status", "currency",
            ),
            "lines": rows(OrderLine, "order__external_id", "sku", "quantity", "price"),
            "timeline": rows(Activity, "customer__external_id", "kind", "data__total",
                             "data__source", "data__granted", "data__external_id"),
            "consents": rows(ConsentRecord, "customer__external_id", "granted", "source"),
        }  # fmt: skip

    copied, portable = MerchantFactory(base_currency="USD"), MerchantFactory(base_currency="USD")
    orders_ingest_many(merchant=copied, orders=batch)
    monkeypatch.setattr(inserts, "USE_COPY", False)
    orders_ingest_many(merchant=portable, orders=batch)

    assert stored(copied) == stored(portable)
    assert len(stored(copied)["lines"]) == 7
    assert Order.objects.filter(merchant=copied).first().lines.count() == 1


def test_counting_orders_one_at_a_time_equals_recounting_them(shop):
    """Single orders add to the stats in place; a full recount must find the same figures."""
    from customers.services import customer_stats_refresh

    start = now() - timedelta(days=30)
    for n, (total, days) in enumerate([("10.01", 5), ("0.00", 1), ("33.33", 20), ("7.50", 9)]):
        order_ingest(
            merchant=shop,
            data=order_data(f"s-{n}", total=total, placed_at=start + timedelta(days=days)),
        )
    order_ingest(merchant=shop, data=order_data("gone", total="99.00", status="cancelled"))
    fields = (
        "orders_count",
        "total_spent",
        "average_order_value",
        "first_order_at",
        "last_order_at",
    )
    added = Customer.objects.values_list(*fields).get()
    customer_stats_refresh(customer_ids=[Customer.objects.get().pk])
    assert Customer.objects.values_list(*fields).get() == added
    assert added[:3] == (4, Decimal("50.84"), Decimal("12.71"))
    assert added[3] == start + timedelta(days=1)
    assert added[4] == start + timedelta(days=20)
