"""An import whose worker is killed (kill -9) halfway goes on where it stopped, with a real
Celery worker on Redis and the test database."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from celery import Celery
from django.core.files.base import ContentFile
from django.test import override_settings

from customers.imports import import_job_run, imports_stalled
from customers.models import Customer, ImportJob, ImportRowError
from customers.tasks import import_run_task, imports_resume_task
from tests.conftest import TEST_REDIS_URL
from tests.merchants.factories import MerchantFactory
from tests.workers import celery_worker

ROWS = 20_000


def _wait(until, seconds: float, worker=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until():
            return
        if worker is not None and worker.poll() is not None:
            break
        time.sleep(0.02)


@pytest.mark.needs_postgres
@pytest.mark.needs_redis
@pytest.mark.django_db(transaction=True)
def test_an_import_killed_with_its_worker_goes_on_from_the_last_batch_it_stored(tmp_path):
    shop = MerchantFactory()
    lines = ["external_id,email,birth_date"]
    lines += [f"c-{n},c{n}@example.test," for n in range(ROWS)]
    lines[777] = "c-776,c776@example.test,1999-02-31"  # one bad row, reported once
    upload = ContentFile("\n".join(lines).encode(), name="big.csv")
    job = ImportJob.objects.create(merchant=shop, kind="customers", original_name="big.csv",
                                   file=upload)  # fmt: skip
    queue = f"regulars-test-{uuid.uuid4().hex}"
    env = {"CELERY_TASK_DEFAULT_QUEUE": queue, "IMPORT_STALE_SECONDS": "2"}
    # A sender of its own, so the test process's Celery app keeps its settings.
    sender = Celery(broker=TEST_REDIS_URL)

    with celery_worker(broker_url=TEST_REDIS_URL, log=tmp_path / "first.log", env=env) as worker:
        sender.send_task(import_run_task.name, args=[job.pk], queue=queue)
        _wait(lambda: ImportJob.objects.get(pk=job.pk).rows_done >= 2_000, 120, worker)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    stopped = ImportJob.objects.get(pk=job.pk)
    assert stopped.state == "running"
    assert 2_000 <= stopped.rows_done < ROWS, (tmp_path / "first.log").read_text()

    # The task Redis holds comes back only after its visibility timeout (hours); the sweep
    # finds the job's heartbeat stale within seconds and queues it again.
    time.sleep(2.5)
    with override_settings(IMPORT_STALE_SECONDS=2):
        stalled = imports_stalled()
    assert stalled == [job.pk]
    with celery_worker(broker_url=TEST_REDIS_URL, log=tmp_path / "second.log", env=env):
        sender.send_task(imports_resume_task.name, queue=queue)  # the sweep, as beat runs it
        _wait(lambda: ImportJob.objects.get(pk=job.pk).state == "done", 180)
    done = ImportJob.objects.get(pk=job.pk)
    assert done.state == "done", (tmp_path / "second.log").read_text()
    assert (done.rows_done, done.rows_ok, done.rows_failed, done.runs) == (ROWS, ROWS - 1, 1, 2)
    assert Customer.objects.filter(merchant=shop).count() == ROWS - 1
    assert list(ImportRowError.objects.values_list("row_number", "column")) == [(778, "birth_date")]
    assert import_job_run(job_id=job.pk) is None  # the task Redis still holds does nothing
