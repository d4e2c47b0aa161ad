"""A real Celery worker with beat, against Redis, running the scheduled heartbeat into
the test database."""

from __future__ import annotations

import time
import uuid

import pytest

from merchants.models import JobRun
from merchants.services import HEARTBEAT_JOB
from tests.conftest import TEST_REDIS_URL
from tests.merchants.factories import StaffMemberFactory
from tests.workers import celery_worker


@pytest.mark.needs_redis
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_run_the_scheduled_heartbeat(tmp_path, client):
    env = {
        # A queue of its own, so nothing else on this Redis takes or sends its messages.
        "CELERY_TASK_DEFAULT_QUEUE": f"regulars-test-{uuid.uuid4().hex}",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
        "HEARTBEAT_SECONDS": "1",
    }
    with celery_worker(
        broker_url=TEST_REDIS_URL, log=tmp_path / "worker.log", beat=True, env=env
    ) as worker:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if JobRun.objects.filter(job=HEARTBEAT_JOB, state=JobRun.State.DONE).exists():
                break
            time.sleep(0.5)

    output = (tmp_path / "worker.log").read_text()
    assert JobRun.objects.filter(job=HEARTBEAT_JOB, state=JobRun.State.DONE).exists(), output
    assert "merchants.tasks.heartbeat_task" in output
    assert "beat: Starting" in output

    member = StaffMemberFactory()
    client.force_login(member.user)
    assert "The scheduler last ran" in client.get("/").content.decode()


def test_no_task_may_run_longer_than_redis_waits_before_handing_it_to_another_worker():
    """With acks_late, Redis gives an unacknowledged task to a second worker after the
    visibility timeout: a task allowed to run longer would run twice at once."""
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert "customers.tasks.import_run_task" in tasks
    for name, task in tasks.items():
        limit = task.time_limit or app.conf.task_time_limit
        assert limit is not None, name
        assert limit < settings.REDIS_VISIBILITY_TIMEOUT, name
