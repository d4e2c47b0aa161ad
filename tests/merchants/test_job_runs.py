from __future__ import annotations

import logging
import threading

import pytest
import time_machine
from django.db import connection

from merchants.models import JobRun
from merchants.services import HEARTBEAT_JOB, heartbeat_record, job_run_claim, job_run_finish
from merchants.tasks import heartbeat_task
from tests.merchants.factories import MerchantFactory


@pytest.mark.django_db
def test_a_job_is_claimed_once_per_merchant_and_period():
    shop, other = MerchantFactory(), MerchantFactory()

    assert job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24") is not None
    assert job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24") is None
    assert job_run_claim(job="tiers", merchant=other, period_key="2026-11-24") is not None
    assert job_run_claim(job="tiers", merchant=shop, period_key="2026-11-25") is not None
    assert job_run_claim(job="expiry", merchant=shop, period_key="2026-11-24") is not None
    assert job_run_claim(job="sweep", period_key="2026-11-24") is not None
    assert job_run_claim(job="sweep", period_key="2026-11-24") is None
    assert JobRun.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_the_same_run_at_once_get_it_once():
    shop = MerchantFactory()
    results: list[object] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        try:
            results.append(job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24"))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8
    assert sum(result is not None for result in results) == 1
    assert JobRun.objects.filter(job="tiers").count() == 1


@pytest.mark.django_db
def test_heartbeat_records_each_minute_once():
    with time_machine.travel("2026-11-24 10:00:05Z", tick=False) as traveller:
        assert heartbeat_record() is True
        traveller.shift(30)
        assert heartbeat_record() is False
        traveller.shift(30)
        assert heartbeat_record() is True
    runs = JobRun.objects.filter(job=HEARTBEAT_JOB).order_by("period_key")
    assert [run.period_key for run in runs] == ["2026-11-24T10:00", "2026-11-24T10:01"]
    assert {run.state for run in runs} == {JobRun.State.DONE}


@pytest.mark.django_db
def test_a_task_redelivered_too_often_is_dropped(caplog, settings):
    settings.CELERY_MAX_DELIVERIES = 3
    caplog.set_level(logging.ERROR)

    def deliver() -> None:
        heartbeat_task.push_request(id="poison-1", is_eager=False)
        try:
            heartbeat_task()
        finally:
            heartbeat_task.pop_request()

    for _ in range(3):
        deliver()
    assert "Dropping task" not in caplog.text
    JobRun.objects.all().delete()

    deliver()

    assert (
        "Dropping task merchants.tasks.heartbeat_task[poison-1] after 3 deliveries" in caplog.text
    )
    assert not JobRun.objects.exists(), "the fourth delivery did not run"


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_taken_over_by_the_next_try():
    """A claim older than any task may run (its worker was killed mid-run) doesn't hold
    the night's job for good: the next scheduled try takes it over, once."""
    from datetime import timedelta

    from django.utils.timezone import now

    shop = MerchantFactory()
    first = job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24")
    assert job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24") is None
    with time_machine.travel(now() + timedelta(hours=3), tick=False):
        taken = job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24")
        assert taken is not None
        assert taken.pk == first.pk
        assert job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24") is None
    job_run_finish(run=taken)
    with time_machine.travel(now() + timedelta(days=2), tick=False):
        assert job_run_claim(job="tiers", merchant=shop, period_key="2026-11-24") is None
    assert JobRun.objects.filter(job="tiers").count() == 1
