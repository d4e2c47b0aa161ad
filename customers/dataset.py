"""Scale data for benchmarks: N customers and M orders (with lines and timeline entries)
for one merchant, streamed to the database: COPY on PostgreSQL, batched INSERTs elsewhere.
Memory holds one customer's orders at a time, plus an order count per customer.

Customer stats are computed as the rows are written, so they equal what the services
would have kept; segments and personas are left for their refresh (which is benchmarked).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, models, transaction
from django.utils.timezone import now

from customers.models import Activity, Customer, Order, OrderLine
from merchants.models import Merchant

PRICES = [("tea", "12.00"), ("tea", "18.50"), ("coffee", "9.90"), ("teaware", "42.00"),
          ("gifts", "35.00"), ("snacks", "4.50"), ("tea", "7.25"), ("coffee", "15.00")]  # fmt: skip
SKUS = [
    (f"SKU-{n:03d}", f"Product {n}", category, Decimal(price))
    for n, (category, price) in enumerate(PRICES)
]
CHANNELS = ["web", "web", "web", "mobile", "mobile", "pos"]
BATCH = 5000


class Table:
    """Rows for one table, written in batches: COPY on PostgreSQL, INSERT elsewhere. Unset
    columns take the model's defaults, so a row is what the ORM would have stored."""

    def __init__(self, model: type[models.Model], cursor, *, explicit_ids: bool = True) -> None:
        self.fields = [f for f in model._meta.concrete_fields if explicit_ids or not f.primary_key]
        self.table = model._meta.db_table
        self.columns = [f.column for f in self.fields]
        self.defaults = {f.attname: f.get_default() for f in self.fields}
        self.cursor = cursor
        self.rows: list[tuple] = []
        self.written = 0

    def add(self, values: dict[str, Any]) -> None:
        row = {**self.defaults, **values}
        self.rows.append(tuple(self._db_value(field, row[field.attname]) for field in self.fields))
        if len(self.rows) >= BATCH:
            self.flush()

    @staticmethod
    def _db_value(field: models.Field, value: Any) -> Any:
        if isinstance(field, models.JSONField):
            return json.dumps(value)
        if isinstance(value, Decimal):
            return str(value)
        return value

    def flush(self) -> None:
        if not self.rows:
            return
        self.write(self.rows)
        self.written += len(self.rows)
        self.rows = []

    def write(self, rows: list[tuple]) -> None:
        quoted = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        if connection.vendor == "postgresql":
            with self.cursor.copy(
                f"COPY {connection.ops.quote_name(self.table)} ({quoted}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(self.columns))
            self.cursor.executemany(
                f"INSERT INTO {connection.ops.quote_name(self.table)} ({quoted}) VALUES ({marks})",
                rows,
            )


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(top=models.Max("id"))["top"] or 0) + 1


def _sequences_reset(cursor, models_: list[type[models.Model]]) -> None:
    """Explicit ids were written; move each id sequence past them."""
    for statement in connection.ops.sequence_reset_sql(_NoStyle(), models_):
        cursor.execute(statement)


class _NoStyle:
    def __getattr__(self, name: str) -> Callable[[str], str]:
        return lambda text: text


@dataclass(frozen=True)
class DatasetResult:
    customers: int
    orders: int
    lines: int
    activities: int
    seconds: float


