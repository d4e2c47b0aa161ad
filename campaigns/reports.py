"""What campaigns/ shows about its campaigns (docs/business-rules.md, lift): the list with
lift at a glance, and each campaign's report, messaged against held out.

Both groups are counted the same way, whether or not a message reached her (everyone who
entered the messaged group counts in it, skipped or not): conversion is an order within
the horizon after her start (her first message's delivery; for the held out, and anyone
never sent one, when it was due), revenue is those orders' total net of refunds. A
horizon counts only the entries it has fully passed, so a campaign three days old shows
its five-day figures once they are in. The statistics are customers.lift's.
"""

from __future__ import annotations

import csv
import io
import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils.timezone import now
from django.utils.translation import gettext as _

from campaigns.models import Campaign, CampaignEntry, CodeUse, Message
from campaigns.selectors import SENT_STATES, attributed_orders
from campaigns.services.messages import sending_settings
from customers import lift
from customers.models import Order
from merchants.models import Merchant

CENT = Decimal("0.01")
HORIZONS = (30, 60, 90)
CHART_DAYS = 90


def campaign_get(*, merchant: Merchant, pk: int) -> Campaign:
    return get_object_or_404(Campaign, merchant=merchant, pk=pk)


@dataclass
class Group:
    """One group's figures over one horizon."""

    customers: int = 0
    converted: int = 0
    revenue: Decimal = Decimal("0.00")
    squares: float = 0.0
    discount: Decimal = Decimal("0.00")

    @property
    def rate(self) -> float | None:
        return self.converted / self.customers if self.customers else None

    @property
    def per_customer(self) -> Decimal | None:
        if not self.customers:
            return None
        return (self.revenue / self.customers).quantize(CENT, ROUND_HALF_UP)

    @property
    def moments(self) -> lift.Moments:
        return lift.Moments(self.customers, float(self.revenue), self.squares)


@dataclass
class Horizon:
    """Messaged against held out over `days` after each one's start."""

    days: int
    is_window: bool
    messaged: Group = field(default_factory=Group)
    held_out: Group = field(default_factory=Group)

    @property
    def conversion(self) -> lift.Difference | None:
        return lift.conversion_difference(
            treated_n=self.messaged.customers, treated_converted=self.messaged.converted,
            control_n=self.held_out.customers, control_converted=self.held_out.converted,
        )  # fmt: skip

    @property
    def revenue(self) -> lift.Difference | None:
        return lift.mean_difference(treated=self.messaged.moments, control=self.held_out.moments)

    @property
    def verdict(self) -> str:
        """customers.lift's verdict, or "pending" while no entry has been in this long."""
        if not (self.messaged.customers or self.held_out.customers):
            return "pending"
        return lift.verdict(self.conversion, treated_n=self.messaged.customers,
                            control_n=self.held_out.customers)  # fmt: skip

    @property
    def incremental_conversions(self) -> float | None:
        difference = self.conversion
        return difference.estimate * self.messaged.customers if difference else None

    @property
    def incremental_revenue(self) -> Decimal | None:
        """What the messaged group spent over what it would have at the held-out group's
        rate, less the discount its codes gave."""
        if not (self.messaged.customers and self.held_out.customers):
            return None
        expected = self.held_out.revenue / self.held_out.customers * self.messaged.customers
        gained = self.messaged.revenue - expected - self.messaged.discount
        return gained.quantize(CENT, ROUND_HALF_UP)


@dataclass
class CampaignReport:
    campaign: Campaign
    entered: int
    held_out: int
    sent: int
    delivered: int
    clicked: int
    unsubscribed: int
    skipped: int
    attributed_orders: int
    attributed_revenue: Decimal
    attribution_days: int
    horizons: list[Horizon]
    chart: dict

    @property
    def window(self) -> Horizon:
        return self.horizons[0]

    @property
    def messaged(self) -> int:
        return self.entered - self.held_out


@dataclass
class _Entry:
    held_out: bool
    start: datetime
    customer_id: int
    codes: list[str]


def _entries(campaign: Campaign) -> list[_Entry]:
    """Each entry with its start: the first delivery of its messages (their sending where
    no delivery report came), else when the first was due."""
    first_sent = dict(
        Message.objects.filter(campaign=campaign, state__in=SENT_STATES)
        .values("entry_id")
        .annotate(first=Min(Coalesce("delivered_at", "sent_at")))
        .values_list("entry_id", "first")
    )
    codes: dict[int, list[str]] = defaultdict(list)
    for entry_id, code in (
        Message.objects.filter(campaign=campaign).exclude(code="").values_list("entry_id", "code")
    ):
        codes[entry_id].append(code)
    return [
        _Entry(out, first_sent.get(pk) or starts_at, customer_id, codes.get(pk, []))
        for pk, customer_id, out, starts_at in CampaignEntry.objects.filter(campaign=campaign)
        .values_list("pk", "customer_id", "held_out", "starts_at")
        .iterator(chunk_size=5000)
    ]  # fmt: skip


