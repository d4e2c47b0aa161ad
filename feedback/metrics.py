"""The feedback inbox's figures, defined once (docs/business-rules.md §8, "Metrics") and used by the
metrics page and any export.

Every figure covers one merchant over a period [start, end) of aware UTC datetimes.
Tickets in state spam or merged are left out of every figure, with everything hanging
off them (messages, cycles, breaches, surveys). A ratio is a fraction (0.25 = 25%) and is
None when its denominator is 0: no tickets is not 0%.

The database does the counting: a fixed handful of queries whatever the number of
tickets (`inbox_metrics` runs QUERIES of them). Medians need every duration, so those are
fetched (one row per ticket or cycle in the period) and worked out here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, IntegerField, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from customers.metrics import share
from feedback.models import Channel, CsatSurvey, Cycle, Feedback, Message, SlaBreach, State
from merchants.models import Merchant, StaffMember

EXCLUDED_STATES = (State.SPAM, State.MERGED)
# A ticket reopened sooner than this after its first resolution was not resolved at first
# contact.
FIRST_CONTACT_REOPEN_WINDOW = timedelta(days=7)
POSITIVE_RATING = 4
UNCATEGORISED = _("Uncategorised")
TRIAGE = _("Triage")
# The queries `inbox_metrics` runs, whatever the number of tickets.
QUERIES = 7


# --- The figures -----------------------------------------------------------------------


@dataclass(frozen=True)
class Durations:
    """How many durations, their median and their mean (None when there are none)."""

    count: int
    median: timedelta | None
    mean: timedelta | None


@dataclass(frozen=True)
class FirstResponseTime(Durations):
    # Tickets created in the period with no public staff reply yet.
    without_response: int


@dataclass(frozen=True)
class ReopenRate:
    resolved: int
    reopened: int
    rate: Decimal | None


@dataclass(frozen=True)
class FirstContactResolution:
    resolved: int
    at_first_contact: int
    rate: Decimal | None


@dataclass(frozen=True)
class SlaHitRate:
    first_response_met: int
    first_response_missed: int
    resolution_met: int
    resolution_missed: int

    @property
    def targets(self) -> int:
        return self.met + self.first_response_missed + self.resolution_missed

    @property
    def met(self) -> int:
        return self.first_response_met + self.resolution_met

    @property
    def rate(self) -> Decimal | None:
        return share(self.met, self.targets)

    @property
    def first_response_rate(self) -> Decimal | None:
        return share(self.first_response_met, self.first_response_met + self.first_response_missed)

    @property
    def resolution_rate(self) -> Decimal | None:
        return share(self.resolution_met, self.resolution_met + self.resolution_missed)


@dataclass(frozen=True)
class Csat:
    answered: int
    positive: int
    sent: int
    sent_answered: int
    # Share of answers rated 4 or 5.
    rate: Decimal | None
    # Share of surveys sent in the period that have been answered.
    response_rate: Decimal | None


@dataclass(frozen=True)
class VolumeRow:
    label: str | Promise
    count: int


@dataclass(frozen=True)
class Volume:
    total: int
    by_channel: tuple[VolumeRow, ...]
    by_category: tuple[VolumeRow, ...]
    by_department: tuple[VolumeRow, ...]


@dataclass(frozen=True)
class AgentFigures:
    staff_member: StaffMember
    resolved: int
    first_responses: int
    median_first_response: timedelta | None
    csat_answered: int
    csat: Decimal | None

    @property
    def name(self) -> str:
        return self.staff_member.user.display_name


@dataclass(frozen=True)
class InboxMetrics:
    start: datetime
    end: datetime
    first_response_time: FirstResponseTime
    resolution_time: Durations
    reopen_rate: ReopenRate
    first_contact_resolution: FirstContactResolution
    sla: SlaHitRate
    csat: Csat
    volume: Volume
    agents: tuple[AgentFigures, ...]


# --- The rows the definitions read -----------------------------------------------------


@dataclass(frozen=True)
class FirstReply:
    """A ticket created in the period: when, and its first public staff reply if any."""

    created_at: datetime
    replied_at: datetime | None
    author_id: int | None


@dataclass(frozen=True)
class ResolvedCycle:
    """A cycle resolved in the period, with what the definitions ask of it."""

    feedback_id: int
    number: int
    started_at: datetime
    resolved_at: datetime
    resolved_by_id: int | None
    # When the ticket's next cycle (its reopen) started; None if it wasn't reopened.
    next_started_at: datetime | None
    # Non-automatic public staff replies on the ticket up to this resolution.
    replies_until_resolved: int
    # A customer message after a public staff reply, up to this resolution.
    customer_wrote_after_reply: bool
    # The ticket has a resolution due time (an SLA policy), and this cycle's breach row.
    has_resolution_target: bool
    resolution_breached: bool


@dataclass(frozen=True)
class SurveyCounts:
    agent_id: int | None
    answered: int
    positive: int
    sent: int
    sent_answered: int


def counted_tickets(*, merchant: Merchant) -> QuerySet[Feedback]:
    """The merchant's tickets that count: all but spam and merged."""
    return Feedback.objects.filter(merchant=merchant).exclude(state__in=EXCLUDED_STATES)


