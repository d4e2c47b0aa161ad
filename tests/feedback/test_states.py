"""The state table, move by move: every allowed move works through the services and every
other one is refused, leaving the ticket as it was (docs/business-rules.md §8)."""

from __future__ import annotations

from itertools import product

import pytest
from django.core.exceptions import ValidationError

from feedback.models import Cycle, Feedback, Message, State
from feedback.services.intake import customer_reply
from feedback.services.tickets import feedback_transition
from feedback.states import TRANSITIONS, By, next_states, transition_allowed
from tests.feedback.factories import FeedbackFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db

CASES = list(product(State, State, By))


def _ticket(state: State) -> Feedback:
    ticket = FeedbackFactory(state=state)
    Cycle.objects.create(
        merchant=ticket.merchant, feedback=ticket, number=1, started_at=ticket.created_at
    )
    return ticket


@pytest.mark.parametrize(("current", "to", "by"), CASES, ids=[f"{c}-{t}-{b}" for c, t, b in CASES])
def test_every_move_of_the_table_works_and_every_other_is_refused(current, to, by):
    ticket = _ticket(current)
    member = StaffMemberFactory(merchant=ticket.merchant, role="support")
    allowed = by in TRANSITIONS.get((current, to), frozenset())
    assert transition_allowed(current, to, by) is allowed

    if allowed:
        moved = feedback_transition(
            feedback=ticket, to=to, member=member if by == By.STAFF else None, by=by
        )
        assert moved.state == to
        ticket.refresh_from_db()
        assert ticket.state == to
        # Each move leaves a line in the thread.
        assert Message.objects.filter(feedback=ticket, kind=Message.Kind.EVENT).count() == 1
    else:
        with pytest.raises(ValidationError) as refused:
            feedback_transition(
                feedback=ticket, to=to, member=member if by == By.STAFF else None, by=by
            )
        assert "can't be moved" in " ".join(refused.value.messages)
        ticket.refresh_from_db()
        assert ticket.state == current
        assert not Message.objects.filter(feedback=ticket).exists()


def test_a_state_that_is_not_one_is_refused():
    ticket = _ticket(State.NEW)
    with pytest.raises(ValidationError):
        feedback_transition(feedback=ticket, to="archived", member=None)
    ticket.refresh_from_db()
    assert ticket.state == State.NEW


def test_the_table_keeps_the_rules_of_the_design():
    # Closed and merged are final; the customer only ever brings a ticket back to open.
    assert next_states(State.CLOSED, By.STAFF) == []
    assert next_states(State.MERGED, By.STAFF) == []
    for (current, to), who in TRANSITIONS.items():
        if By.CUSTOMER in who:
            assert to == State.OPEN
            assert current in (State.PENDING, State.RESOLVED)
    # A closed ticket is only reached from resolved.
    assert {c for (c, t) in TRANSITIONS if t == State.CLOSED} == {State.RESOLVED}


def test_staff_buttons_come_from_the_table():
    assert next_states(State.NEW) == [
        State.OPEN, State.PENDING, State.RESOLVED, State.MERGED, State.SPAM,
    ]  # fmt: skip
    assert next_states(State.RESOLVED) == [State.OPEN, State.CLOSED]
    assert next_states(State.PENDING, By.CUSTOMER) == [State.OPEN]


# --- The customer writes again ---------------------------------------------------------


@pytest.mark.parametrize("state", [State.NEW, State.OPEN])
def test_a_customer_reply_to_a_ticket_being_worked_keeps_its_state(state):
    ticket = _ticket(state)
    written_on = customer_reply(feedback=ticket, body="Any news?")
    assert written_on.pk == ticket.pk
    ticket.refresh_from_db()
    assert ticket.state == state
    assert ticket.messages.filter(kind=Message.Kind.CUSTOMER, body="Any news?").exists()


def test_a_customer_reply_to_a_pending_ticket_opens_it():
    ticket = _ticket(State.PENDING)
    customer_reply(feedback=ticket, body="Here is the photo.")
    ticket.refresh_from_db()
    assert ticket.state == State.OPEN
    assert ticket.reopen_count == 0


def test_a_customer_reply_to_a_resolved_ticket_reopens_it_in_a_new_cycle():
    ticket = _ticket(State.RESOLVED)
    customer_reply(feedback=ticket, body="It broke again.")
    ticket.refresh_from_db()
    assert ticket.state == State.OPEN
    assert ticket.reopen_count == 1
    assert ticket.cycle == 2
    assert list(ticket.cycles.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert ticket.messages.filter(kind=Message.Kind.EVENT).exists()


def test_a_customer_reply_to_a_closed_ticket_starts_a_new_linked_ticket():
    ticket = _ticket(State.CLOSED)
    written_on = customer_reply(feedback=ticket, body="Me again, about the same order.")

    assert written_on.pk != ticket.pk
    assert written_on.follows_id == ticket.pk
    assert written_on.state == State.NEW
    assert written_on.customer_id == ticket.customer_id
    ticket.refresh_from_db()
    assert ticket.state == State.CLOSED
    assert not ticket.messages.filter(kind=Message.Kind.CUSTOMER).exists()
    assert written_on.messages.filter(body="Me again, about the same order.").exists()
    # Both tickets say where the conversation went.
    assert f"#{written_on.pk}" in ticket.messages.get(kind=Message.Kind.EVENT).text
    assert f"#{ticket.pk}" in written_on.messages.get(kind=Message.Kind.EVENT).text


def test_a_customer_reply_to_a_merged_ticket_goes_to_the_one_it_was_merged_into():
    target = _ticket(State.OPEN)
    source = FeedbackFactory(
        merchant=target.merchant, customer=target.customer, state=State.MERGED,
        merged_into=target,
    )  # fmt: skip
    written_on = customer_reply(feedback=source, body="Hello?")
    assert written_on.pk == target.pk
    assert target.messages.filter(body="Hello?").exists()
    assert not source.messages.exists()


def test_a_customer_reply_to_spam_moves_nothing():
    ticket = _ticket(State.SPAM)
    customer_reply(feedback=ticket, body="Buy now")
    ticket.refresh_from_db()
    assert ticket.state == State.SPAM
