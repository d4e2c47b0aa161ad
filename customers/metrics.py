"""Retention figures, defined once (docs/business-rules.md §3) and used by every page and export.

Each takes plain totals, so the same definition serves one persona, one segment or the
whole store, whatever query produced the totals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from django.db.models import Count, Q, QuerySet, Sum

CENT = Decimal("0.01")


def share(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """part ÷ whole as a fraction (0.25 = 25%); None when there is no whole."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def repeat_purchase_rate(*, buyers: int, repeat_buyers: int) -> Decimal | None:
    """Customers with 2 or more orders ÷ customers with 1 or more."""
    return share(repeat_buyers, buyers)


def average_order_value(*, revenue: Decimal, orders: int) -> Decimal | None:
    """Revenue (net of refunds) ÷ orders, cancelled orders excluded from both."""
    if not orders:
        return None
    return (Decimal(revenue) / orders).quantize(CENT, ROUND_HALF_UP)


def historical_clv(*, revenue: Decimal, buyers: int) -> Decimal | None:
    """What a customer has spent so far, on average over customers who bought."""
    if not buyers:
        return None
    return (Decimal(revenue) / buyers).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class AudienceFigures:
    size: int
    buyers: int
    revenue: Decimal
    revenue_share: Decimal | None
    repeat_rate: Decimal | None
    aov: Decimal | None
    clv: Decimal | None


def audience_figures(customers: QuerySet, *, group_by: str) -> dict:
    """Figures for each value of `group_by` (e.g. "persona"), in one grouped query, with
    each group's share of the whole store's revenue."""
    rows = list(
        customers.order_by()
        .values(group_by)
        .annotate(
            size=Count("id"),
            buyers=Count("id", filter=Q(orders_count__gte=1)),
            repeat_buyers=Count("id", filter=Q(orders_count__gte=2)),
            revenue=Sum("total_spent"),
            orders=Sum("orders_count"),
        )
    )
    store_revenue = sum((row["revenue"] or Decimal(0) for row in rows), Decimal(0))
    return {
        row[group_by]: AudienceFigures(
            size=row["size"],
            buyers=row["buyers"],
            revenue=row["revenue"] or Decimal(0),
            revenue_share=share(row["revenue"] or 0, store_revenue),
            repeat_rate=repeat_purchase_rate(
                buyers=row["buyers"], repeat_buyers=row["repeat_buyers"]
            ),
            aov=average_order_value(
                revenue=row["revenue"] or Decimal(0), orders=row["orders"] or 0
            ),
            clv=historical_clv(revenue=row["revenue"] or Decimal(0), buyers=row["buyers"]),
        )
        for row in rows
    }


# --- Email (the totals come from campaigns/, which sends it) ---------------------------


def open_rate(*, delivered: int, opened: int) -> Decimal | None:
    """Messages opened by a reader ÷ messages delivered. Opens fetched by machines (Apple
    Mail Privacy Protection, image proxies) are not in `opened`: they would count mail
    nobody read."""
    return share(opened, delivered)


def click_rate(*, delivered: int, clicked: int) -> Decimal | None:
    """Messages with at least one click ÷ messages delivered."""
    return share(clicked, delivered)


def unsubscribe_rate(*, delivered: int, unsubscribed: int) -> Decimal | None:
    """Messages whose reader unsubscribed from them ÷ messages delivered."""
    return share(unsubscribed, delivered)


# A segment's typical gap needs this many repeat customers in it; below, the shop's.
TYPICAL_GAP_SAMPLE = 20


def typical_gap_days(customers: QuerySet) -> dict[str, float]:
    """The typical gap between orders, in days, of each segment's repeat customers: the
    median over customers with 2 or more orders of their own average gap ((last order -
    first order) ÷ (orders - 1)). Segments with fewer than TYPICAL_GAP_SAMPLE such
    customers are left out; "" holds the whole shop's, when it has that many."""
    gaps: dict[str, list[float]] = defaultdict(list)
    rows = (
        customers.filter(orders_count__gte=2, first_order_at__isnull=False,
                         last_order_at__isnull=False)
        .order_by()
        .values_list("segment", "first_order_at", "last_order_at", "orders_count")
    )  # fmt: skip
    for segment, first, last, count in rows.iterator(chunk_size=5000):
        gap = (last - first).total_seconds() / 86400 / (count - 1)
        gaps[segment].append(gap)
        gaps[""].append(gap)
    return {
        segment: round(median(values), 1)
        for segment, values in gaps.items()
        if len(values) >= TYPICAL_GAP_SAMPLE
    }