def _public_staff_replies() -> QuerySet[Message]:
    # Automatic replies (acknowledgements, CSAT requests) are the product talking, not staff.
    return Message.objects.filter(kind=Message.Kind.REPLY, is_automatic=False)


def first_replies_fetch(*, merchant: Merchant, start: datetime, end: datetime) -> list[FirstReply]:
    """Tickets created in the period, each with its first public staff reply (the Min of
    its reply times, read from the messages) and that reply's author. One query."""
    replies = _public_staff_replies().filter(feedback=OuterRef("pk")).order_by()
    rows = (
        counted_tickets(merchant=merchant)
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(
            replied_at=Subquery(
                replies.values("feedback").annotate(first=Min("created_at")).values("first")
            ),
            author_id=Subquery(replies.order_by("created_at", "pk").values("author_id")[:1]),
        )
        .order_by()
        .values_list("created_at", "replied_at", "author_id")
    )
    return [FirstReply(*row) for row in rows]


def resolved_cycles_fetch(
    *, merchant: Merchant, start: datetime, end: datetime
) -> list[ResolvedCycle]:
    """Cycles resolved in the period, with their ticket's next cycle, the replies and
    customer messages up to the resolution, and their resolution SLA. One query."""
    same_ticket = {"feedback": OuterRef("feedback")}
    until_resolved = {"created_at__lte": OuterRef("resolved_at")}
    replies_until_resolved = (
        _public_staff_replies()
        .filter(**same_ticket, **until_resolved)
        .order_by()
        .values("feedback")
        .annotate(count=Count("pk"))
        .values("count")
    )
    # A customer message up to the resolution with a public staff reply before it.
    customer_after_reply = Message.objects.filter(
        **same_ticket, **until_resolved, kind=Message.Kind.CUSTOMER
    ).filter(
        Exists(
            _public_staff_replies().filter(
                feedback=OuterRef("feedback"), created_at__lt=OuterRef("created_at")
            )
        )
    )
    next_cycle = Cycle.objects.filter(**same_ticket, number__gt=OuterRef("number")).order_by(
        "number"
    )
    rows = (
        Cycle.objects.filter(merchant=merchant, resolved_at__gte=start, resolved_at__lt=end)
        .exclude(feedback__state__in=EXCLUDED_STATES)
        .annotate(
            next_started_at=Subquery(next_cycle.values("started_at")[:1]),
            replies_until_resolved=Coalesce(
                Subquery(replies_until_resolved, output_field=IntegerField()), 0
            ),
            customer_wrote_after_reply=Exists(customer_after_reply),
            resolution_breached=Exists(
                SlaBreach.objects.filter(
                    **same_ticket, target=SlaBreach.Target.RESOLUTION, cycle=OuterRef("number")
                )
            ),
        )
        .order_by()
        .values_list(
            "feedback_id",
            "number",
            "started_at",
            "resolved_at",
            "resolved_by_id",
            "next_started_at",
            "replies_until_resolved",
            "customer_wrote_after_reply",
            "feedback__resolution_due_at",
            "resolution_breached",
        )
    )
    return [
        ResolvedCycle(
            feedback_id=feedback_id,
            number=number,
            started_at=started_at,
            resolved_at=resolved_at,  # type: ignore[arg-type]  # filtered on: never None
            resolved_by_id=resolved_by_id,
            next_started_at=next_started_at,
            replies_until_resolved=replies,
            customer_wrote_after_reply=customer_wrote,
            has_resolution_target=resolution_due_at is not None,
            resolution_breached=breached,
        )
        for (
            feedback_id,
            number,
            started_at,
            resolved_at,
            resolved_by_id,
            next_started_at,
            replies,
            customer_wrote,
            resolution_due_at,
            breached,
        ) in rows
    ]