def dataset_generate(
    *,
    merchant: Merchant,
    customers: int,
    orders: int,
    seed: int = 1,
    timeline: bool = True,
    on_progress: Callable[[str, int], None] = lambda table, rows: None,
) -> DatasetResult:
    started = time.monotonic()
    rng = random.Random(seed)
    # A few customers order often, most once or twice: customer index ~ uniform ** 1.6.
    counts = [0] * customers
    for _ in range(orders):
        counts[min(customers - 1, int(customers * rng.random() ** 1.6))] += 1
    end = now().replace(microsecond=0)
    span_seconds = int(timedelta(days=730).total_seconds())
    with transaction.atomic(), connection.cursor() as cursor:
        customer_id, order_id = _next_id(Customer), _next_id(Order)
        tables = {
            "customers": Table(Customer, cursor),
            "orders": Table(Order, cursor),
            "lines": Table(OrderLine, cursor, explicit_ids=False),
            "activities": Table(Activity, cursor, explicit_ids=False),
        }
        stamp = f"s{seed}-{customer_id}"
        for index, count in enumerate(counts):
            created = end - timedelta(seconds=rng.randrange(span_seconds))
            window = max(1, int((end - created).total_seconds()))
            placed_times = sorted(
                created + timedelta(seconds=rng.randrange(window)) for _ in range(count)
            )
            spent = Decimal("0.00")
            for placed in placed_times:
                total = Decimal("0.00")
                lines = []
                for sku, name, category, price in rng.sample(SKUS, rng.randint(1, 3)):
                    quantity = rng.randint(1, 3)
                    lines.append((sku, name, category, quantity, price))
                    total += price * quantity
                discounted = rng.random() < 0.25
                discount = (
                    (total * Decimal("0.10")).quantize(Decimal("0.01"), ROUND_HALF_UP)
                    if discounted
                    else Decimal("0.00")
                )
                express = rng.random() < 0.15
                shipping = Decimal("9.90") if express else Decimal("4.90")
                order_total = total - discount + shipping
                tables["orders"].add(
                    {
                        "id": order_id,
                        "merchant_id": merchant.pk,
                        "customer_id": customer_id,
                        "source": "api",
                        "external_id": f"{stamp}-{order_id}",
                        "placed_at": placed,
                        "status": "paid",
                        "currency": merchant.base_currency,
                        "subtotal": total,
                        "discount": discount,
                        "shipping": shipping,
                        "total": order_total,
                        "channel": rng.choice(CHANNELS),
                        "shipping_method": "Express" if express else "Standard",
                        "discount_codes": ["SAVE10"] if discounted else [],
                        "created_at": placed,
                    }
                )
                for sku, name, category, quantity, price in lines:
                    tables["lines"].add(
                        {
                            "merchant_id": merchant.pk,
                            "order_id": order_id,
                            "sku": sku,
                            "name": name,
                            "category": category,
                            "quantity": quantity,
                            "price": price,
                        }
                    )
                if timeline:
                    tables["activities"].add(
                        {
                            "merchant_id": merchant.pk,
                            "customer_id": customer_id,
                            "kind": "order.placed",
                            "occurred_at": placed,
                            "data": {"order_id": order_id, "total": str(order_total)},
                        }
                    )
                spent += order_total
                order_id += 1
            tables["customers"].add(
                {
                    "id": customer_id,
                    "merchant_id": merchant.pk,
                    "external_id": f"{stamp}-{customer_id}",
                    "email": f"c{customer_id}.{stamp}@dataset.test",
                    "first_name": f"First{index % 997}",
                    "last_name": f"Last{index % 991}",
                    "city": f"City {index % 50}",
                    "country": "US",
                    "marketing_consent": index % 3 != 0,
                    "created_at": created,
                    "updated_at": created,
                    "orders_count": count,
                    "total_spent": spent,
                    "average_order_value": (spent / count).quantize(Decimal("0.01"), ROUND_HALF_UP)
                    if count
                    else Decimal("0.00"),
                    "first_order_at": placed_times[0] if count else None,
                    "last_order_at": placed_times[-1] if count else None,
                }
            )
            customer_id += 1
            if index % 50_000 == 49_999:
                on_progress("customers", index + 1)
        # Foreign keys are checked at commit, so the order of the last batches is free.
        for name in ("customers", "orders", "lines", "activities"):
            tables[name].flush()
        _sequences_reset(cursor, [Customer, Order])
    if connection.vendor == "postgresql":
        # Millions of new rows and no statistics yet: without this the planner takes a
        # 100k-row table for a 100-row one and scans order lines once per customer.
        with connection.cursor() as cursor:
            for model in (Customer, Order, OrderLine, Activity):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return DatasetResult(
        customers=tables["customers"].written,
        orders=tables["orders"].written,
        lines=tables["lines"].written,
        activities=tables["activities"].written,
        seconds=time.monotonic() - started,
    )
