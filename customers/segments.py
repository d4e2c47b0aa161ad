"""RFM scores and segments (DESIGN 5.3), refreshed set-based for a whole merchant.

R is how recent the last order is, F the number of orders, M what was spent over the
last 365 days; each is scored 1-5 by quintile within the merchant, 5 = best. The
quintile boundaries are read with four ordered lookups per measure; then one UPDATE sets
every score and one more every segment, so the work is a handful of statements whatever
the number of customers.

A score is 1 + floor(5 * customers with a strictly lower value / n): equal values always
get the same score (a shop where most people ordered once gives all of them F = 1), and
evenly spread values land in even fifths.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from customers.models import Customer, Order, Segment
from merchants.models import Merchant

# First match wins. DESIGN 5.3 lists New and Promising after Potential Loyalist, but
# Potential Loyalist (R3-5 F1-3 M1-3) contains both, so in that order they could never
# match. Following DESIGN's own rule for Can't Lose Them, the narrower segments come
# before the broader one that contains them; the rest keep DESIGN's order.
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


def _boundaries(customers, column: str, count: int) -> list[Any]:
    """For k = 1..4, the ceil(k * n / 5)-th smallest value: being above it means at least k fifths
    of the customers are strictly below."""
    ordered = customers.order_by(column).values_list(column, flat=True)
    return [ordered[-(-count * k // 5) - 1] for k in range(1, 5)]


def _score(column: str, boundaries: list[Any]) -> Case:
    return Case(
        *[When(**{f"{column}__gt": boundaries[k - 1]}, then=Value(k + 1)) for k in range(4, 0, -1)],
        default=Value(1),
        output_field=IntegerField(),
    )


@transaction.atomic
def segments_refresh(*, merchant: Merchant, at: datetime | None = None) -> int:
    """Scores and segments every customer of the merchant who has ordered; returns how
    many were scored. Customers without orders have no scores and no segment."""
    at = at or now()
    everyone = Customer.objects.filter(merchant=merchant)
    spent_refresh(merchant=merchant, at=at)
    scored = everyone.filter(erased_at__isnull=True, last_order_at__isnull=False)
    count = scored.count()
    everyone.filter(Q(erased_at__isnull=False) | Q(last_order_at__isnull=True)).update(
        recency_score=None, frequency_score=None, monetary_score=None, segment=""
    )
    if count == 0:
        return 0
    # One UPDATE writes the three scores and the segment they make.
    scores = {
        "new_r": _score("last_order_at", _boundaries(scored, "last_order_at", count)),
        "new_f": _score("orders_count", _boundaries(scored, "orders_count", count)),
        "new_m": _score("spent_last_365_days", _boundaries(scored, "spent_last_365_days", count)),
    }
    renamed = {"recency_score": "new_r", "frequency_score": "new_f", "monetary_score": "new_m"}
    scored.annotate(**scores).update(
        recency_score=F("new_r"),
        frequency_score=F("new_f"),
        monetary_score=F("new_m"),
        segment=Case(
            *[
                When(_renamed(rule, renamed), then=Value(segment))
                for segment, rule in SEGMENT_RULES
            ],
            default=Value(Segment.LOST),
        ),
    )
    return count


def _renamed(rule: Q, names: dict[str, str]) -> Q:
    """The rule over other names for its fields (here, the scores being computed)."""
    children = []
    for name, value in rule.children:
        field, sep, lookup = name.partition("__")
        children.append((f"{names[field]}{sep}{lookup}", value))
    return Q(*children, _connector=rule.connector, _negated=rule.negated)


# Tests turn this off to compare the two ways on PostgreSQL.
FAST_PATH = True

SPENT_SQL = """
UPDATE {customer} c SET spent_last_365_days = x.spent
FROM (
  SELECT c2.id, coalesce(s.spent, 0) AS spent
  FROM {customer} c2
  LEFT JOIN (
    SELECT customer_id, sum(total - refunded_amount) AS spent FROM {order}
    WHERE merchant_id = %(merchant)s AND status <> %(cancelled)s AND placed_at > %(since)s
    GROUP BY customer_id
  ) s ON s.customer_id = c2.id
  WHERE c2.merchant_id = %(merchant)s
) x
WHERE c.id = x.id AND c.spent_last_365_days IS DISTINCT FROM x.spent
"""


def spent_refresh(*, merchant: Merchant, at: datetime) -> None:
    """What each customer spent over the 365 days before `at`, net of refunds. On PostgreSQL
    one UPDATE from a grouped pass over the orders (a correlated subquery per customer took
    minutes at a million customers, see BENCHMARKS.md); elsewhere the portable form."""
    since = at - timedelta(days=365)
    if FAST_PATH and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                SPENT_SQL.format(customer=Customer._meta.db_table, order=Order._meta.db_table),
                {"merchant": merchant.pk, "cancelled": Order.Status.CANCELLED, "since": since},
            )
        return
    money = DecimalField(max_digits=12, decimal_places=2)
    recent = (
        Order.objects.filter(customer=OuterRef("pk"), placed_at__gt=since)
        .exclude(status=Order.Status.CANCELLED)
        .order_by()
        .values("customer")
        .annotate(spent=Sum(F("total") - F("refunded_amount"), output_field=money))
        .values("spent")
    )
    Customer.objects.filter(merchant=merchant).update(
        spent_last_365_days=Coalesce(Subquery(recent, output_field=money), Value(Decimal("0.00"))),
    )