def survey_counts_fetch(
    *, merchant: Merchant, start: datetime, end: datetime
) -> list[SurveyCounts]:
    """CSAT surveys answered or sent in the period, counted per agent. One query."""
    answered = Q(answered_at__gte=start, answered_at__lt=end, rating__isnull=False)
    sent = Q(sent_at__gte=start, sent_at__lt=end)
    rows = (
        CsatSurvey.objects.filter(merchant=merchant)
        .exclude(feedback__state__in=EXCLUDED_STATES)
        .filter(answered | sent)
        .order_by()
        .values("agent_id")
        .annotate(
            answered=Count("pk", filter=answered),
            positive=Count("pk", filter=answered & Q(rating__gte=POSITIVE_RATING)),
            sent=Count("pk", filter=sent),
            sent_answered=Count("pk", filter=sent & Q(answered_at__isnull=False)),
        )
        .values_list("agent_id", "answered", "positive", "sent", "sent_answered")
    )
    return [SurveyCounts(*row) for row in rows]


# --- The definitions -------------------------------------------------------------------


def durations_summarise(durations: Iterable[timedelta]) -> Durations:
    values = sorted(durations)
    if not values:
        return Durations(count=0, median=None, mean=None)
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return Durations(count=len(values), median=median, mean=sum(values, timedelta()) / len(values))


def first_response_time(replies: Sequence[FirstReply]) -> FirstResponseTime:
    """First response time: for tickets created in the period that have a first public
    staff reply (a Message of kind reply, not automatic), that reply's time minus the ticket's
    creation; median and mean. Also the tickets created in the period still without one.
    The reply may come after the period ends: the period picks the tickets."""
    summary = durations_summarise(
        row.replied_at - row.created_at for row in replies if row.replied_at is not None
    )
    return FirstResponseTime(
        count=summary.count,
        median=summary.median,
        mean=summary.mean,
        without_response=sum(1 for row in replies if row.replied_at is None),
    )


def resolution_time(cycles: Sequence[ResolvedCycle]) -> Durations:
    """Resolution time per cycle: for cycles resolved in the period, resolved minus started
    (a reopen starts a new cycle, so a reopened ticket is timed once per cycle); median
    and mean."""
    return durations_summarise(cycle.resolved_at - cycle.started_at for cycle in cycles)


def reopen_rate(cycles: Sequence[ResolvedCycle]) -> ReopenRate:
    """Reopen rate: cycles resolved in the period that were followed by another cycle of
    the same ticket ÷ cycles resolved in the period."""
    reopened = sum(1 for cycle in cycles if cycle.next_started_at is not None)
    return ReopenRate(resolved=len(cycles), reopened=reopened, rate=share(reopened, len(cycles)))


