from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import call_command

from feedback.models import CsatSurvey, Feedback, Message, State
from feedback.services.sla import sla_breaches_mark

pytestmark = pytest.mark.django_db


def test_the_demo_desk_has_worked_tickets_in_four_languages_and_seeding_again_changes_nothing(
    settings,
):
    call_command("seed_demo", quiet_signins=True)
    tickets = Feedback.objects.filter(merchant__slug="demo-store")
    assert tickets.count() == settings.DEMO_TICKETS
    states = set(tickets.values_list("state", flat=True))
    assert {State.NEW, State.OPEN, State.PENDING, State.RESOLVED, State.CLOSED, State.SPAM,
            State.MERGED} <= states  # fmt: skip
    assert set(tickets.values_list("language", flat=True)) >= {"en", "ar", "fa", "ru"}
    assert set(tickets.values_list("channel", flat=True)) >= {"portal", "email", "api", "review",
                                                              "phone"}  # fmt: skip
    assert tickets.filter(department__isnull=False).count() > settings.DEMO_TICKETS / 6
    assert tickets.filter(reopen_count__gt=0).exists()
    # Missed targets are marked by the seed, so the worker's first run has none to mail.
    assert tickets.filter(breached_at__isnull=False, state__in=["new", "open"]).exists()
    assert sla_breaches_mark() == 0
    assert Message.objects.filter(feedback__in=tickets, kind="note").exists()
    rated = CsatSurvey.objects.filter(merchant__slug="demo-store", rating__isnull=False)
    assert rated.count() > settings.DEMO_TICKETS / 15
    # The demo's mail never reaches the configured backend.
    assert mail.outbox == []
    counts = (tickets.count(), Message.objects.count(), CsatSurvey.objects.count())
    call_command("seed_demo", quiet_signins=True)
    assert (tickets.count(), Message.objects.count(), CsatSurvey.objects.count()) == counts
