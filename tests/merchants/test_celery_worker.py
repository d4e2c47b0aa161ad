"""A real Celery worker with beat, against Redis, running the scheduled heartbeat into
the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from merchants.models import JobRun
from merchants.services import HEARTBEAT_JOB
from tests.conftest import TEST_REDIS_URL
from tests.merchants.factories import StaffMemberFactory

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.needs_redis
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_run_the_scheduled_heartbeat(tmp_path, client):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": TEST_REDIS_URL,
        # A queue of its own, so nothing else on this Redis takes or sends its messages.
        "CELERY_TASK_DEFAULT_QUEUE": f"regulars-test-{uuid.uuid4().hex}",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
        "HEARTBEAT_SECONDS": "1",
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-B",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if JobRun.objects.filter(job=HEARTBEAT_JOB, state=JobRun.State.DONE).exists():
                break
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()

    output = (tmp_path / "worker.log").read_text()
    assert JobRun.objects.filter(job=HEARTBEAT_JOB, state=JobRun.State.DONE).exists(), output
    assert "merchants.tasks.heartbeat_task" in output
    assert "beat: Starting" in output

    member = StaffMemberFactory()
    client.force_login(member.user)
    assert "The scheduler last ran" in client.get("/").content.decode()