def resolved_at_first_contact(cycle: ResolvedCycle) -> bool:
    """A first cycle resolved with exactly one public staff reply (not automatic, up to the
    resolution), no customer message after that reply (up to the resolution), and no
    reopen starting within 7 days of the resolution."""
    reopened_soon = (
        cycle.next_started_at is not None
        and cycle.next_started_at < cycle.resolved_at + FIRST_CONTACT_REOPEN_WINDOW
    )
    return (
        cycle.number == 1
        and cycle.replies_until_resolved == 1
        and not cycle.customer_wrote_after_reply
        and not reopened_soon
    )


def first_contact_resolution(cycles: Sequence[ResolvedCycle]) -> FirstContactResolution:
    """First-contact resolution: of tickets whose first cycle was resolved in the period,
    the share resolved at first contact (see `resolved_at_first_contact`). A ticket
    resolved lately counts until a reopen within the 7 days happens."""
    first_cycles = [cycle for cycle in cycles if cycle.number == 1]
    at_first_contact = sum(1 for cycle in first_cycles if resolved_at_first_contact(cycle))
    return FirstContactResolution(
        resolved=len(first_cycles),
        at_first_contact=at_first_contact,
        rate=share(at_first_contact, len(first_cycles)),
    )


def sla_hit_rate(
    *, merchant: Merchant, start: datetime, end: datetime, cycles: Sequence[ResolvedCycle]
) -> SlaHitRate:
    """SLA hit rate: of the SLA targets decided in the period, the share met.

    A target is decided when it is missed (its SlaBreach row's breached_at) or, with no
    breach row, when it is met: a first-response target (one per ticket with a first
    response due time) when the first response is made (first_response_at); a resolution
    target (one per cycle of a ticket with a resolution due time) when the cycle is
    resolved. Met means no breach row for that ticket, target and cycle. A target missed
    in one period and answered in the next counts once, as missed, in the first.
    `cycles` are the cycles resolved in the period (`resolved_cycles_fetch`). Two queries.
    """
    first_response_met = (
        counted_tickets(merchant=merchant)
        .filter(
            first_response_due_at__isnull=False,
            first_response_at__gte=start,
            first_response_at__lt=end,
        )
        .exclude(
            Exists(
                SlaBreach.objects.filter(
                    feedback=OuterRef("pk"), target=SlaBreach.Target.FIRST_RESPONSE
                )
            )
        )
        .count()
    )
    missed = dict(
        SlaBreach.objects.filter(merchant=merchant, breached_at__gte=start, breached_at__lt=end)
        .exclude(feedback__state__in=EXCLUDED_STATES)
        .order_by()
        .values("target")
        .annotate(count=Count("pk"))
        .values_list("target", "count")
    )
    return SlaHitRate(
        first_response_met=first_response_met,
        first_response_missed=missed.get(SlaBreach.Target.FIRST_RESPONSE, 0),
        resolution_met=sum(
            1 for cycle in cycles if cycle.has_resolution_target and not cycle.resolution_breached
        ),
        resolution_missed=missed.get(SlaBreach.Target.RESOLUTION, 0),
    )


def csat(surveys: Sequence[SurveyCounts]) -> Csat:
    """CSAT %: of the surveys answered in the period, the share rated 4 or 5. Response
    rate: of the surveys sent in the period, the share answered (so far)."""
    answered = sum(row.answered for row in surveys)
    positive = sum(row.positive for row in surveys)
    sent = sum(row.sent for row in surveys)
    sent_answered = sum(row.sent_answered for row in surveys)
    return Csat(
        answered=answered,
        positive=positive,
        sent=sent,
        sent_answered=sent_answered,
        rate=share(positive, answered),
        response_rate=share(sent_answered, sent),
    )


