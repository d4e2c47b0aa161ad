"""Win-back campaigns and broadcasts (docs/business-rules.md, win-back and broadcasts).

Who enters is one set-based query over the customers (campaign_audience), after the
first pass narrowed to what changed since (campaign_candidates). Each one who
enters is held out or not by a stable hash of (campaign, customer), frozen on the entry
row; the others get the campaign's steps queued as messages, each due its delays after
entering and re-checked when it is due (no order since entering, consent, suppression,
the cap), then sent by the same chunks as every other message. A win-back campaign
enters customers once per merchant-local day from MORNING_HOUR, a broadcast once at its
time; a JobRun claims each pass and the keys make a pass run twice queue nothing twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, FloatField, Q, QuerySet, Value
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign, CampaignEntry, CampaignListEntry, CampaignStep, Message
from campaigns.services.flows import CHUNK, MORNING_HOUR
from customers.expressions import Epoch
from customers.models import Customer
from loyalty.models import Membership
from loyalty.services.earning import LIVE_MEMBERSHIP
from merchants.models import Merchant
from merchants.services import audit_record, audited_save, job_run_claim, job_run_finish

MAX_STEPS = 3
HASH_BUCKETS = 10_000


def held_out(*, campaign_id: int, customer_id: int, percent: int) -> bool:
    """Whether this customer is in the campaign's holdout: the same answer every time
    for the same pair, independent between campaigns (held out of one, she may get
    another)."""
    digest = hashlib.sha256(f"{campaign_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % HASH_BUCKETS < percent * HASH_BUCKETS // 100


def campaign_audience(*, campaign: Campaign, at: datetime | None = None,
                      personas=None, tiers=None, plans=None) -> QuerySet[Customer]:  # fmt: skip
    """The customers who would enter the campaign now: its filters, for a win-back the
    quiet ones, without anyone who entered it within its re-entry days. One statement.
    `personas`, `tiers` and `plans` stand in for the campaign's own (a form not saved yet)."""
    at = at or now()
    saved = campaign.pk is not None
    customers = Customer.objects.filter(merchant_id=campaign.merchant_id, erased_at=None)
    customers = customers.exclude(email="")
    if campaign.consent_only:
        customers = customers.filter(marketing_consent=True)
    if campaign.segments:
        customers = customers.filter(segment__in=campaign.segments)
    if personas is None:
        personas = list(campaign.personas.all()) if saved else []
    if personas:
        customers = customers.filter(persona__in=personas)
    if tiers is None:
        tiers = list(campaign.tiers.all()) if saved else []
    if tiers:
        customers = customers.filter(points_account__tier__in=tiers)
    if plans is None:
        plans = list(campaign.plans.all()) if saved else []
    if plans:
        members = Membership.objects.filter(merchant_id=campaign.merchant_id, plan__in=plans,
                                            state__in=LIVE_MEMBERSHIP)  # fmt: skip
        customers = customers.filter(pk__in=members.values("customer_id"))
    if campaign.min_spent is not None:
        customers = customers.filter(total_spent__gte=campaign.min_spent)
    if campaign.max_spent is not None:
        customers = customers.filter(total_spent__lte=campaign.max_spent)
    if campaign.kind == Campaign.Kind.WINBACK:
        customers = _gone_quiet(customers, campaign, at)
    elif saved and CampaignListEntry.objects.filter(campaign=campaign).exists():
        listed = CampaignListEntry.objects.filter(campaign=campaign).values("customer_id")
        customers = customers.filter(pk__in=listed)
    # A campaign nobody has entered yet has no one to leave out: no anti-join to plan
    # against an entries table whose statistics may still say it is empty.
    if saved and CampaignEntry.objects.filter(campaign=campaign).exists():
        recent = CampaignEntry.objects.filter(
            campaign=campaign, entered_at__gt=at - timedelta(days=campaign.reentry_days)
        )
        customers = customers.exclude(pk__in=recent.values("customer_id"))
    return customers


