"""The nightly refresh (customers.refresh): its PostgreSQL statement against the portable
form, chunks against one pass, what a run writes, and orders arriving while it runs."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils.timezone import now

from customers import refresh, segments
from customers.models import Customer
from customers.personas import persona_save, personas_assign, segments_and_personas_refresh
from customers.services import (
    CustomerData,
    OrderData,
    OrderLineData,
    order_cancel,
    order_ingest,
    orders_ingest_many,
)
from tests.customers.factories import order_data
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db
PATHS = [pytest.param(True, marks=pytest.mark.needs_postgres, id="postgresql"),
         pytest.param(False, id="portable")]  # fmt: skip

COLUMNS = (
    "external_id", "spent_last_365_days", "recency_score", "frequency_score", "monetary_score",
    "segment", "discount_order_share", "express_order_share", "main_channel", "top_category",
    "persona__name",
)  # fmt: skip
CLEARED = {
    "spent_last_365_days": 0, "recency_score": None, "frequency_score": None,
    "monetary_score": None, "segment": "", "discount_order_share": 0,
    "express_order_share": 0, "main_channel": "", "top_category": "", "persona": None,
}  # fmt: skip


def _shop_with_history():
    """Customers with ties in channel and category, codes without a discount amount,
    express spelled several ways, cancelled orders, old orders and no orders at all."""
    shop = MerchantFactory(base_currency="USD")
    rng = random.Random(7)
    orders = []
    for person in range(60):
        for number in range(rng.choice([0, 1, 1, 2, 3, 5, 9])):
            orders.append(
                OrderData(
                    source="api",
                    external_id=f"{person}-{number}",
                    placed_at=now() - timedelta(days=rng.randrange(900)),
                    total=Decimal(rng.choice(["10.00", "25.50", "80.00", "140.00"])),
                    discount=Decimal(rng.choice(["0", "0", "5.00"])),
                    discount_codes=rng.choice([(), (), ("SAVE",)]),
                    shipping_method=rng.choice(["Standard", "EXPRESS 24h", "Next-day", "Pickup"]),
                    channel=rng.choice(["web", "pos", "mobile", ""]),
                    currency="USD",
                    customer=CustomerData(external_id=f"p-{person}"),
                    lines=tuple(
                        OrderLineData(
                            sku=category, category=category, price=Decimal("5"), quantity=q
                        )
                        for category, q in rng.sample(
                            [("tea", 1), ("coffee", 1), ("gifts", 2), ("", 1)], 2
                        )
                    ),
                )
            )
    orders_ingest_many(merchant=shop, orders=orders)
    for order in orders[::7]:
        order_cancel(merchant=shop, source="api", external_id=order.external_id)
    for person in range(60, 65):  # signed up, never ordered
        Customer.objects.create(merchant=shop, external_id=f"p-{person}")
    rules = [
        ("Express", [{"field": "express_share", "op": "gte", "value": "50"}]),
        ("Deals", [{"field": "discount_share", "op": "gte", "value": "40"}]),
        ("Tea at the till", [{"field": "channel", "op": "eq", "value": "POS"},
                             {"field": "top_category", "op": "eq", "value": "tea"}]),
        ("Champions", [{"field": "segment", "op": "eq", "value": "champions"}]),
    ]  # fmt: skip
    for name, persona_rules in rules:
        persona_save(merchant=shop, name=name, description="", offers="", rules=persona_rules)
    return shop


def _outcome(shop) -> list[tuple]:
    return list(Customer.objects.filter(merchant=shop).order_by("id").values_list(*COLUMNS))


@pytest.mark.needs_postgres
def test_fast_and_portable_refresh_agree(monkeypatch):
    shop = _shop_with_history()
    at = now()
    # Chunks of 7 customers: cut points must come from the whole merchant, not the chunk.
    monkeypatch.setattr(refresh, "CHUNK_SIZE", 7)
    segments_and_personas_refresh(merchant=shop, at=at)
    fast = _outcome(shop)

    Customer.objects.filter(merchant=shop).update(**CLEARED)
    monkeypatch.setattr(segments, "FAST_PATH", False)
    segments_and_personas_refresh(merchant=shop, at=at)
    portable = _outcome(shop)

    assert fast == portable
    # The data really exercises what is compared.
    assert {row[5] for row in fast} >= {"champions", "lost", ""}
    assert {row[8] for row in fast} >= {"web", "pos", "mobile"}
    assert any(row[7] > 0 for row in fast)
    assert any(row[6] > 0 for row in fast)
    assert len({row[10] for row in fast}) >= 3


@pytest.mark.parametrize("fast", PATHS)
def test_chunks_give_what_one_pass_gives(monkeypatch, fast):
    monkeypatch.setattr(segments, "FAST_PATH", fast)
    shop = _shop_with_history()
    at = now()
    monkeypatch.setattr(refresh, "CHUNK_SIZE", 1_000_000)
    one_pass = segments_and_personas_refresh(merchant=shop, at=at)
    whole = _outcome(shop)
    for size in (1, 7, 64):
        Customer.objects.filter(merchant=shop).update(**CLEARED)
        monkeypatch.setattr(refresh, "CHUNK_SIZE", size)
        chunked = segments_and_personas_refresh(merchant=shop, at=at)
        assert _outcome(shop) == whole, size
        assert chunked == one_pass


def _pg_writes(shop) -> tuple[int, dict[int, str]]:
    """Rows updated so far in this transaction, and each customer's row version."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [Customer._meta.db_table],
        )
        updated = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT id, xmin::text FROM {Customer._meta.db_table} WHERE merchant_id = %s",
            [shop.pk],
        )
        return updated, dict(cursor.fetchall())


