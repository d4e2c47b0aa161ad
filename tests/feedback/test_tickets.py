"""The ticket services end to end: intake, replies and what the customer receives, merge,
reviews earning points once, and the CSAT survey sent on resolve."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.timezone import now

from feedback.models import Channel, CsatSurvey, Cycle, Feedback, Kind, Message, ReviewState, State
from feedback.services.csat import csat_answer
from feedback.services.intake import customer_reply, feedback_submit
from feedback.services.thread import Upload
from feedback.services.tickets import (
    feedback_merge,
    feedback_transition,
    note_add,
    review_moderate,
    staff_reply,
)
from loyalty.models import EarningRule
from loyalty.selectors import account_of
from tests.customers.factories import CustomerFactory
from tests.loyalty.factories import EarningRuleFactory, ProgramFactory
from tests.merchants.factories import StaffMemberFactory
from tests.races import race

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(merchant):
    return StaffMemberFactory(merchant=merchant, role="support", user__full_name="Maria Lopez")


@pytest.fixture
def customer(merchant):
    return CustomerFactory(merchant=merchant, email="ada@example.test", first_name="Ada")


def _ticket(merchant, customer, **kwargs) -> Feedback:
    values = {"channel": Channel.PORTAL, "kind": Kind.QUESTION, "subject": "Late parcel",
              "body": "My parcel is a week late."} | kwargs  # fmt: skip
    return feedback_submit(merchant=merchant, customer=customer, **values)


def test_a_submitted_ticket_starts_new_with_the_customers_words_and_a_first_cycle(
    merchant, customer
):
    ticket = _ticket(merchant, customer)
    assert ticket.state == State.NEW
    assert list(ticket.messages.values_list("kind", "body")) == [
        (Message.Kind.CUSTOMER, "My parcel is a week late.")
    ]
    assert list(Cycle.objects.filter(feedback=ticket).values_list("number", flat=True)) == [1]
    assert customer.activities.filter(kind="feedback.received").count() == 1


def test_bad_intake_names_the_field_and_writes_nothing(merchant, customer):
    with pytest.raises(ValidationError) as error:
        feedback_submit(merchant=merchant, customer=customer, channel="fax", kind="rant",
                        body="", rating=9)  # fmt: skip
    assert set(error.value.message_dict) == {"channel", "kind", "rating"}
    with pytest.raises(ValidationError) as error:
        _ticket(merchant, customer, uploads=[Upload("evil.exe", "application/x-msdownload", b"MZ")])
    assert "evil.exe" in error.value.message_dict["attachments"][0]
    with pytest.raises(ValidationError) as error:
        _ticket(merchant, customer, uploads=[Upload("photo.png", "image/png", b"<html>")])
    assert "photo.png" in error.value.message_dict["attachments"][0]
    assert not Feedback.objects.exists()
    assert not Message.objects.exists()


def test_a_foreign_customer_is_refused(merchant, other_merchant):
    stranger = CustomerFactory(merchant=other_merchant)
    with pytest.raises(ValidationError) as error:
        _ticket(merchant, stranger)
    assert "customer" in error.value.message_dict


def test_a_reply_reaches_the_customer_threaded_and_a_note_never_does(
    merchant, customer, agent, django_capture_on_commit_callbacks
):
    ticket = _ticket(merchant, customer)
    with django_capture_on_commit_callbacks(execute=True):
        note_add(feedback=ticket, member=agent, body="VIP, be quick")
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        reply = staff_reply(feedback=ticket, member=agent, body="It ships today.")
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ada@example.test"]
    assert "It ships today." in sent.body
    assert sent.extra_headers["Message-ID"] == reply.email_message_id
    ticket.refresh_from_db()
    assert ticket.state == State.OPEN
    assert ticket.first_response_at == reply.created_at
    assert ticket.assignee == agent


def test_a_reply_to_an_unknown_sender_goes_to_their_address(
    merchant, agent, django_capture_on_commit_callbacks
):
    ticket = feedback_submit(merchant=merchant, channel=Channel.EMAIL, kind=Kind.QUESTION,
                             subject="Hi", body="Do you ship to Oman?",
                             sender_email="Guest@Example.test")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        staff_reply(feedback=ticket, member=agent, body="We do.")
    assert mail.outbox[0].to == ["guest@example.test"]


def test_reopen_then_closed_starts_a_new_linked_ticket(merchant, customer, agent):
    ticket = _ticket(merchant, customer)
    staff_reply(feedback=ticket, member=agent, body="Sent.", then=State.RESOLVED)
    same = customer_reply(feedback=ticket, body="Still not here")
    ticket.refresh_from_db()
    assert same == ticket
    assert (ticket.state, ticket.reopen_count, ticket.cycle) == (State.OPEN, 1, 2)
    staff_reply(feedback=ticket, member=agent, body="Resent.", then=State.RESOLVED)
    feedback_transition(feedback=ticket, to=State.CLOSED, member=agent)
    newer = customer_reply(feedback=ticket, body="Wrong colour though")
    assert newer.pk != ticket.pk
    assert newer.follows_id == ticket.pk
    assert newer.state == State.NEW
    ticket.refresh_from_db()
    assert ticket.state == State.CLOSED
    assert f"#{newer.pk}" in ticket.messages.filter(kind="event").last().text


def test_merge_moves_the_messages_and_both_tickets_say_so(merchant, customer, agent):
    first = _ticket(merchant, customer, body="Parcel late")
    duplicate = _ticket(merchant, customer, body="Parcel STILL late")
    target = feedback_merge(source=duplicate, target=first, member=agent)
    duplicate.refresh_from_db()
    assert duplicate.state == State.MERGED
    assert duplicate.merged_into == first
    bodies = list(target.messages.filter(kind="customer").values_list("body", flat=True))
    assert bodies == ["Parcel late", "Parcel STILL late"]
    assert f"#{duplicate.pk}" in target.messages.filter(kind="event").last().text
    assert f"#{first.pk}" in duplicate.messages.get(kind="event", event="merged_away").text
    # The customer writing on the duplicate lands on the ticket it was merged into.
    assert customer_reply(feedback=duplicate, body="Hello?") == first
    with pytest.raises(ValidationError):
        feedback_merge(source=first, target=first, member=agent)


def test_an_approved_review_earns_the_review_points_once_and_a_rejected_one_none(
    merchant, customer, agent
):
    ProgramFactory(merchant=merchant)
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.EVENT, event="review",
                       points=50)  # fmt: skip
    review = feedback_submit(merchant=merchant, customer=customer, channel=Channel.REVIEW,
                             kind=Kind.REVIEW, rating=5, body="Lovely tea",
                             product_sku="TEA-1", external_id="r-1")  # fmt: skip
    assert review.review_state == ReviewState.PENDING
    rejected = feedback_submit(merchant=merchant, customer=customer, channel=Channel.REVIEW,
                               kind=Kind.REVIEW, rating=1, body="Spam link",
                               external_id="r-2")  # fmt: skip
    review_moderate(feedback=rejected, approve=False, member=agent)
    assert account_of(customer=customer) is None or account_of(customer=customer).available == 0
    review_moderate(feedback=review, approve=True, member=agent)
    review_moderate(feedback=review, approve=False, member=agent)
    review_moderate(feedback=review, approve=True, member=agent)
    assert account_of(customer=customer).available == 50
    # The same review sent again is the same ticket.
    again = feedback_submit(merchant=merchant, customer=customer, channel=Channel.REVIEW,
                            kind=Kind.REVIEW, rating=5, body="Lovely tea",
                            external_id="r-1")  # fmt: skip
    assert again.pk == review.pk
    assert Feedback.objects.filter(kind=Kind.REVIEW).count() == 2


def test_resolving_sends_one_single_use_csat_link_per_cycle(
    merchant, customer, agent, django_capture_on_commit_callbacks
):
    ticket = _ticket(merchant, customer)
    with django_capture_on_commit_callbacks(execute=True):
        staff_reply(feedback=ticket, member=agent, body="Done.", then=State.RESOLVED)
    # The answer first, then the question about it.
    assert "Done." in mail.outbox[0].body
    assert "/feedback/csat/" in mail.outbox[1].body
    survey_mail = mail.outbox[1]
    token = survey_mail.body.split("/feedback/csat/")[1].split("/")[0]
    survey = CsatSurvey.objects.get(feedback=ticket)
    assert (survey.cycle, survey.agent) == (1, agent)
    assert survey.expires_at == survey.sent_at + timedelta(days=14)
    csat_answer(merchant=merchant, token=token, rating=4, comment="Quick")
    with pytest.raises(ValidationError, match="answered already"):
        csat_answer(merchant=merchant, token=token, rating=1)
    survey.refresh_from_db()
    assert (survey.rating, survey.comment) == (4, "Quick")
    # The agent reads the comment in the thread.
    assert "Quick" in ticket.messages.filter(kind="event").last().text


def test_a_csat_link_expires_after_14_days(
    merchant, customer, agent, django_capture_on_commit_callbacks
):
    ticket = _ticket(merchant, customer)
    with django_capture_on_commit_callbacks(execute=True):
        staff_reply(feedback=ticket, member=agent, body="Done.", then=State.RESOLVED)
    body = next(m.body for m in mail.outbox if "/feedback/csat/" in m.body)
    token = body.split("/feedback/csat/")[1].split("/")[0]
    with (
        time_machine.travel(now() + timedelta(days=14, minutes=1)),
        pytest.raises(ValidationError, match="expired"),
    ):
        csat_answer(merchant=merchant, token=token, rating=5)
    with pytest.raises(ValidationError, match="not valid"):
        csat_answer(merchant=merchant, token="made-up", rating=5)


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_agents_approving_a_review_at_once_earn_it_once(merchant, customer):
    ProgramFactory(merchant=merchant)
    EarningRuleFactory(merchant=merchant, kind=EarningRule.Kind.EVENT, event="review",
                       points=50)  # fmt: skip
    agents = [StaffMemberFactory(merchant=merchant, role="support") for _ in range(4)]
    review = feedback_submit(merchant=merchant, customer=customer, channel=Channel.REVIEW,
                             kind=Kind.REVIEW, rating=5, body="Lovely")  # fmt: skip
    errors = race(lambda i: review_moderate(feedback=review, approve=True, member=agents[i]), 4)
    assert errors == []
    assert account_of(customer=customer).available == 50


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_customer_reply_racing_a_resolve_leaves_a_consistent_ticket(merchant, customer):
    agent = StaffMemberFactory(merchant=merchant, role="support")
    ticket = _ticket(merchant, customer)
    staff_reply(feedback=ticket, member=agent, body="Anything else?")

    def act(index: int) -> None:
        if index == 0:
            feedback_transition(feedback=ticket, to=State.RESOLVED, member=agent)
        else:
            customer_reply(feedback=ticket, body="One more thing")

    assert race(act, 2) == []
    connection.close()
    ticket.refresh_from_db()
    # Either order is fine; the ticket never ends resolved with the customer's last word
    # unanswered and no new cycle.
    cycles = list(Cycle.objects.filter(feedback=ticket).order_by("number"))
    if ticket.state == State.RESOLVED:
        last_customer = ticket.messages.filter(kind="customer").last()
        assert last_customer.created_at <= cycles[-1].resolved_at
    else:
        assert ticket.state == State.OPEN
        assert len(cycles) == 2
        assert cycles[0].resolved_at is not None