def _gone_quiet(customers: QuerySet[Customer], campaign: Campaign, at: datetime):
    """Days since her last order over the fixed number; or, in gap mode, over the multiple
    of her own average gap between orders ((last - first) ÷ (orders - 1)), for those with
    two orders or more."""
    fixed = Q(last_order_at__lte=at - timedelta(days=campaign.days_since))
    if campaign.selection != Campaign.Selection.GAP:
        return customers.filter(fixed)
    # idle * (orders - 1) > multiple * (last - first): her gaps compared without division.
    customers = customers.alias(
        idle=(Value(at.timestamp()) - Epoch("last_order_at")) * (F("orders_count") - 1),
        span=(Epoch("last_order_at") - Epoch("first_order_at"))
        * Value(float(campaign.gap_multiple), output_field=FloatField()),
    )
    own = Q(orders_count__gte=2, last_order_at__isnull=False, idle__gt=F("span"))
    return customers.filter(own | (Q(orders_count__lt=2) & fixed))


def campaign_candidates(*, campaign: Campaign, at: datetime, **filters):
    """The ids of who enters at this pass, as one or two statements. The first pass of a
    campaign, a gap-mode one and a broadcast read everyone who qualifies; after that a
    fixed-days win-back reads only those whose last order crossed its days since the last
    pass, and those whose re-entry days ended since, each a range on an index. A
    customer who qualifies otherwise (she gave consent, changed segment) enters when she
    next goes quiet."""
    audience = campaign_audience(campaign=campaign, at=at, **filters).order_by()
    since = campaign.selected_until
    fixed = campaign.kind == Campaign.Kind.WINBACK and campaign.selection == Campaign.Selection.DAYS
    if since is None or not fixed or since >= at:
        return [audience.values_list("pk", flat=True)]
    days, again = timedelta(days=campaign.days_since), timedelta(days=campaign.reentry_days)
    crossed = audience.filter(last_order_at__gt=since - days)
    ended = CampaignEntry.objects.filter(campaign=campaign, entered_at__gt=since - again,
                                         entered_at__lte=at - again)  # fmt: skip
    waited = audience.filter(pk__in=ended.values("customer_id"))
    return [crossed.values_list("pk", flat=True), waited.values_list("pk", flat=True)]


def candidate_ids(campaign: Campaign, at: datetime, **filters):
    """Each candidate once, in chunks' order."""
    queries = campaign_candidates(campaign=campaign, at=at, **filters)
    seen: set[int] = set()
    for query in queries:
        for customer_id in query.iterator(chunk_size=CHUNK):
            if len(queries) > 1:
                if customer_id in seen:
                    continue
                seen.add(customer_id)
            yield customer_id


def audience_count(*, campaign: Campaign, at: datetime | None = None,
                   **filters) -> tuple[int, int]:  # fmt: skip
    """(who would enter at a pass now, how many of them would be held out). Held out is
    counted by the same hash as the entries, so it is exact for a saved campaign; for one
    not saved yet it is the share of the count."""
    at = at or now()
    if not campaign.pk:
        count = campaign_audience(campaign=campaign, at=at, **filters).order_by().count()
        return count, round(count * campaign.holdout_percent / 100)
    count = out = 0
    for customer_id in candidate_ids(campaign, at, **filters):
        count += 1
        out += held_out(campaign_id=campaign.pk, customer_id=customer_id,
                        percent=campaign.holdout_percent)  # fmt: skip
    return count, out


# --- The daily pass and the broadcast --------------------------------------------------


def campaign_pass_key(campaign: Campaign, at: datetime) -> str | None:
    """The period this pass would claim, or None when the campaign has nothing to do now:
    a win-back once per merchant-local day from MORNING_HOUR, a broadcast once at its time."""
    if campaign.state != Campaign.State.ACTIVE:
        return None
    if campaign.kind == Campaign.Kind.BROADCAST:
        due = campaign.send_at or campaign.started_at
        return "send" if due is not None and due <= at else None
    local = at.astimezone(campaign.merchant.zone)
    return local.date().isoformat() if local.hour >= MORNING_HOUR else None


