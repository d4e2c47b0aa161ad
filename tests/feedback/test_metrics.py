"""The inbox metrics (docs/business-rules.md §8) on hand-built tickets with explicit times, and the
metrics page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from feedback.metrics import inbox_metrics
from feedback.models import Channel, Message, SlaBreach, State
from tests.feedback.factories import (
    CsatSurveyFactory,
    CycleFactory,
    DepartmentFactory,
    FeedbackFactory,
    MessageFactory,
    SlaBreachFactory,
)
from tests.merchants.factories import MerchantFactory, StaffMemberFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 4, 1, tzinfo=UTC)
T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def metrics(merchant, start=START, end=END):
    return inbox_metrics(merchant=merchant, start=start, end=end)


def ticket(merchant, created=T0, **kwargs):
    return FeedbackFactory(merchant=merchant, created_at=created, state=State.OPEN, **kwargs)


def reply(feedback, at, author=None, automatic=False):
    return MessageFactory(feedback=feedback, kind=Message.Kind.REPLY, created_at=at,
                          author=author, is_automatic=automatic)  # fmt: skip


def customer_writes(feedback, at):
    return MessageFactory(feedback=feedback, kind=Message.Kind.CUSTOMER, created_at=at)


def cycle(feedback, number=1, started=None, resolved=None, by=None):
    started = started or feedback.created_at
    return CycleFactory(feedback=feedback, number=number, started_at=started,
                        resolved_at=resolved, resolved_by=by)  # fmt: skip


def answered_survey(feedback, rating, at=T0, sent=None, agent=None, cycle=1):
    return CsatSurveyFactory(feedback=feedback, cycle=cycle, sent_at=sent or at - HOUR,
                             answered_at=at, rating=rating, agent=agent)  # fmt: skip


def full_ticket(merchant, created=T0, state=State.OPEN, agent=None):
    """A ticket with something for every figure: a reply, a resolved cycle that reopened, a
    breach and an answered survey."""
    feedback = FeedbackFactory(merchant=merchant, created_at=created, state=state,
                               first_response_due_at=created + HOUR,
                               first_response_at=created + 2 * HOUR,
                               resolution_due_at=created + DAY)  # fmt: skip
    customer_writes(feedback, created)
    reply(feedback, created + 2 * HOUR, author=agent.user if agent else None)
    cycle(feedback, 1, resolved=created + 3 * HOUR, by=agent)
    cycle(feedback, 2, started=created + 4 * HOUR)
    SlaBreachFactory(feedback=feedback, target=SlaBreach.Target.FIRST_RESPONSE,
                     due_at=created + HOUR, breached_at=created + HOUR)  # fmt: skip
    answered_survey(feedback, 5, at=created + 5 * HOUR, agent=agent)
    return feedback


# --- First response time ---------------------------------------------------------------


def test_first_response_time_is_the_first_staff_reply_and_skips_automatic_messages(merchant):
    first = ticket(merchant)
    customer_writes(first, T0)
    reply(first, T0 + MINUTE, automatic=True)  # the acknowledgement
    MessageFactory(feedback=first, kind=Message.Kind.NOTE, created_at=T0 + 10 * MINUTE)
    reply(first, T0 + 2 * HOUR)
    reply(first, T0 + 5 * HOUR)
    reply(ticket(merchant), T0 + 4 * HOUR)
    reply(ticket(merchant, created=T0 + DAY), T0 + DAY + 9 * HOUR)
    # Only the product answered, whatever the cached field says: still waiting.
    waiting = ticket(merchant, first_response_at=T0 + HOUR)
    reply(waiting, T0 + HOUR, automatic=True)
    # Created before the period: its reply in the period doesn't count.
    reply(ticket(merchant, created=START - HOUR), START + HOUR)

    figures = metrics(merchant).first_response_time

    assert figures.count == 3
    assert figures.median == 4 * HOUR
    assert figures.mean == 5 * HOUR
    assert figures.without_response == 1


def test_a_reply_after_the_period_still_times_a_ticket_created_in_it(merchant):
    late = ticket(merchant, created=END - HOUR)
    reply(late, END + 2 * HOUR)
    assert metrics(merchant).first_response_time.median == 3 * HOUR


# --- Resolution time and reopen rate ---------------------------------------------------


def test_resolution_time_is_per_cycle_and_the_reopen_rate_counts_cycles_that_reopened(merchant):
    reopened = ticket(merchant)
    cycle(reopened, 1, resolved=T0 + 3 * HOUR)
    cycle(reopened, 2, started=T0 + DAY, resolved=T0 + DAY + 5 * HOUR)
    cycle(ticket(merchant), 1, resolved=T0 + 10 * HOUR)
    earlier = ticket(merchant, created=START - 2 * DAY)
    # Resolved before the period: neither timed nor in the reopen rate, though it reopened.
    cycle(earlier, 1, resolved=START - DAY)
    cycle(earlier, 2, started=START - 12 * HOUR, resolved=START + 6 * HOUR)
    cycle(ticket(merchant), 1)  # still open

    figures = metrics(merchant)

    assert figures.resolution_time.count == 4
    assert figures.resolution_time.median == timedelta(hours=7, minutes=30)
    assert figures.resolution_time.mean == 9 * HOUR
    assert (figures.reopen_rate.resolved, figures.reopen_rate.reopened) == (4, 1)
    assert figures.reopen_rate.rate == Decimal("0.25")


# --- First-contact resolution ----------------------------------------------------------


def _one_reply(merchant):
    feedback = ticket(merchant)
    customer_writes(feedback, T0)
    reply(feedback, T0 + HOUR)
    cycle(feedback, 1, resolved=T0 + 2 * HOUR)
    return feedback


def _reopened_after(days):
    def build(merchant):
        feedback = _one_reply(merchant)
        started = T0 + 2 * HOUR + timedelta(days=days)
        customer_writes(feedback, started)
        cycle(feedback, 2, started=started)

    return build


def _two_replies(merchant):
    feedback = _one_reply(merchant)
    reply(feedback, T0 + 90 * MINUTE)


def _automatic_and_one_reply(merchant):
    feedback = _one_reply(merchant)
    reply(feedback, T0 + MINUTE, automatic=True)
    MessageFactory(feedback=feedback, kind=Message.Kind.NOTE, created_at=T0 + 30 * MINUTE)


def _only_automatic(merchant):
    feedback = ticket(merchant)
    customer_writes(feedback, T0)
    reply(feedback, T0 + MINUTE, automatic=True)
    cycle(feedback, 1, resolved=T0 + 2 * HOUR)


def _customer_followed_up(merchant):
    feedback = _one_reply(merchant)
    customer_writes(feedback, T0 + 90 * MINUTE)


def _reply_after_resolving(merchant):
    feedback = _one_reply(merchant)
    reply(feedback, T0 + 3 * HOUR)  # a thank-you after the resolution, no reopen


@pytest.mark.parametrize(
    ("build", "counts"),
    [
        pytest.param(_one_reply, True, id="one reply, no follow-up"),
        pytest.param(_reopened_after(days=6), False, id="reopened within 7 days"),
        pytest.param(_reopened_after(days=8), True, id="reopened after 8 days"),
        pytest.param(_two_replies, False, id="two staff replies"),
        pytest.param(_automatic_and_one_reply, True, id="automatic message is no reply"),
        pytest.param(_only_automatic, False, id="only an automatic message"),
        pytest.param(_customer_followed_up, False, id="customer wrote after the reply"),
        pytest.param(_reply_after_resolving, True, id="reply after the resolution"),
    ],
)
def test_first_contact_resolution(merchant, build, counts):
    build(merchant)
    figures = metrics(merchant).first_contact_resolution
    assert figures.resolved == 1
    assert figures.at_first_contact == int(counts)
    assert figures.rate == (Decimal(1) if counts else Decimal(0))


def test_first_contact_resolution_is_over_tickets_whose_first_cycle_resolved_in_the_period(
    merchant,
):
    _one_reply(merchant)
    _one_reply(merchant)
    _two_replies(merchant)
    # A second cycle resolved in the period is not a first contact.
    earlier = ticket(merchant, created=START - 3 * DAY)
    reply(earlier, START - 2 * DAY)
    cycle(earlier, 1, resolved=START - 2 * DAY)
    cycle(earlier, 2, started=START - DAY, resolved=START + HOUR)

    figures = metrics(merchant).first_contact_resolution

    assert (figures.resolved, figures.at_first_contact) == (3, 2)
    assert figures.rate == Decimal("0.6667")


# --- SLA hit rate ----------------------------------------------------------------------


def test_sla_hit_rate_counts_each_target_once_when_it_is_decided(merchant):
    due = {"first_response_due_at": T0 + HOUR}
    for _ in range(2):  # answered in time
        ticket(merchant, first_response_at=T0 + 30 * MINUTE, **due)
    late = ticket(merchant, first_response_at=T0 + 2 * HOUR, **due)
    SlaBreachFactory(feedback=late, due_at=T0 + HOUR, breached_at=T0 + HOUR)
    # Missed last month, answered this month: decided last month.
    missed_before = ticket(merchant, created=START - DAY, first_response_at=START + HOUR,
                           first_response_due_at=START - 20 * HOUR)  # fmt: skip
    SlaBreachFactory(feedback=missed_before, due_at=START - 20 * HOUR,
                     breached_at=START - 20 * HOUR)  # fmt: skip
    ticket(merchant, first_response_at=T0 + 5 * HOUR)  # no policy: no target

    resolution_due = {"resolution_due_at": T0 + DAY}
    cycle(ticket(merchant, **resolution_due), 1, resolved=T0 + HOUR)
    breached = ticket(merchant, **resolution_due)
    cycle(breached, 1, resolved=T0 + 2 * DAY)
    SlaBreachFactory(feedback=breached, target=SlaBreach.Target.RESOLUTION, cycle=1,
                     due_at=T0 + DAY, breached_at=T0 + DAY)  # fmt: skip
    # Cycle 1 missed last month; cycle 2 met this month.
    reopened = ticket(merchant, created=START - 5 * DAY, **resolution_due)
    cycle(reopened, 1, resolved=START - DAY)
    cycle(reopened, 2, started=START - HOUR, resolved=START + HOUR)
    SlaBreachFactory(feedback=reopened, target=SlaBreach.Target.RESOLUTION, cycle=1,
                     due_at=START - 3 * DAY, breached_at=START - 3 * DAY)  # fmt: skip
    still_open = ticket(merchant, **resolution_due)
    cycle(still_open, 1)
    SlaBreachFactory(feedback=still_open, target=SlaBreach.Target.RESOLUTION, cycle=1,
                     due_at=T0 + DAY, breached_at=T0 + DAY)  # fmt: skip
    cycle(ticket(merchant), 1, resolved=T0 + HOUR)  # no policy: no target

    sla = metrics(merchant).sla

    assert (sla.first_response_met, sla.first_response_missed) == (2, 1)
    assert (sla.resolution_met, sla.resolution_missed) == (2, 2)
    assert sla.targets == 7
    assert sla.rate == Decimal("0.5714")
    assert sla.first_response_rate == Decimal("0.6667")
    assert sla.resolution_rate == Decimal("0.5")


# --- CSAT ------------------------------------------------------------------------------


def test_csat_is_the_share_of_answers_rated_4_or_5(merchant):
    feedback = ticket(merchant, created=START - 10 * DAY)
    answered_survey(feedback, 5, sent=START - DAY, cycle=1)  # sent last month
    for number, rating in enumerate([4, 3, 1, 4], start=2):
        answered_survey(feedback, rating, cycle=number)
    for number in (6, 7):  # sent, not answered
        CsatSurveyFactory(feedback=feedback, cycle=number, sent_at=T0)
    answered_survey(feedback, 2, sent=END - HOUR, at=END + HOUR, cycle=8)  # answered later

    figures = metrics(merchant).csat

    assert (figures.answered, figures.positive) == (5, 3)
    assert figures.rate == Decimal("0.6")
    assert (figures.sent, figures.sent_answered) == (7, 5)
    assert figures.response_rate == Decimal("0.7143")


# --- Volume ----------------------------------------------------------------------------


def test_volume_by_channel_category_and_department(merchant):
    billing = DepartmentFactory(merchant=merchant, name="Billing")
    for _ in range(3):
        ticket(merchant, channel=Channel.EMAIL, category="Refunds", department=billing)
    ticket(merchant, channel=Channel.PORTAL, category="Refunds")
    ticket(merchant, channel=Channel.EMAIL)
    ticket(merchant, created=END)  # the end is not in the period

    volume = metrics(merchant).volume

    assert volume.total == 5

    def labelled(rows):
        return [(str(row.label), row.count) for row in rows]

    assert labelled(volume.by_channel) == [("Email", 4), ("Rewards page", 1)]
    assert labelled(volume.by_category) == [("Refunds", 4), ("Uncategorised", 1)]
    assert labelled(volume.by_department) == [("Billing", 3), ("Triage", 2)]


# --- Per agent -------------------------------------------------------------------------


def test_per_agent_resolved_median_first_response_and_csat(merchant):
    ana = StaffMemberFactory(merchant=merchant, role="support", user__full_name="Ana Ruiz")
    ben = StaffMemberFactory(merchant=merchant, role="support", user__full_name="Ben Okafor")
    StaffMemberFactory(merchant=merchant, role="support", user__full_name="Idle Ida")
    for hours in (1, 3):
        feedback = ticket(merchant)
        reply(feedback, T0 + hours * HOUR, author=ana.user)
        reply(feedback, T0 + 10 * HOUR, author=ben.user)  # not the first reply
        cycle(feedback, 1, resolved=T0 + 12 * HOUR, by=ana)
    quick = ticket(merchant)
    reply(quick, T0 + timedelta(minutes=30), author=ben.user)
    cycle(quick, 1, resolved=T0 + HOUR, by=ben)
    answered_survey(quick, 5, agent=ana)
    answered_survey(ticket(merchant), 2, agent=ana)
    # Someone who left the staff wrote this first reply: it counts for no agent.
    reply(ticket(merchant), T0 + HOUR, author=UserFactory())

    agents = {agent.name: agent for agent in metrics(merchant).agents}

    assert sorted(agents) == ["Ana Ruiz", "Ben Okafor"]
    assert agents["Ana Ruiz"].resolved == 2
    assert agents["Ana Ruiz"].median_first_response == 2 * HOUR
    assert (agents["Ana Ruiz"].csat_answered, agents["Ana Ruiz"].csat) == (2, Decimal("0.5"))
    assert agents["Ben Okafor"].resolved == 1
    assert agents["Ben Okafor"].median_first_response == timedelta(minutes=30)
    assert agents["Ben Okafor"].csat is None


# --- What never counts -----------------------------------------------------------------


def _assert_empty(figures):
    assert figures.first_response_time.count == 0
    assert figures.first_response_time.median is None
    assert figures.first_response_time.mean is None
    assert figures.first_response_time.without_response == 0
    assert figures.resolution_time.median is None
    assert figures.reopen_rate.rate is None
    assert figures.first_contact_resolution.rate is None
    assert figures.sla.targets == 0
    assert figures.sla.rate is None
    assert figures.sla.first_response_rate is None
    assert figures.sla.resolution_rate is None
    assert figures.csat.rate is None
    assert figures.csat.response_rate is None
    assert figures.volume.total == 0
    assert figures.volume.by_channel == ()
    assert figures.agents == ()


def test_an_empty_period_gives_no_ratios_rather_than_zero(merchant):
    full_ticket(merchant, agent=StaffMemberFactory(merchant=merchant))
    _assert_empty(metrics(merchant, start=END, end=END + 30 * DAY))


@pytest.mark.parametrize("state", [State.SPAM, State.MERGED])
def test_spam_and_merged_tickets_count_nowhere(merchant, state):
    full_ticket(merchant, state=state, agent=StaffMemberFactory(merchant=merchant))
    _assert_empty(metrics(merchant))


def test_another_merchants_tickets_are_never_counted(merchant):
    other = MerchantFactory()
    full_ticket(other, agent=StaffMemberFactory(merchant=other))
    _assert_empty(metrics(merchant))
    assert metrics(other).volume.total == 1


def test_the_number_of_queries_does_not_grow_with_the_tickets(merchant, django_assert_num_queries):
    agent = StaffMemberFactory(merchant=merchant)
    full_ticket(merchant, agent=agent)
    with django_assert_num_queries(7):
        one = metrics(merchant)
    for hours in range(1, 6):
        full_ticket(
            merchant, created=T0 + hours * HOUR, agent=StaffMemberFactory(merchant=merchant)
        )
    with django_assert_num_queries(7):
        six = metrics(merchant)
    assert (one.volume.total, six.volume.total) == (1, 6)
    assert len(six.agents) == 6


# --- The page --------------------------------------------------------------------------


@pytest.fixture
def agent(client, merchant):
    member = StaffMemberFactory(merchant=merchant, role="support", user__full_name="Maria Lopez")
    client.force_login(member.user)
    return member


def _page(client, **params):
    return client.get("/feedback/metrics/", params)


def test_the_page_shows_the_figures_to_a_support_agent(client, merchant, agent):
    feedback = ticket(merchant, channel=Channel.EMAIL)
    customer_writes(feedback, T0)
    reply(feedback, T0 + timedelta(hours=26, minutes=5), author=agent.user)
    cycle(feedback, 1, resolved=T0 + 27 * HOUR, by=agent)
    answered_survey(feedback, 4, at=T0 + 28 * HOUR, agent=agent)

    response = _page(client, start="2025-03-01", end="2025-03-31")

    assert response.status_code == 200
    body = response.content.decode()
    assert "26 h 5 min" in body  # first response, median and mean
    assert "27 h 0 min" in body  # resolution time
    assert 'data-testid="fcr-rate">100.0%<' in body
    assert 'data-testid="csat-rate">100.0%<' in body
    assert 'data-testid="reopen-rate">0.0%<' in body
    assert 'data-testid="sla-rate">—<' in body  # no SLA policy: no targets, no fake 0%
    assert "Uncategorised" in body
    assert "Triage" in body
    assert "Maria Lopez" in body


def test_the_period_is_whole_days_in_the_merchants_time_zone(client, merchant, agent):
    merchant.timezone = "America/New_York"
    merchant.save()
    # 9 March 2025, 23:00 in New York (the day clocks go forward), 03:00 UTC on the 10th.
    ticket(merchant, created=datetime(2025, 3, 10, 3, 0, tzinfo=UTC))

    on_the_9th = _page(client, start="2025-03-09", end="2025-03-09").context["metrics"]
    on_the_10th = _page(client, start="2025-03-10", end="2025-03-10").context["metrics"]

    assert on_the_9th.volume.total == 1
    assert on_the_10th.volume.total == 0


def test_the_default_period_is_the_last_30_days(client, merchant, agent):
    with time_machine.travel(datetime(2025, 3, 31, 12, 0, tzinfo=UTC), tick=False):
        ticket(merchant, created=datetime(2025, 3, 2, 0, 30, tzinfo=UTC))  # 30th day back
        ticket(merchant, created=datetime(2025, 3, 1, 23, 0, tzinfo=UTC))  # 31st day back
        response = _page(client)
    assert response.status_code == 200
    assert response.context["metrics"].volume.total == 1
    assert 'value="2025-03-02"' in response.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2025-02-30", "end": "2025-03-31"}, "From: Enter a valid date."),
        ({"start": "2025-03-01", "end": "soon"}, "To: Enter a valid date."),
        ({"start": "2025-03-10", "end": "2025-03-01"}, "To: The last day can"),
        ({"start": "2020-01-01", "end": "2025-03-01"}, "To: Choose a period of at most 366 days."),
    ],
)
def test_a_bad_period_names_the_field(client, agent, params, message):
    response = _page(client, **params)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["metrics"] is None


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_staff_who_read_reports_read_the_inbox_metrics_too(client, merchant, role):
    client.force_login(StaffMemberFactory(merchant=merchant, role=role).user)
    assert _page(client).status_code == 200


def test_the_page_runs_a_fixed_number_of_queries(client, merchant, agent):
    full_ticket(merchant, agent=agent)
    period = {"start": "2025-03-01", "end": "2025-03-31"}
    _page(client, **period)  # the session and the like settle on the first request
    with CaptureQueriesContext(connection) as one:
        _page(client, **period)
    for hours in range(1, 6):
        full_ticket(
            merchant, created=T0 + hours * HOUR, agent=StaffMemberFactory(merchant=merchant)
        )
    with CaptureQueriesContext(connection) as six:
        response = _page(client, **period)
    assert response.context["metrics"].volume.total == 6
    assert len(six) == len(one)
