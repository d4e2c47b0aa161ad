"""Two real Celery workers on Redis share a 20,000-message send into a real SMTP server;
one is killed with kill -9 halfway. Nothing is lost, and nothing is sent twice but, at
most, the one message that was on the wire when the worker died (SMTP can't tell us
whether the server kept it): it goes again with the same Message-ID."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter

import pytest
from celery import Celery
from django.test import override_settings
from django.utils.timezone import now

from campaigns.models import Message, MessageTemplate, SendingSettings
from campaigns.services.flows import due_claim
from campaigns.tasks import messages_send_task
from customers.models import Customer
from tests.campaigns.factories import TemplateFactory
from tests.campaigns.smtp_sink import Sink, sink_start
from tests.conftest import TEST_REDIS_URL
from tests.merchants.factories import MerchantFactory
from tests.workers import celery_worker

RECIPIENTS = 20_000
LEASE = 3


def _wait(until, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until():
            return True
        time.sleep(0.05)
    return until()


@pytest.mark.needs_postgres
@pytest.mark.needs_redis
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_a_send_and_a_killed_one_loses_nothing(tmp_path):
    shop = MerchantFactory()
    SendingSettings.objects.create(merchant=shop, cap_messages=0, send_rate=RECIPIENTS)
    template = TemplateFactory(merchant=shop, kind=MessageTemplate.Kind.MARKETING,
                               body_en="Hello {{ first_name }}, a new tea is in.")  # fmt: skip
    at = now()
    customers = Customer.objects.bulk_create(
        Customer(merchant=shop, external_id=f"c{n}", email=f"c{n}@example.test",
                 first_name=f"C{n}", marketing_consent=True, created_at=at, updated_at=at)
        for n in range(RECIPIENTS)
    )  # fmt: skip
    Message.objects.bulk_create(
        Message(merchant=shop, customer=c, template=template, kind=template.kind,
                key=f"broadcast:1:{c.pk}", send_after=at)
        for c in customers
    )  # fmt: skip
    sink = Sink()
    controller = sink_start(sink)
    queue = f"regulars-test-{uuid.uuid4().hex}"
    env = {"CELERY_TASK_DEFAULT_QUEUE": queue, "MESSAGE_LEASE_SECONDS": str(LEASE),
           "TEST_EMAIL_URL": f"smtp://127.0.0.1:{controller.port}"}  # fmt: skip
    sender = Celery(broker=TEST_REDIS_URL)
    try:
        with (
            override_settings(MESSAGE_LEASE_SECONDS=LEASE),
            celery_worker(broker_url=TEST_REDIS_URL, log=tmp_path / "a.log", env=env) as first,
            celery_worker(broker_url=TEST_REDIS_URL, log=tmp_path / "b.log", env=env),
        ):
            chunks = due_claim()
            assert sum(map(len, chunks)) == RECIPIENTS
            for chunk in chunks:
                sender.send_task(messages_send_task.name, args=[chunk], queue=queue)
            assert _wait(lambda: len(sink.messages) >= RECIPIENTS // 3, 300), (
                tmp_path / "a.log"
            ).read_text()[-3000:]
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            # The other worker sends the rest; the chunk the dead one held stays claimed
            # until its lease runs out, then the next pass (beat's, every minute) takes it.
            sent = Message.objects.filter(state="sent")
            _settled(lambda: sent.count(), 300)
            assert sent.count() < RECIPIENTS  # the dead worker's chunk is still held
            time.sleep(LEASE + 0.5)
            for chunk in due_claim():
                sender.send_task(messages_send_task.name, args=[chunk], queue=queue)
            done = _wait(lambda: sent.count() == RECIPIENTS, 300)
            states = Counter(Message.objects.values_list("state", flat=True))
            assert done, (states, (tmp_path / "b.log").read_text()[-2000:])
    finally:
        controller.stop()
    arrivals = Counter(m["To"] for m in sink.messages)
    assert len(arrivals) == RECIPIENTS  # everyone got it
    twice = [to for to, n in arrivals.items() if n > 1]
    assert len(twice) <= 1, twice  # at most the one on the wire at the kill
    for to in twice:
        ids = {m["Message-ID"] for m in sink.messages if m["To"] == to}
        assert len(ids) == 1  # sent again as the same message
    assert Message.objects.filter(state="sent").count() == RECIPIENTS


def _settled(count, seconds: float) -> None:
    """Until `count()` stops moving for two seconds: the live worker has run dry."""
    deadline, last, still = time.monotonic() + seconds, -1, 0
    while time.monotonic() < deadline and still < 4:
        current = count()
        still = still + 1 if current == last else 0
        last = current
        time.sleep(0.5)
