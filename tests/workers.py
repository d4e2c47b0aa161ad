"""A real Celery worker (optionally with beat) in a subprocess, on the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def celery_worker(
    *, broker_url: str, log: Path, beat: bool = False, env: dict | None = None
) -> Iterator[subprocess.Popen]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": broker_url,
        **(env or {}),
    }
    arguments = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                 "--loglevel=INFO", "--without-mingle", "--without-gossip"]  # fmt: skip
    if beat:
        arguments.append("-B")
    with log.open("w") as output:
        worker = subprocess.Popen(
            arguments, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield worker
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