@pytest.mark.parametrize("fast", PATHS)
def test_a_second_refresh_with_nothing_new_writes_no_rows(monkeypatch, fast):
    monkeypatch.setattr(segments, "FAST_PATH", fast)
    monkeypatch.setattr(refresh, "CHUNK_SIZE", 10)
    shop = _shop_with_history()
    at = now()
    first = segments_and_personas_refresh(merchant=shop, at=at)
    assert first["written"] > 0
    if connection.vendor == "postgresql":
        before = _pg_writes(shop)

    again = segments_and_personas_refresh(merchant=shop, at=at)

    assert again["written"] == 0
    assert again["personas"] == first["personas"]
    if connection.vendor == "postgresql":
        # Not one row version: nothing locked for an order to wait on, nothing to vacuum.
        assert _pg_writes(shop) == before
    # Reassigning unchanged personas writes nothing either.
    personas_assign(merchant=shop)
    if connection.vendor == "postgresql":
        assert _pg_writes(shop) == before


# A value the refresh would never write, for each column it writes.
WRONG = {
    "spent_last_365_days": Decimal("12345.67"),
    "discount_order_share": Decimal("0.1234"),
    "express_order_share": Decimal("0.1234"),
    "main_channel": "fax",
    "top_category": "nothing",
    "recency_score": None,  # for a scored customer: NULL where a value belongs
    "frequency_score": 6,
    "monetary_score": 6,
    "segment": "lost_at_sea",
    "persona": None,
}


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("column", [*WRONG, "scores of the unscored", "persona of nobody"])
def test_a_refresh_writes_back_exactly_the_row_that_differs(monkeypatch, fast, column):
    monkeypatch.setattr(segments, "FAST_PATH", fast)
    monkeypatch.setattr(refresh, "CHUNK_SIZE", 10)
    shop = _shop_with_history()
    at = now()
    segments_and_personas_refresh(merchant=shop, at=at)
    right = _outcome(shop)
    customers = Customer.objects.filter(merchant=shop)
    if column == "scores of the unscored":  # a value where NULL belongs
        target = customers.filter(last_order_at=None).first()
        customers.filter(pk=target.pk).update(recency_score=3)
    elif column == "persona of nobody":
        target = customers.filter(persona=None).first()
        customers.filter(pk=target.pk).update(persona=customers.exclude(persona=None)[0].persona)
    else:
        target = customers.exclude(persona=None).exclude(last_order_at=None).first()
        customers.filter(pk=target.pk).update(**{column: WRONG[column]})

    assert segments_and_personas_refresh(merchant=shop, at=at)["written"] == 1
    assert _outcome(shop) == right


