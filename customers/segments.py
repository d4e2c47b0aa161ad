"""RFM scores and segments (docs/business-rules.md §3): the rules, and the pieces the nightly
refresh (customers.refresh) writes them with.

R is how recent the last order is, F the number of orders, M what was spent over the
last 365 days; each is scored 1-5 by quintile within the merchant, 5 = best. The quintile
cut points are read over the whole merchant first (cut_points, a read that locks nothing);
the refresh then applies them chunk by chunk, with the segment the scores make.

A score is 1 + floor(5 * customers with a strictly lower value / n): equal values always
get the same score (a shop where most people ordered once gives all of them F = 1), and
evenly spread values land in even fifths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import connection
from django.db.models import (
    Case,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Round

from customers.models import Customer, Order, Segment
from merchants.models import Merchant

# Tests turn this off to compare the PostgreSQL statements with the portable ones.
FAST_PATH = True

# First match wins (docs/business-rules.md §3). Potential Loyalist (R3-5 F1-3 M1-3)
# contains New and Promising, so after it they could never match: as Can't Lose Them
# comes before Loyal and At Risk, the narrower segments come before the broader one.
SEGMENT_RULES: list[tuple[str, Q]] = [
    (Segment.CHAMPIONS, Q(recency_score__gte=4, frequency_score__gte=4, monetary_score__gte=4)),
    (Segment.CANT_LOSE_THEM, Q(recency_score=1, frequency_score__gte=4, monetary_score__gte=4)),
    (Segment.LOYAL, Q(recency_score__gte=2, frequency_score__gte=3, monetary_score__gte=3)),
    (Segment.NEW, Q(recency_score__gte=4, frequency_score=1, monetary_score=1)),
    (Segment.PROMISING, Q(recency_score__in=(3, 4), frequency_score=1, monetary_score=1)),
    (
        Segment.POTENTIAL_LOYALIST,
        Q(recency_score__gte=3, frequency_score__lte=3, monetary_score__lte=3),
    ),
    (
        Segment.NEED_ATTENTION,
        Q(recency_score__in=(2, 3), frequency_score__in=(2, 3), monetary_score__in=(2, 3)),
    ),
    (
        Segment.ABOUT_TO_SLEEP,
        Q(recency_score__in=(2, 3), frequency_score__lte=2, monetary_score__lte=2),
    ),
    (Segment.AT_RISK, Q(recency_score__lte=2, frequency_score__gte=2, monetary_score__gte=2)),
    (Segment.HIBERNATING, Q(recency_score__lte=2, frequency_score__lte=2, monetary_score__lte=2)),
]

# The measure each score ranks, as stored on the customer.
MEASURES = {
    "recency_score": "last_order_at",
    "frequency_score": "orders_count",
    "monetary_score": "spent_last_365_days",
}
MONEY = DecimalField(max_digits=12, decimal_places=2)


def segment_for(recency: int, frequency: int, monetary: int) -> str:
    """The segment of one set of scores, by the same rules (for previews and tests)."""
    scores = {"recency_score": recency, "frequency_score": frequency, "monetary_score": monetary}
    for segment, rule in SEGMENT_RULES:
        if _matches(rule, scores):
            return segment
    return Segment.LOST


def _matches(rule: Q, values: dict[str, int]) -> bool:
    for child in rule.children:
        name, expected = child
        field, _sep, lookup = name.partition("__")
        value = values[field]
        compare = {
            "": lambda v, e: v == e,
            "gte": lambda v, e: v >= e,
            "lte": lambda v, e: v <= e,
            "in": lambda v, e: v in e,
        }[lookup]
        if not compare(value, expected):
            return False
    return True


def renamed(rule: Q, names: Mapping[str, str]) -> Q:
    """The rule over other names for some of its fields (values computed in the same
    statement, under the names they are annotated with)."""
    children: list[Any] = []
    for child in rule.children:
        if isinstance(child, Q):
            children.append(renamed(child, names))
        else:
            name, value = cast(tuple[str, Any], child)
            field, sep, lookup = name.partition("__")
            children.append((f"{names.get(field, field)}{sep}{lookup}", value))
    return Q(*children, _connector=rule.connector, _negated=rule.negated)


# --- What is written -----------------------------------------------------------------------


def spent_in_year(at: datetime) -> Coalesce:
    """What the customer spent over the 365 days before `at`, net of refunds, cancelled
    orders left out (the portable form; customers.refresh has PostgreSQL's)."""
    recent = (
        Order.objects.filter(customer=OuterRef("pk"), placed_at__gt=at - timedelta(days=365))
        .exclude(status=Order.Status.CANCELLED)
        .order_by()
        .values("customer")
        .annotate(spent=Sum(F("total") - F("refunded_amount"), output_field=MONEY))
        .values("spent")
    )
    # Rounded to the column's cents in SQL, so a value read back compares equal to the
    # same sum computed again (SQLite adds decimals as floats).
    return Coalesce(
        Round(Subquery(recent, output_field=MONEY), 2), Value(Decimal("0.00")), output_field=MONEY
    )


UNSCORED = Q(erased_at__isnull=False) | Q(last_order_at__isnull=True)


def score_case(measure: str, cut_points: list[Any]) -> Case | Value:
    """The 1-5 score of `measure` given its four cut points; none for a customer without
    orders or erased."""
    if not cut_points:
        return Value(None, output_field=IntegerField())
    return Case(
        When(UNSCORED, then=Value(None)),
        *[
            When(**{f"{measure}__gt": cut_points[k - 1]}, then=Value(k + 1))
            for k in range(4, 0, -1)
        ],
        default=Value(1),
        output_field=IntegerField(),
    )


def segment_case(names: Mapping[str, str] | None = None) -> Case:
    """The segment the three scores make ('' when unscored); `names` says where the
    scores are read from when they are computed in the same statement."""
    names = names or {}
    return Case(
        When(renamed(Q(recency_score__isnull=True), names), then=Value("")),
        *[When(renamed(rule, names), then=Value(segment)) for segment, rule in SEGMENT_RULES],
        default=Value(Segment.LOST),
    )


# --- Cut points, over the whole merchant ---------------------------------------------------


@dataclass(frozen=True)
class CutPoints:
    """How many customers are scored, and for each measure the ceil(k * n / 5)-th smallest
    value for k = 1..4: being above the k-th means at least k fifths are strictly below."""

    scored: int
    recency: list[Any]
    frequency: list[Any]
    monetary: list[Any]

    def of(self, score: str) -> list[Any]:
        return {
            "recency_score": self.recency,
            "frequency_score": self.frequency,
            "monetary_score": self.monetary,
        }[score]


CUT_POINTS_SQL = """
WITH scored AS MATERIALIZED (
  SELECT c.last_order_at, c.orders_count, coalesce(s.spent, 0) AS spent
  FROM {customer} c
  LEFT JOIN (
    SELECT customer_id, sum(total - refunded_amount) AS spent FROM {order}
    WHERE merchant_id = %(merchant)s AND status <> %(cancelled)s AND placed_at > %(since)s
    GROUP BY customer_id
  ) s ON s.customer_id = c.id
  WHERE c.merchant_id = %(merchant)s AND c.erased_at IS NULL AND c.last_order_at IS NOT NULL
), positions AS (
  SELECT k, (n * k + 4) / 5 AS position
  FROM (SELECT count(*) AS n FROM scored) counted, generate_series(1, 4) k
  WHERE n > 0
)
SELECT (SELECT count(*) FROM scored), r.last_order_at, f.orders_count, m.spent
FROM positions p
JOIN (SELECT last_order_at, row_number() OVER (ORDER BY last_order_at) AS position
      FROM scored) r ON r.position = p.position
JOIN (SELECT orders_count, row_number() OVER (ORDER BY orders_count) AS position
      FROM scored) f ON f.position = p.position
JOIN (SELECT spent, row_number() OVER (ORDER BY spent) AS position
      FROM scored) m ON m.position = p.position
ORDER BY p.k
"""


def cut_points(*, merchant: Merchant, at: datetime) -> CutPoints:
    """The merchant's quintile cut points, with M over what each customer spent in the
    year to `at` as the refresh will write it. On PostgreSQL one read with one grouped pass
    over the year's orders (a correlated subquery per customer took minutes at a million
    customers); elsewhere the portable form, which the tests hold to the same results."""
    if FAST_PATH and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                CUT_POINTS_SQL.format(customer=Customer._meta.db_table, order=Order._meta.db_table),
                {
                    "merchant": merchant.pk,
                    "cancelled": Order.Status.CANCELLED,
                    "since": at - timedelta(days=365),
                },
            )
            rows = cursor.fetchall()
        if not rows:
            return CutPoints(0, [], [], [])
        return CutPoints(
            rows[0][0], [row[1] for row in rows], [row[2] for row in rows], [row[3] for row in rows]
        )
    scored = Customer.objects.filter(
        merchant=merchant, erased_at__isnull=True, last_order_at__isnull=False
    )
    count = scored.count()
    if not count:
        return CutPoints(0, [], [], [])
    spent = scored.annotate(spent_now=spent_in_year(at))
    return CutPoints(
        count,
        _boundaries(scored, "last_order_at", count),
        _boundaries(scored, "orders_count", count),
        _boundaries(spent, "spent_now", count),
    )


def _boundaries(customers: QuerySet, column: str, count: int) -> list[Any]:
    ordered = customers.order_by(column).values_list(column, flat=True)
    return [ordered[-(-count * k // 5) - 1] for k in range(1, 5)]