def volume(*, merchant: Merchant, start: datetime, end: datetime) -> Volume:
    """Volume: tickets created in the period, in total and by channel, by category (blank
    is "Uncategorised") and by department (none is "Triage"); biggest first. One query."""
    rows = (
        counted_tickets(merchant=merchant)
        .filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values("channel", "category", "department__name")
        .annotate(count=Count("pk"))
        .values_list("channel", "category", "department__name", "count")
    )
    by_channel: Counter = Counter()
    by_category: Counter = Counter()
    by_department: Counter = Counter()
    for channel, category, department, count in rows:
        by_channel[channel] += count
        by_category[category] += count
        by_department[department] += count

    def ranked(counter: Counter, label) -> tuple[VolumeRow, ...]:
        labelled = [VolumeRow(label=label(key), count=count) for key, count in counter.items()]
        return tuple(sorted(labelled, key=lambda row: (-row.count, str(row.label))))

    return Volume(
        total=sum(by_channel.values()),
        by_channel=ranked(by_channel, _channel_label),
        by_category=ranked(by_category, lambda category: category or UNCATEGORISED),
        by_department=ranked(by_department, lambda department: department or TRIAGE),
    )


def _channel_label(channel: str) -> str | Promise:
    try:
        return Channel(channel).label
    except ValueError:
        return channel


def agent_figures(
    *,
    staff: Sequence[StaffMember],
    replies: Sequence[FirstReply],
    cycles: Sequence[ResolvedCycle],
    surveys: Sequence[SurveyCounts],
) -> tuple[AgentFigures, ...]:
    """Per agent (a staff member of the merchant): the cycles they resolved in the period
    (Cycle.resolved_by), the median first response time of the tickets created in the
    period whose first public staff reply they wrote, and the CSAT % of the surveys about
    them (CsatSurvey.agent) answered in the period. Staff with none of these are left out;
    a reply by someone no longer on the staff counts for the ticket, not for an agent."""
    member_of_user = {member.user_id: member for member in staff}
    resolved: Counter = Counter(cycle.resolved_by_id for cycle in cycles)
    response_times: defaultdict[int, list[timedelta]] = defaultdict(list)
    for row in replies:
        if row.replied_at is None or row.author_id not in member_of_user:
            continue
        response_times[member_of_user[row.author_id].pk].append(row.replied_at - row.created_at)
    surveys_of = {row.agent_id: row for row in surveys}
    figures = []
    for member in staff:
        times = durations_summarise(response_times[member.pk])
        survey = surveys_of.get(member.pk)
        answered = survey.answered if survey else 0
        if not (resolved[member.pk] or times.count or answered):
            continue
        figures.append(
            AgentFigures(
                staff_member=member,
                resolved=resolved[member.pk],
                first_responses=times.count,
                median_first_response=times.median,
                csat_answered=answered,
                csat=share(survey.positive, answered) if survey else None,
            )
        )
    return tuple(sorted(figures, key=lambda agent: (agent.name.lower(), agent.staff_member.pk)))


def inbox_metrics(*, merchant: Merchant, start: datetime, end: datetime) -> InboxMetrics:
    """Every inbox figure for the merchant over [start, end), in QUERIES queries."""
    staff = list(StaffMember.objects.filter(merchant=merchant).select_related("user"))
    replies = first_replies_fetch(merchant=merchant, start=start, end=end)
    cycles = resolved_cycles_fetch(merchant=merchant, start=start, end=end)
    surveys = survey_counts_fetch(merchant=merchant, start=start, end=end)
    return InboxMetrics(
        start=start,
        end=end,
        first_response_time=first_response_time(replies),
        resolution_time=resolution_time(cycles),
        reopen_rate=reopen_rate(cycles),
        first_contact_resolution=first_contact_resolution(cycles),
        sla=sla_hit_rate(merchant=merchant, start=start, end=end, cycles=cycles),
        csat=csat(surveys),
        volume=volume(merchant=merchant, start=start, end=end),
        agents=agent_figures(staff=staff, replies=replies, cycles=cycles, surveys=surveys),
    )
