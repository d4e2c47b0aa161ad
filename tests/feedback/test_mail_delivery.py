"""Mail the inbox sends (replies, CSAT requests, breach notices) goes at once, and when the
mail server doesn't answer, a Celery task sends it later: a customer's answer is not lost
to a mail server's bad minute."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from config.celery import app
from feedback.models import Channel, CsatSurvey, Kind, State
from feedback.services.intake import feedback_submit
from feedback.services.tickets import staff_reply
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


class FailsFirst(EmailBackend):
    """The mail server refuses the first `failures` connections, then works."""

    failures = 0

    def send_messages(self, messages):
        if FailsFirst.failures:
            FailsFirst.failures -= 1
            raise ConnectionRefusedError("the mail server is not answering")
        return super().send_messages(messages)


@pytest.fixture
def flaky_mail(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FailsFirst"
    FailsFirst.failures = 1
    # The retry task runs in this process, as a worker would run it.
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def ticket(merchant):
    customer = CustomerFactory(merchant=merchant, email="ada@example.test")
    return feedback_submit(merchant=merchant, customer=customer, channel=Channel.PORTAL,
                           kind=Kind.QUESTION, subject="Late", body="Where is it?")  # fmt: skip


def test_a_reply_the_mail_server_refused_is_sent_again(
    merchant, ticket, flaky_mail, django_capture_on_commit_callbacks
):
    agent = StaffMemberFactory(merchant=merchant, role="support")
    with django_capture_on_commit_callbacks(execute=True):
        staff_reply(feedback=ticket, member=agent, body="It left today.")
    assert FailsFirst.failures == 0  # the first try did fail
    assert [m.to for m in mail.outbox] == [["ada@example.test"]]
    assert "It left today." in mail.outbox[0].body


def test_a_csat_request_the_mail_server_refused_is_one_survey_sent_later(
    merchant, ticket, flaky_mail, django_capture_on_commit_callbacks
):
    agent = StaffMemberFactory(merchant=merchant, role="support")
    FailsFirst.failures = 0
    with django_capture_on_commit_callbacks(execute=True):
        staff_reply(feedback=ticket, member=agent, body="Sorted.")
    FailsFirst.failures = 1
    from feedback.services.tickets import feedback_transition

    with django_capture_on_commit_callbacks(execute=True):
        feedback_transition(feedback=ticket, to=State.RESOLVED, member=agent)
    assert FailsFirst.failures == 0
    surveys = list(CsatSurvey.objects.filter(feedback=ticket))
    assert len(surveys) == 1
    assert surveys[0].agent == agent
    assert sum("/feedback/csat/" in m.body for m in mail.outbox) == 1
