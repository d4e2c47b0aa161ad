"""Triggered flows (docs/business-rules.md, messages): each reacts to one kind of customer
Activity, which lower apps record without knowing campaigns/ exists. A pass every minute
turns new activities into queued messages, keyed by flow and activity so a pass run twice
queues nothing twice; due messages are claimed in chunks for the send tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from campaigns.models import Campaign, Flow, Message, SendingSettings
from customers.metrics import typical_gap_days
from customers.models import Activity, Customer
from customers.selectors import born_on
from merchants.models import Merchant
from merchants.services import audited_save, job_run_claim, job_run_finish

Trigger = Flow.Trigger
KIND_OF = {
    Trigger.WELCOME: Activity.Kind.PROFILE_CREATED,
    Trigger.POST_PURCHASE: Activity.Kind.ORDER_PLACED,
    Trigger.SHIPPED: Activity.Kind.ORDER_SHIPPED,
    Trigger.DELIVERED: Activity.Kind.ORDER_DELIVERED,
    # Its own flow with its delay (a week, say) and a template with {{ review_link }}.
    Trigger.REVIEW_REQUEST: Activity.Kind.ORDER_DELIVERED,
    Trigger.POINTS_EARNED: Activity.Kind.POINTS_EARNED,
    Trigger.POINTS_EXPIRING: Activity.Kind.POINTS_EXPIRING,
    Trigger.TIER_UP: Activity.Kind.TIER_CHANGED,
    Trigger.TIER_DOWN: Activity.Kind.TIER_AT_RISK,
    Trigger.MEMBERSHIP_RENEWED: Activity.Kind.MEMBERSHIP_CHANGED,
    Trigger.PAYMENT_FAILED: Activity.Kind.MEMBERSHIP_CHANGED,
    Trigger.FEEDBACK_RESOLVED: Activity.Kind.FEEDBACK_RESOLVED,
}
# Late commits: a transaction that took a while may commit activities dated before the
# last pass. Reading again from this far back finds them; the keys make the rest no-ops.
MARGIN = timedelta(minutes=15)
# An activity older than this when first seen (an import of last year's orders) is
# history, not a moment to write to her about.
STALE = timedelta(days=2)
CHUNK = 1000
SEND_CHUNK = 200
CLAIM_SLICE = 5_000  # ids per UPDATE: a statement's parameters are limited
# Birthday wishes and second-order nudges go out from this merchant-local hour (quiet
# hours still apply).
MORNING_HOUR = 9
# A one-time buyer's nudge waits her segment's typical gap between orders; this long when
# the shop has too few repeat customers to tell (customers.metrics.TYPICAL_GAP_SAMPLE).
DEFAULT_GAP_DAYS = 30.0


def _matches(trigger: str, data: dict) -> bool:
    if trigger == Trigger.TIER_UP:
        return data.get("up") is True
    if trigger == Trigger.MEMBERSHIP_RENEWED:
        return data.get("to") == "active" and data.get("from") in ("active", "past_due")
    if trigger == Trigger.PAYMENT_FAILED:
        return data.get("to") == "past_due"
    return True


def flow_advance(*, flow_id: int, at: datetime | None = None) -> int:
    """Queues a message for each new activity of the flow's kind (or, for birthdays, each
    customer born today); answers how many. The flow's row is locked for the pass, so a
    second pass at once skips it."""
    at = at or now()
    with transaction.atomic():
        flow = (
            Flow.objects.select_for_update(skip_locked=True)
            .select_related("template", "merchant")
            .filter(pk=flow_id, enabled=True)
            .first()
        )
        if flow is None or flow.enabled_at is None:
            return 0
        if flow.trigger == Trigger.BIRTHDAY:
            return _birthdays(flow, at)
        if flow.trigger == Trigger.SECOND_ORDER:
            return _second_orders(flow, at)
        since = max(flow.enabled_at, at - STALE)
        if flow.scanned_until is not None:
            since = max(since, flow.scanned_until - MARGIN)
        activities = (
            Activity.objects.filter(merchant_id=flow.merchant_id, kind=KIND_OF[flow.trigger],
                                    occurred_at__gte=since, occurred_at__lte=at)
            .order_by()
            .values_list("pk", "customer_id", "occurred_at", "data")
        )  # fmt: skip
        delay = timedelta(minutes=flow.delay_minutes)
        made = _queued(flow, at, (
            (customer_id, f"flow:{flow.pk}:{pk}", data or {}, occurred_at + delay)
            for pk, customer_id, occurred_at, data in activities.iterator(chunk_size=CHUNK)
            if _matches(flow.trigger, data or {})
        ))  # fmt: skip
        Flow.objects.filter(pk=flow.pk).update(scanned_until=at)
    return made


def _queued(flow: Flow, at: datetime, entries) -> int:
    """Messages of the flow from (customer, key, data, due) entries, inserted CHUNK at a
    time; a key queued before is passed over. Answers how many were new."""
    made = 0
    batch: list[Message] = []
    for customer_id, key, data, due in entries:
        batch.append(Message(
            merchant_id=flow.merchant_id, customer_id=customer_id, kind=flow.template.kind,
            template_id=flow.template_id, flow=flow, key=key, data=data, created_at=at,
            send_after=due,
        ))  # fmt: skip
        if len(batch) == CHUNK:
            made += len(Message.objects.bulk_create(batch, ignore_conflicts=True))
            batch = []
    if batch:
        made += len(Message.objects.bulk_create(batch, ignore_conflicts=True))
    return made


def _birthdays(flow: Flow, at: datetime) -> int:
    """Once per merchant-local day, from MORNING_HOUR: a message to each customer born on
    this day, keyed by year (a second pass, or a second worker, queues nothing more)."""
    run, local = _morning_claim(flow, at, "birthday")
    if run is None:
        return 0
    born = (
        Customer.objects.filter(born_on(local.date()), merchant_id=flow.merchant_id,
                                erased_at=None)
        .order_by()
        .values_list("pk", flat=True)
    )  # fmt: skip
    made = _queued(flow, at, (
        (customer_id, f"flow:{flow.pk}:birthday:{customer_id}:{local.year}", {}, at)
        for customer_id in born.iterator(chunk_size=CHUNK)
    ))  # fmt: skip
    _morning_done(flow, run, at, {"messages": made})
    return made


def _morning_claim(flow: Flow, at: datetime, pass_name: str):
    """(the JobRun, the merchant-local moment) of the flow's pass for this merchant-local
    day, or (None, …) before MORNING_HOUR or once another pass has claimed it."""
    local = at.astimezone(flow.merchant.zone)
    if local.hour < MORNING_HOUR:
        return None, local
    run = job_run_claim(job=f"campaigns.{pass_name}.{flow.pk}", merchant=flow.merchant,
                        period_key=local.date().isoformat())  # fmt: skip
    return run, local


def _morning_done(flow: Flow, run, at: datetime, detail: dict) -> None:
    Flow.objects.filter(pk=flow.pk).update(scanned_until=at)
    job_run_finish(run=run, detail=detail)


def _second_orders(flow: Flow, at: datetime) -> int:
    """Once per merchant-local day, from MORNING_HOUR: a nudge to each one-time buyer whose
    only order is now as old as her segment's typical gap between orders (the shop's where
    her segment has too few repeat customers to tell), once per customer. An order older
    than that by more than STALE had its moment before (the flow was off, or a day was
    missed)."""
    run, _local = _morning_claim(flow, at, "second_order")
    if run is None:
        return 0
    customers = Customer.objects.filter(merchant_id=flow.merchant_id, erased_at=None)
    gaps = typical_gap_days(customers)
    shop = gaps.pop("", DEFAULT_GAP_DAYS)
    delay = timedelta(minutes=flow.delay_minutes)
    made = 0
    groups: list[tuple[list[str] | None, float]] = [([s], gap) for s, gap in gaps.items()]
    groups.append((None, shop))  # every other segment, and customers not scored yet
    for segments, gap in groups:
        due = at - timedelta(days=gap)
        buyers = customers.filter(orders_count=1, last_order_at__lte=due,
                                  last_order_at__gt=due - STALE)  # fmt: skip
        buyers = buyers.filter(segment__in=segments) if segments else buyers.exclude(
            segment__in=list(gaps)
        )  # fmt: skip
        made += _queued(flow, at, (
            (pk, f"flow:{flow.pk}:second-order:{pk}", {"gap_days": gap}, at + delay)
            for pk in buyers.order_by().values_list("pk", flat=True).iterator(chunk_size=CHUNK)
        ))  # fmt: skip
    _morning_done(flow, run, at, {"messages": made, "gaps": {**gaps, "": shop}})
    return made


def flows_advance(*, at: datetime | None = None) -> None:
    for flow_id in Flow.objects.filter(enabled=True).values_list("pk", flat=True):
        flow_advance(flow_id=flow_id, at=at)


def due_claim(*, at: datetime | None = None) -> list[list[int]]:
    """Takes the messages due now, each merchant's up to its rate per minute, in chunks
    for the send tasks. A claim lasts MESSAGE_LEASE_SECONDS: a chunk whose worker died is
    claimed again by a later pass, and sending it twice sends each message once
    (message_deliver)."""
    at = at or now()
    # Taken by a worker that died before it sent them: back in the queue (one of them may
    # have reached the server; it goes again with the same Message-ID).
    Message.objects.filter(state=Message.State.SENDING, claimed_until__lt=at).update(
        state=Message.State.QUEUED, sent_at=None, claimed_until=None
    )
    due = Message.objects.filter(
        Q(state=Message.State.QUEUED, send_after__lte=at)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=at))
    ).exclude(  # a paused campaign's messages wait for it
        campaign_id__in=Campaign.objects.filter(state=Campaign.State.PAUSED).values("pk")
    )
    rates = dict(SendingSettings.objects.values_list("merchant_id", "send_rate"))
    chunks: list[list[int]] = []
    for merchant_id in due.values_list("merchant_id", flat=True).distinct().order_by():
        limit = rates.get(merchant_id, SendingSettings().send_rate)
        with transaction.atomic():
            ids = list(
                due.filter(merchant_id=merchant_id)
                .select_for_update(skip_locked=True)
                .order_by("send_after", "pk")
                .values_list("pk", flat=True)[:limit]
            )
            lease = timedelta(seconds=settings.MESSAGE_LEASE_SECONDS)
            for first in range(0, len(ids), CLAIM_SLICE):
                Message.objects.filter(pk__in=ids[first : first + CLAIM_SLICE]).update(
                    claimed_until=at + lease
                )
        chunks += [ids[i : i + SEND_CHUNK] for i in range(0, len(ids), SEND_CHUNK)]
    return chunks


# --- Staff ------------------------------------------------------------------------------


@transaction.atomic
def flow_save(*, merchant: Merchant, flow: Flow | None, data: dict, actor,
              ip_address: str | None = None) -> Flow:  # fmt: skip
    """Creates or changes a flow, audited. Turned on, it reacts to what happens from then
    on, never to what happened while it was off."""
    was_on = flow is not None and flow.pk is not None and flow.enabled
    flow = flow or Flow()
    if data.get("enabled") and not was_on:
        flow.enabled_at, flow.scanned_until = now(), None
    flow.updated_at = now()
    return audited_save(merchant=merchant, instance=flow, data=data, actor=actor,
                        action="campaigns.flow_saved", ip_address=ip_address)  # fmt: skip
