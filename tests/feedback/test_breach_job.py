"""The SLA breach job: each missed target marked, escalated and notified once, even when
runs overlap; and the job that closes resolved tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from config.celery import beat_schedule
from feedback.models import Feedback, Message, SlaBreach, SupportSettings
from feedback.services.sla import resolved_close_due, sla_breaches_mark, sla_due_set
from feedback.tasks import sla_breaches_task
from tests.feedback.factories import DepartmentFactory, FeedbackFactory, SlaPolicyFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory
from tests.races import race

# Monday 10 March 2025, London is on GMT: local time is UTC.
MONDAY_NINE = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
FIRST_RESPONSE = SlaBreach.Target.FIRST_RESPONSE
RESOLUTION = SlaBreach.Target.RESOLUTION


@pytest.fixture
def policy(merchant):
    # First response within an hour, resolution within the working day.
    return SlaPolicyFactory(
        merchant=merchant, priority="normal", first_response_minutes=60, resolution_minutes=480
    )


@pytest.fixture
def support(merchant):
    return DepartmentFactory(merchant=merchant, name="Support", email="support@shop.test")


def ticket_at(merchant, at=MONDAY_NINE, **fields) -> Feedback:
    ticket = FeedbackFactory(merchant=merchant, created_at=at, updated_at=at, **fields)
    sla_due_set(feedback=ticket, at=at, first_response=True)
    ticket.save()
    return ticket


def mark(at, capture) -> int:
    with capture(execute=True):
        return sla_breaches_mark(at=at)


def events(ticket) -> list[str]:
    return [m.text for m in ticket.messages.filter(kind=Message.Kind.EVENT)]


@pytest.mark.django_db
def test_running_twice_breaches_escalates_and_notifies_once(
    merchant, policy, support, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "http://testserver"
    ticket = ticket_at(merchant, department=support)
    eleven = MONDAY_NINE + timedelta(hours=2)

    assert mark(eleven, django_capture_on_commit_callbacks) == 1
    assert mark(eleven + timedelta(minutes=5), django_capture_on_commit_callbacks) == 0

    breach = SlaBreach.objects.get()
    assert (breach.feedback_id, breach.target, breach.cycle) == (ticket.pk, FIRST_RESPONSE, 1)
    assert breach.due_at == MONDAY_NINE + timedelta(hours=1)
    ticket.refresh_from_db()
    assert ticket.priority == "high"
    assert ticket.breached_at == eleven
    # Escalation does not move the clocks.
    assert ticket.first_response_due_at == MONDAY_NINE + timedelta(hours=1)
    assert ticket.resolution_due_at == MONDAY_NINE + timedelta(hours=8)
    [event] = events(ticket)
    assert "first response" in event
    assert ticket.messages.get(kind=Message.Kind.EVENT).is_automatic
    [email] = mail.outbox
    assert email.to == ["support@shop.test"]
    assert ticket.number in email.subject
    assert merchant.name in email.subject
    assert ticket.subject in email.body
    assert f"http://testserver/feedback/{ticket.pk}/" in email.body


@pytest.mark.django_db
def test_the_scheduled_task_marks_breaches_at_the_current_time(
    merchant, policy, support, django_capture_on_commit_callbacks
):
    ticket = ticket_at(merchant, department=support)
    with time_machine.travel(MONDAY_NINE + timedelta(minutes=59), tick=False):
        sla_breaches_task()
    assert not SlaBreach.objects.exists()
    with (
        time_machine.travel(MONDAY_NINE + timedelta(minutes=61), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sla_breaches_task()
    assert SlaBreach.objects.get().feedback_id == ticket.pk
    assert len(mail.outbox) == 1


def test_the_job_runs_every_five_minutes():
    entry = beat_schedule()["feedback-sla-every-5-minutes"]
    assert entry["task"] == "feedback.tasks.sla_breaches_task"
    assert entry["schedule"].minute == set(range(0, 60, 5))


@pytest.mark.django_db
def test_a_pending_ticket_past_its_due_time_is_not_breached(
    merchant, policy, support, django_capture_on_commit_callbacks
):
    ticket = ticket_at(merchant, department=support, state="pending")
    assert mark(MONDAY_NINE + timedelta(days=3), django_capture_on_commit_callbacks) == 0
    assert not SlaBreach.objects.exists()
    assert mail.outbox == []
    ticket.refresh_from_db()
    assert ticket.priority == "normal"
    assert events(ticket) == []


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["resolved", "closed", "merged", "spam"])
def test_finished_tickets_are_not_breached(
    merchant, policy, state, django_capture_on_commit_callbacks
):
    ticket_at(merchant, state=state)
    assert mark(MONDAY_NINE + timedelta(days=3), django_capture_on_commit_callbacks) == 0


@pytest.mark.django_db
def test_a_first_response_in_time_is_not_breached(
    merchant, policy, support, django_capture_on_commit_callbacks
):
    ticket = ticket_at(merchant, department=support, state="open")
    Feedback.objects.filter(pk=ticket.pk).update(
        first_response_at=MONDAY_NINE + timedelta(minutes=30)
    )
    assert mark(MONDAY_NINE + timedelta(hours=3), django_capture_on_commit_callbacks) == 0
    assert mail.outbox == []

    # Still open at the end of the day: the resolution target is missed, and only that one.
    assert mark(MONDAY_NINE + timedelta(hours=9), django_capture_on_commit_callbacks) == 1
    breach = SlaBreach.objects.get()
    assert breach.target == RESOLUTION
    ticket.refresh_from_db()
    assert ticket.priority == "high"
    [event] = events(ticket)
    assert "resolution" in event


@pytest.mark.django_db
def test_both_targets_missed_raise_priority_two_steps_once(
    merchant, policy, support, django_capture_on_commit_callbacks
):
    ticket = ticket_at(merchant, department=support)
    for minutes in (0, 5, 10):
        mark(MONDAY_NINE + timedelta(hours=9, minutes=minutes), django_capture_on_commit_callbacks)
    assert sorted(SlaBreach.objects.values_list("target", flat=True)) == [
        FIRST_RESPONSE,
        RESOLUTION,
    ]
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    assert len(events(ticket)) == 2
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_urgent_stays_urgent(merchant, django_capture_on_commit_callbacks):
    SlaPolicyFactory(merchant=merchant, priority="urgent", first_response_minutes=15)
    ticket = ticket_at(merchant, priority="urgent")
    assert mark(MONDAY_NINE + timedelta(minutes=20), django_capture_on_commit_callbacks) == 1
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"


@pytest.mark.django_db
def test_a_reopened_cycle_can_miss_resolution_again_but_not_the_first_response(
    merchant, policy, django_capture_on_commit_callbacks
):
    SlaPolicyFactory(
        merchant=merchant, priority="urgent", first_response_minutes=30, resolution_minutes=480
    )
    ticket = ticket_at(merchant)
    mark(MONDAY_NINE + timedelta(hours=9), django_capture_on_commit_callbacks)
    assert SlaBreach.objects.count() == 2  # and the ticket is urgent now
    # Reopened on Tuesday: cycle 2, a new resolution clock, still no first response.
    tuesday = MONDAY_NINE + timedelta(days=1)
    ticket.refresh_from_db()
    ticket.cycle, ticket.state, ticket.breached_at = 2, "open", None
    sla_due_set(feedback=ticket, at=tuesday, first_response=False)
    ticket.save()

    assert mark(tuesday + timedelta(hours=9), django_capture_on_commit_callbacks) == 1
    breach = SlaBreach.objects.get(cycle=2)
    assert breach.target == RESOLUTION
    assert breach.due_at == tuesday + timedelta(hours=8)
    ticket.refresh_from_db()
    assert ticket.breached_at == tuesday + timedelta(hours=9)


@pytest.mark.django_db
def test_without_department_email_its_members_are_told(
    merchant, policy, django_capture_on_commit_callbacks
):
    ada = StaffMemberFactory(merchant=merchant, role="support", user__email="ada@shop.test")
    bob = StaffMemberFactory(merchant=merchant, role="support", user__email="bob@shop.test")
    team = DepartmentFactory(merchant=merchant)
    team.members.set([ada, bob])
    ticket_at(merchant, department=team)
    mark(MONDAY_NINE + timedelta(hours=2), django_capture_on_commit_callbacks)
    [email] = mail.outbox
    assert sorted(email.to) == ["ada@shop.test", "bob@shop.test"]


@pytest.mark.django_db
def test_a_ticket_in_triage_tells_its_assignee(
    merchant, policy, django_capture_on_commit_callbacks
):
    cleo = StaffMemberFactory(merchant=merchant, role="support", user__email="cleo@shop.test")
    ticket_at(merchant, assignee=cleo)
    mark(MONDAY_NINE + timedelta(hours=2), django_capture_on_commit_callbacks)
    [email] = mail.outbox
    assert email.to == ["cleo@shop.test"]


@pytest.mark.django_db
def test_every_merchant_is_checked(policy, merchant, django_capture_on_commit_callbacks):
    other = MerchantFactory(timezone="Asia/Dubai")
    SlaPolicyFactory(merchant=other, priority="normal", first_response_minutes=60)
    # Monday 09:00 in Dubai is 05:00 UTC.
    theirs = ticket_at(other, at=datetime(2025, 3, 10, 5, 0, tzinfo=UTC))
    ours = ticket_at(merchant)
    assert mark(MONDAY_NINE + timedelta(hours=2), django_capture_on_commit_callbacks) == 2
    assert set(SlaBreach.objects.values_list("feedback_id", "merchant_id")) == {
        (theirs.pk, other.pk),
        (ours.pk, merchant.pk),
    }


@pytest.mark.django_db
def test_many_breaches_are_worked_through_in_chunks(
    merchant, policy, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("feedback.services.sla.BREACH_CHUNK", 3)
    tickets = [ticket_at(merchant, at=MONDAY_NINE + timedelta(minutes=i)) for i in range(7)]
    assert mark(MONDAY_NINE + timedelta(hours=3), django_capture_on_commit_callbacks) == 7
    assert set(SlaBreach.objects.values_list("feedback_id", flat=True)) == {t.pk for t in tickets}


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_runs_notify_once():
    merchant = MerchantFactory()
    SlaPolicyFactory(
        merchant=merchant, priority="normal", first_response_minutes=60, resolution_minutes=480
    )
    support = DepartmentFactory(merchant=merchant, email="support@shop.test")
    tickets = [ticket_at(merchant, department=support) for _ in range(20)]
    mail.outbox = []

    errors = race(lambda _index: sla_breaches_mark(at=MONDAY_NINE + timedelta(hours=2)), 4)

    assert errors == []
    assert SlaBreach.objects.count() == 20
    assert len(mail.outbox) == 20
    assert sorted(int(m.subject.split("#")[1]) for m in mail.outbox) == sorted(
        t.pk for t in tickets
    )
    assert set(Feedback.objects.values_list("priority", flat=True)) == {"high"}
    assert Message.objects.filter(kind=Message.Kind.EVENT).count() == 20


# --- closing resolved tickets -----------------------------------------------------------


@pytest.mark.django_db
def test_resolved_tickets_close_after_the_merchants_wait(merchant, other_merchant):
    at = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
    old = FeedbackFactory(merchant=merchant, state="resolved", resolved_at=at - timedelta(days=8))
    recent = FeedbackFactory(
        merchant=merchant, state="resolved", resolved_at=at - timedelta(days=6)
    )
    still_open = FeedbackFactory(
        merchant=merchant, state="open", created_at=at - timedelta(days=30)
    )
    # This merchant closes after two days.
    SupportSettings.objects.create(merchant=other_merchant, close_after_days=2)
    theirs = FeedbackFactory(
        merchant=other_merchant, state="resolved", resolved_at=at - timedelta(days=3)
    )

    assert resolved_close_due(at=at) == 2
    assert resolved_close_due(at=at) == 0

    states = dict(Feedback.objects.values_list("pk", "state"))
    assert states == {old.pk: "closed", recent.pk: "resolved", still_open.pk: "open",
                      theirs.pk: "closed"}  # fmt: skip
    assert Feedback.objects.get(pk=old.pk).closed_at == at
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_each_member_is_notified_in_their_own_language(
    merchant, policy, django_capture_on_commit_callbacks
):
    team = DepartmentFactory(merchant=merchant, name="Team", email="")
    for email, language in (
        ("ana@shop.test", "en"),
        ("ivan@shop.test", "ru"),
        ("olga@shop.test", "ru"),
    ):
        member = StaffMemberFactory(merchant=merchant, role="support", user__email=email,
                                    user__language=language)  # fmt: skip
        team.members.add(member)
    ticket_at(merchant, department=team)
    mark(MONDAY_NINE + timedelta(hours=2), django_capture_on_commit_callbacks)
    by_recipients = {tuple(sorted(m.to)): m.subject for m in mail.outbox}
    assert set(by_recipients) == {("ana@shop.test",), ("ivan@shop.test", "olga@shop.test")}
    assert "First response overdue" in by_recipients[("ana@shop.test",)]
    assert "Просрочен первый ответ" in by_recipients[("ivan@shop.test", "olga@shop.test")]
