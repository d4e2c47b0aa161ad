from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils.timezone import now

from customers.models import Customer
from feedback.models import (
    CsatSurvey,
    Cycle,
    Department,
    Feedback,
    Message,
    SlaBreach,
    State,
)
from merchants.models import StaffMember
from tests.customers.factories import CustomerFactory
from tests.feedback.factories import FeedbackFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

DONE = (State.RESOLVED, State.CLOSED)
UNFINISHED = (State.NEW, State.OPEN, State.PENDING)


@pytest.fixture
def shop():
    merchant = MerchantFactory()
    CustomerFactory.create_batch(40, merchant=merchant)
    return merchant


def _generate(merchant, tickets=200, seed=5) -> str:
    out = StringIO()
    call_command("generate_tickets", merchant=merchant.slug, tickets=tickets, seed=seed, stdout=out)
    return out.getvalue()


def test_generated_tickets_tell_consistent_stories(shop):
    output = _generate(shop)

    assert "200 tickets" in output
    tickets = list(Feedback.objects.filter(merchant=shop).order_by("id"))
    assert len(tickets) == 200
    # The support team: ten agents in five departments, every assignee in the ticket's one.
    agents = StaffMember.objects.filter(merchant=shop, role="support")
    assert agents.count() == 10
    members = {d.pk: set(d.members.values_list("pk", flat=True)) for d in
               Department.objects.filter(merchant=shop)}  # fmt: skip
    assert len(members) == 5
    for ticket in tickets:
        if ticket.department_id and ticket.assignee_id:
            assert ticket.assignee_id in members[ticket.department_id]
    # Customers of this shop, and a few unknown senders by email.
    unknown = [t for t in tickets if t.customer_id is None]
    assert 1 <= len(unknown) <= 25
    assert all(t.sender_email and t.channel == "email" for t in unknown)
    own = set(Customer.objects.filter(merchant=shop).values_list("pk", flat=True))
    assert {t.customer_id for t in tickets if t.customer_id} <= own
    assert {t.language for t in tickets} == {"en", "ar", "fa", "ru"}

    threads: dict[int, list[Message]] = {t.pk: [] for t in tickets}
    for message in Message.objects.filter(merchant=shop).order_by("created_at", "pk"):
        threads[message.feedback_id].append(message)
    cycles = Counter(Cycle.objects.filter(merchant=shop).values_list("feedback_id", flat=True))
    at = now()
    for ticket in tickets:
        thread = threads[ticket.pk]
        assert 1 <= len(thread) <= 4, ticket
        assert thread[0].kind == "customer"
        assert thread[0].created_at == ticket.created_at
        assert thread[0].body == ticket.body
        assert ticket.created_at <= ticket.updated_at <= at
        assert thread[-1].created_at <= ticket.updated_at
        replies = [m.created_at for m in thread if m.kind == "reply"]
        assert ticket.first_response_at == (replies[0] if replies else None), ticket
        assert cycles[ticket.pk] == ticket.cycle == ticket.reopen_count + 1
        if ticket.state in DONE:
            assert ticket.resolved_at is not None
            assert ticket.assignee_id is not None
            assert (ticket.closed_at is not None) == (ticket.state == State.CLOSED)
        else:
            assert ticket.resolved_at is None
            assert ticket.closed_at is None
        assert (ticket.sla_paused_at is not None) == (ticket.state == State.PENDING)
        assert (ticket.merged_into_id is not None) == (ticket.state == State.MERGED)
        if ticket.state == State.NEW:
            assert [m.kind for m in thread] == ["customer"]
    states = Counter(t.state for t in tickets)
    assert states[State.CLOSED] + states[State.RESOLVED] > 150
    # Resolved cycles name who resolved them; surveys only follow a resolution.
    for cycle in Cycle.objects.filter(merchant=shop):
        assert (cycle.resolved_at is None) == (cycle.resolved_by_id is None)
    resolved_cycles = {
        (c.feedback_id, c.number): c
        for c in Cycle.objects.filter(merchant=shop, resolved_at__isnull=False)
    }
    surveys = list(CsatSurvey.objects.filter(merchant=shop))
    assert surveys
    for survey in surveys:
        cycle = resolved_cycles[(survey.feedback_id, survey.cycle)]
        assert survey.sent_at == cycle.resolved_at
        assert survey.agent_id == cycle.resolved_by_id
        assert (survey.rating is None) == (survey.answered_at is None)
    # A breach is a missed due time; a ticket shows one only for its current cycle.
    by_id = {t.pk: t for t in tickets}
    for breach in SlaBreach.objects.filter(merchant=shop):
        ticket = by_id[breach.feedback_id]
        assert breach.breached_at > breach.due_at
        if breach.target == "first_response":
            assert ticket.first_response_at is None or ticket.first_response_at > breach.due_at
    for ticket in tickets:
        if ticket.breached_at:
            assert SlaBreach.objects.filter(feedback=ticket, cycle=ticket.cycle).exists()


def test_the_same_seed_makes_the_same_inbox():
    inboxes = []
    for _ in range(2):
        shop = MerchantFactory()
        CustomerFactory.create_batch(10, merchant=shop)
        # The stories stop at the present: the same present for both.
        with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False):
            _generate(shop, tickets=60, seed=8)
        inboxes.append(
            list(
                Feedback.objects.filter(merchant=shop)
                .order_by("id")
                .values_list("subject", "state", "priority", "updated_at")
            )
        )
    assert inboxes[0] == inboxes[1]


def test_a_second_run_adds_tickets_after_the_first(shop):
    _generate(shop, tickets=30)
    _generate(shop, tickets=30, seed=6)

    assert Feedback.objects.filter(merchant=shop).count() == 60
    assert StaffMember.objects.filter(merchant=shop).count() == 10
    # Ids continue after the generated ones (the sequence was moved on).
    later = FeedbackFactory(merchant=shop)
    assert later.pk > Feedback.objects.exclude(pk=later.pk).order_by("-pk").first().pk


def test_generate_tickets_names_what_is_wrong():
    with pytest.raises(CommandError, match="No merchant"):
        call_command("generate_tickets", merchant="nope", tickets=1)
    with pytest.raises(CommandError, match="at least 1"):
        call_command("generate_tickets", merchant=MerchantFactory().slug, tickets=0)


@pytest.mark.needs_postgres
def test_copy_load_leaves_the_planner_statistics(shop):
    _generate(shop, tickets=200)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE relname IN "
            "('feedback_feedback', 'feedback_message') ORDER BY relname"
        )
        tickets, messages = (row[0] for row in cursor.fetchall())
    assert tickets == 200
    assert messages == Message.objects.filter(merchant=shop).count()