def campaign_enter(*, campaign_id: int, at: datetime | None = None) -> dict | None:
    """Enters today's customers (a broadcast's, once), holds out its share, and queues the
    others' steps. Answers the pass's counts, or None when there was nothing to do now or
    another pass had claimed it."""
    at = at or now()
    campaign = Campaign.objects.select_related("merchant").filter(pk=campaign_id).first()
    if campaign is None:
        return None
    period = campaign_pass_key(campaign, at)
    if period is None:
        return None
    run = job_run_claim(job=f"campaigns.{campaign.kind}.{campaign.pk}", merchant=campaign.merchant,
                        period_key=period)  # fmt: skip
    if run is None:
        return None
    steps = list(CampaignStep.objects.filter(campaign=campaign).order_by("position"))
    totals = [0, 0, 0]  # entered, held out, messages queued
    ids = candidate_ids(campaign, at)
    while batch := list(islice(ids, CHUNK)):
        for n, count in enumerate(_enter_chunk(campaign, steps, batch, at)):
            totals[n] += count
    entered, held, queued = totals
    Campaign.objects.filter(pk=campaign.pk).update(selected_until=at)
    if campaign.kind == Campaign.Kind.BROADCAST:
        Campaign.objects.filter(pk=campaign.pk, state=Campaign.State.ACTIVE).update(
            state=Campaign.State.DONE
        )
    detail = {"entered": entered, "held_out": held, "messages": queued}
    job_run_finish(run=run, detail=detail)
    return detail


@transaction.atomic
def _enter_chunk(campaign: Campaign, steps: list[CampaignStep], customer_ids: list[int],
                 at: datetime) -> tuple[int, int, int]:  # fmt: skip
    """One chunk's entries and messages in one transaction: (entered, held out, queued).
    A chunk done before (a pass taken over after its worker died) adds nothing."""
    first_delay = timedelta(days=steps[0].delay_days) if steps else timedelta()
    day = at.astimezone(campaign.merchant.zone).date()
    rows = [
        CampaignEntry(
            merchant_id=campaign.merchant_id, campaign=campaign, customer_id=customer_id,
            entered_on=day, entered_at=at, starts_at=at + first_delay,
            held_out=held_out(campaign_id=campaign.pk, customer_id=customer_id,
                              percent=campaign.holdout_percent),
        )
        for customer_id in customer_ids
    ]  # fmt: skip
    CampaignEntry.objects.bulk_create(rows, ignore_conflicts=True)
    entries = list(
        CampaignEntry.objects.filter(campaign=campaign, entered_on=day, entered_at=at,
                                     customer_id__in=customer_ids)
        .values_list("pk", "customer_id", "held_out")
    )  # fmt: skip
    messages: list[Message] = []
    for entry_id, customer_id, out in entries:
        if out:
            continue
        due = at
        for step in steps:
            due += timedelta(days=step.delay_days)
            messages.append(Message(
                merchant_id=campaign.merchant_id, customer_id=customer_id,
                kind=step.template.kind, template_id=step.template_id, campaign=campaign,
                entry_id=entry_id, key=f"campaign:{campaign.pk}:{entry_id}:{step.position}",
                data={"entered_at": at.isoformat(), "step": step.position,
                      "offer_id": step.offer_id},
                created_at=at, send_after=due,
            ))  # fmt: skip
    made = Message.objects.bulk_create(messages, ignore_conflicts=True)
    return len(entries), sum(1 for e in entries if e[2]), len(made)


def campaigns_advance(*, at: datetime | None = None) -> None:
    for campaign_id in Campaign.objects.filter(state=Campaign.State.ACTIVE).values_list(
        "pk", flat=True
    ):
        campaign_enter(campaign_id=campaign_id, at=at)


# --- Staff ------------------------------------------------------------------------------


def _problems(campaign: Campaign, steps: list[dict]) -> dict[str, list]:
    problems: dict[str, list] = {}
    if not steps:
        problems["steps"] = [_("A campaign needs at least one message.")]
    if len(steps) > MAX_STEPS:
        problems["steps"] = [_("A campaign has at most three messages.")]
    if campaign.kind == Campaign.Kind.BROADCAST and len(steps) > 1:
        problems["steps"] = [_("A broadcast is one message.")]
    if campaign.selection == Campaign.Selection.PREDICTED:
        problems["selection"] = [_("Predictions are not available yet.")]
    if campaign.holdout_percent > 50:
        problems["holdout_percent"] = [_("Hold out half of them at most.")]
    if (campaign.min_spent is not None and campaign.max_spent is not None
            and campaign.min_spent > campaign.max_spent):  # fmt: skip
        problems["max_spent"] = [_("Must be at least the minimum.")]
    if campaign.gap_multiple is not None and campaign.gap_multiple <= Decimal("0"):
        problems["gap_multiple"] = [_("Must be more than zero.")]
    for step in steps:
        template = step["template"]
        if template.merchant_id != campaign.merchant_id:
            problems["steps"] = [_("Choose one of your templates.")]
        offer = step.get("offer")
        if offer is not None and offer.merchant_id != campaign.merchant_id:
            problems["steps"] = [_("Choose one of your promotions.")]
    return problems