# --- Orders while the refresh runs ---------------------------------------------------------


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _in_thread(target) -> tuple[threading.Thread, dict]:
    """Runs target() on a connection of its own; the result dict gets its start and end
    times and any error."""
    result: dict = {}

    def run() -> None:
        result["started"] = time.monotonic()
        try:
            target()
        except BaseException as error:  # reported by the test
            result["error"] = error
        finally:
            result["ended"] = time.monotonic()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast", [True, False], ids=["postgresql", "portable"])
def test_an_order_waits_for_the_chunk_holding_its_customer_not_for_the_refresh(monkeypatch, fast):
    """The refresh is held with each chunk's transaction open (its rows written, not yet
    committed). An order for a customer of a later chunk goes straight through; one for a
    customer of the held chunk waits for that chunk's commit, and no longer."""
    monkeypatch.setattr(segments, "FAST_PATH", fast)
    monkeypatch.setattr(refresh, "CHUNK_SIZE", 10)
    shop = MerchantFactory(base_currency="USD")
    for n in range(30):  # three chunks; a first refresh writes every row
        order_ingest(
            merchant=shop, data=order_data(f"o-{n}", customer=CustomerData(external_id=f"c-{n}"))
        )
    held = [threading.Event() for _ in range(3)]
    release = [threading.Event() for _ in range(3)]
    chunks: list[dict] = []
    real = refresh._chunk_refresh

    def holding(plan, after, upto):
        chunk = {"started": time.monotonic()}
        chunks.append(chunk)
        written = real(plan, after, upto)
        chunk["written"] = written
        transaction.on_commit(lambda: chunk.update(committed=time.monotonic()))
        held[len(chunks) - 1].set()
        release[len(chunks) - 1].wait(timeout=60)
        return written

    monkeypatch.setattr(refresh, "_chunk_refresh", holding)

    def order_for(person: str, number: str):
        return lambda: order_ingest(
            merchant=shop,
            data=order_data(f"late-{number}", customer=CustomerData(external_id=person)),
        )

    refresher, refreshed = _in_thread(lambda: segments_and_personas_refresh(merchant=shop))
    try:
        assert held[0].wait(timeout=30)
        assert chunks[0]["written"] >= 10  # every row (twice in the portable form)

        later, later_result = _in_thread(order_for("c-25", "1"))  # the third chunk
        later.join(timeout=30)
        assert not later.is_alive(), "an order for a customer the refresh isn't holding waited"
        assert "error" not in later_result

        # Space between the chunk's start and the next order, so the order's own work after
        # its wait can't make its time look longer than the chunk's.
        time.sleep(0.2)
        held_one, held_result = _in_thread(order_for("c-5", "2"))  # the held first chunk
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock():
            assert time.monotonic() < deadline, "the order never waited on the held chunk"
            time.sleep(0.01)
        assert held_one.is_alive()

        release[0].set()
        assert held[1].wait(timeout=30)  # the refresh now holds its second chunk...
        held_one.join(timeout=30)
        assert not held_one.is_alive()  # ...and the order is already in
        assert "error" not in held_result
        assert refresher.is_alive()
    finally:
        for event in release:
            event.set()
        refresher.join(timeout=60)
    assert "error" not in refreshed, refreshed.get("error")

    first = chunks[0]
    waited = held_result["ended"] - held_result["started"]
    assert first["committed"] <= held_result["ended"] < chunks[1]["committed"]
    assert waited <= first["committed"] - first["started"]
    customer = Customer.objects.get(merchant=shop, external_id="c-5")
    assert customer.orders_count == 2  # the order counted, the refresh didn't undo it
