"""The breach job run by a real Celery worker against Redis, on the test database: a ticket
past its first-response target is marked and escalated once, however often the task runs."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from celery import Celery
from django.utils.timezone import now

from feedback.models import Priority, SlaBreach
from feedback.services.sla import sla_due_set
from feedback.tasks import sla_breaches_task
from tests.conftest import TEST_REDIS_URL
from tests.feedback.factories import FeedbackFactory, SlaPolicyFactory
from tests.workers import celery_worker


@pytest.mark.needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_marks_an_overdue_ticket_once(tmp_path, merchant):
    SlaPolicyFactory(merchant=merchant, priority=Priority.NORMAL, first_response_minutes=1,
                     resolution_minutes=2)  # fmt: skip
    # Written a week ago: whatever today's business hours are, both targets have passed.
    written = now() - timedelta(days=7)
    ticket = FeedbackFactory(merchant=merchant, created_at=written, updated_at=written)
    sla_due_set(feedback=ticket, at=written, first_response=True)
    ticket.save()
    queue = f"regulars-test-{uuid.uuid4().hex}"
    env = {"CELERY_TASK_DEFAULT_QUEUE": queue}
    # A sender of its own, so the test process's Celery app keeps its settings.
    sender = Celery(broker=TEST_REDIS_URL)
    with celery_worker(broker_url=TEST_REDIS_URL, log=tmp_path / "worker.log", env=env) as worker:
        for _ in range(2):
            sender.send_task(sla_breaches_task.name, queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if SlaBreach.objects.filter(feedback=ticket).count() == 2:
                break
            time.sleep(0.5)
        time.sleep(1)  # the second delivery, if it were to add anything, has had its turn
    output = (tmp_path / "worker.log").read_text()
    targets = sorted(SlaBreach.objects.filter(feedback=ticket).values_list("target", flat=True))
    assert targets == ["first_response", "resolution"], output
    ticket.refresh_from_db()
    # Two breaches found in one run raise the priority one step each: normal → urgent.
    assert ticket.priority == Priority.URGENT
    assert ticket.breached_at is not None