@transaction.atomic
def campaign_save(*, merchant: Merchant, campaign: Campaign | None, data: dict,
                  steps: list[dict], listed: list[int] | None = None, actor,
                  ip_address: str | None = None) -> Campaign:  # fmt: skip
    """Creates or changes a campaign with its steps (up to three: template, offer, delay)
    and, for a broadcast, its list of customers; audited. Its entries so far keep the
    holdout they were given."""
    campaign = campaign or Campaign(merchant=merchant)
    probe = Campaign(merchant=merchant, **{
        k: v for k, v in data.items() if k not in ("personas", "tiers", "plans")
    })  # fmt: skip
    if campaign.pk:
        probe.kind = campaign.kind
    problems = _problems(probe, steps)
    if problems:
        raise ValidationError(problems)
    if campaign.pk:
        data = {k: v for k, v in data.items() if k != "kind"}
    campaign.updated_at = now()
    saved = audited_save(merchant=merchant, instance=campaign, data=data, actor=actor,
                         action="campaigns.campaign_saved", ip_address=ip_address)  # fmt: skip
    before = [_step_plain(s) for s in CampaignStep.objects.filter(campaign=saved)]
    after = [{"delay_days": s.get("delay_days") or 0, "template": s["template"].pk,
              "offer": s["offer"].pk if s.get("offer") else None} for s in steps]  # fmt: skip
    if before != after:
        audit_record(merchant=merchant, actor=actor, action="campaigns.campaign_steps",
                     target=saved, before={"steps": before}, after={"steps": after},
                     ip_address=ip_address)  # fmt: skip
    CampaignStep.objects.filter(campaign=saved).delete()
    CampaignStep.objects.bulk_create([
        CampaignStep(campaign=saved, position=n, delay_days=step.get("delay_days") or 0,
                     template=step["template"], offer=step.get("offer"))
        for n, step in enumerate(steps, start=1)
    ])  # fmt: skip
    if listed is not None:
        CampaignListEntry.objects.filter(campaign=saved).delete()
        CampaignListEntry.objects.bulk_create(
            [CampaignListEntry(campaign=saved, customer_id=pk) for pk in listed],
            ignore_conflicts=True,
        )
    return saved


def _step_plain(step: CampaignStep) -> dict:
    return {"delay_days": step.delay_days, "template": step.template_id, "offer": step.offer_id}


STATE_MOVES = {
    "start": ({Campaign.State.DRAFT}, Campaign.State.ACTIVE),
    "pause": ({Campaign.State.ACTIVE}, Campaign.State.PAUSED),
    "resume": ({Campaign.State.PAUSED}, Campaign.State.ACTIVE),
}


@transaction.atomic
def campaign_move(*, campaign: Campaign, move: str, actor, ip_address: str | None = None) -> None:
    """Starts, pauses or resumes a campaign, audited. Paused, its queued messages wait
    (still re-checked when it resumes) and no one new enters."""
    if move not in STATE_MOVES:
        raise ValidationError({"move": _("Unknown change.")})
    allowed, to = STATE_MOVES[move]
    changes = {"state": to, "updated_at": now()}
    if move == "start":
        changes["started_at"] = now()
    moved = Campaign.objects.filter(pk=campaign.pk, state__in=allowed).update(**changes)
    if not moved:
        raise ValidationError({"move": _("The campaign can't be changed that way now.")})
    audit_record(merchant=campaign.merchant, actor=actor, action=f"campaigns.campaign_{move}",
                 target=campaign, before={"state": campaign.state}, after={"state": to},
                 ip_address=ip_address)  # fmt: skip
    campaign.state = to