def campaign_report(*, campaign: Campaign, at: datetime | None = None) -> CampaignReport:
    """The campaign's report: a few statements, then the groups' figures in one pass over
    its entries and their customers' orders since the first of them started."""
    at = at or now()
    merchant = campaign.merchant
    window_days = sending_settings(merchant=merchant).attribution_days
    entries = _entries(campaign)
    earliest = min((e.start for e in entries), default=at)
    orders: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    placed = (
        Order.objects.filter(merchant=merchant, placed_at__gte=earliest,
                             customer_id__in=CampaignEntry.objects.filter(campaign=campaign)
                             .values("customer_id"))
        .exclude(status=Order.Status.CANCELLED)
        .order_by("customer_id", "placed_at")
        .values_list("customer_id", "placed_at", "total", "refunded_amount")
    )  # fmt: skip
    for customer_id, placed_at, total, refunded in placed.iterator(chunk_size=5000):
        orders[customer_id].append((placed_at, total - refunded))
    discounts = _discounts(campaign)
    horizons = [Horizon(window_days, True)] + [Horizon(d, False) for d in HORIZONS]
    firsts: dict[bool, list[tuple[datetime, float | None]]] = {True: [], False: []}
    for entry in entries:
        history = orders.get(entry.customer_id, [])
        times = [t for t, _amount in history]
        begin = bisect_left(times, entry.start)
        first_order = times[begin] if begin < len(times) else None
        firsts[entry.held_out].append((entry.start, first_order))
        for horizon in horizons:
            end = entry.start + timedelta(days=horizon.days)
            if end > at:
                continue  # not fully passed yet: counted once it has
            stop = bisect_right(times, end)
            revenue = sum((amount for _t, amount in history[begin:stop]), Decimal("0.00"))
            group = horizon.held_out if entry.held_out else horizon.messaged
            group.customers += 1
            group.converted += stop > begin
            group.revenue += revenue
            group.squares += float(revenue) ** 2
            group.discount += sum(
                (d for code in entry.codes for when, d in discounts.get(code, [])
                 if entry.start <= when <= end), Decimal("0.00"),
            )  # fmt: skip
    counts = Message.objects.filter(campaign=campaign).aggregate(
        sent=Count("id", filter=Q(state__in=SENT_STATES)),
        delivered=Count("id", filter=Q(delivered_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
        skipped=Count("id", filter=Q(state=Message.State.SKIPPED)),
    )
    credited = attributed_orders(merchant=merchant, group="campaign_id").get(
        campaign.pk, (0, Decimal("0.00"))
    )
    return CampaignReport(
        campaign=campaign, entered=len(entries), held_out=sum(e.held_out for e in entries),
        **counts, attributed_orders=credited[0], attributed_revenue=credited[1],
        attribution_days=window_days, horizons=horizons, chart=_chart(firsts, at),
    )  # fmt: skip


def _discounts(campaign: Campaign) -> dict[str, list[tuple[datetime, Decimal]]]:
    """The discount each of the campaign's codes gave at checkout, with when."""
    codes = Message.objects.filter(campaign=campaign).exclude(code="").values("code")
    given: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for code, when, discount in CodeUse.objects.filter(
        merchant_id=campaign.merchant_id, state=CodeUse.State.REDEEMED, code__code__in=codes
    ).values_list("code__code", "redeemed_at", "discount"):
        given[code].append((when, discount))
    return given


def _chart(firsts: dict[bool, list], at: datetime) -> dict:
    """Cumulative conversion of each group by day since its start, as a share of those
    who have been in that long (so a new entry doesn't pull a day's share down). One pass
    over the entries: each adds to the days it was in for, and to those it had converted
    by."""
    longest = max(((at - start).days for group in firsts.values() for start, _f in group),
                  default=0)  # fmt: skip
    last = min(longest, CHART_DAYS)
    series = []
    for out, label in ((False, _("Messaged")), (True, _("Held out"))):
        present = [0] * (last + 2)
        converted = [0] * (last + 2)
        for start, first in firsts[out]:
            age = min((at - start).days, last)
            present[0] += 1
            present[age + 1] -= 1
            if first is not None:
                by = math.ceil((first - start) / timedelta(days=1))
                if by <= age:
                    converted[by] += 1
                    converted[age + 1] -= 1
        values, n, done = [], 0, 0
        for day in range(last + 1):
            n, done = n + present[day], done + converted[day]
            values.append(round(100 * done / n, 1) if n else None)
        series.append({"label": str(label), "values": values})
    return {"labels": list(range(last + 1)), "series": series}


def campaign_list(*, merchant: Merchant) -> list[tuple[Campaign, CampaignReport | None]]:
    """The merchant's campaigns, each with its report where anyone has entered it (the
    lift at a glance on the list)."""
    campaigns = list(
        Campaign.objects.filter(merchant=merchant).annotate(entered=Count("entries"))
        .select_related("merchant")
    )  # fmt: skip
    return [(c, campaign_report(campaign=c) if c.entered else None) for c in campaigns]


def report_csv(report: CampaignReport) -> str:
    """The report's figures, one row per horizon and group, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["horizon_days", "attribution_window", "group", "customers", "converted",
                     "conversion_rate", "revenue", "revenue_per_customer", "discount",
                     "conversion_difference", "difference_low", "difference_high",
                     "revenue_per_customer_difference", "revenue_difference_low",
                     "revenue_difference_high", "incremental_revenue"])  # fmt: skip
    for horizon in report.horizons:
        conversion, revenue = horizon.conversion, horizon.revenue
        for name, group in (("messaged", horizon.messaged), ("held_out", horizon.held_out)):
            row = [horizon.days, horizon.is_window, name, group.customers, group.converted,
                   _fraction(group.rate), group.revenue, group.per_customer or "",
                   group.discount]  # fmt: skip
            if name == "messaged":
                row += [_fraction(conversion and conversion.estimate),
                        _fraction(conversion and conversion.low),
                        _fraction(conversion and conversion.high),
                        _money(revenue and revenue.estimate), _money(revenue and revenue.low),
                        _money(revenue and revenue.high),
                        horizon.incremental_revenue if horizon.incremental_revenue is not None
                        else ""]  # fmt: skip
            writer.writerow(row)
    return out.getvalue()


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _money(value: float | None) -> str:
    return "" if value is None else str(Decimal(value).quantize(CENT, ROUND_HALF_UP))
