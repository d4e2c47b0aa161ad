"""What each settings module makes of the environment, read by a fresh interpreter as
`make run`, gunicorn and Celery read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READ = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'].get('CONN_MAX_AGE')))"
)


def _conn_max_age(module: str, **extra: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_CONN_MAX_AGE"}
    env.update(DJANGO_SETTINGS_MODULE=module,
               DATABASE_URL="postgres://postgres@127.0.0.1:5432/regulars_unused",
               DJANGO_SECRET_KEY="settings-test-" + "x" * 50, ALLOWED_HOSTS="example.com",
               **extra)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("module", "kept"),
    [("config.settings.local", 0), ("config.settings.production", 60)],
)
def test_connections_are_kept_only_where_a_long_lived_worker_reuses_them(module, kept):
    # `make run` on PostgreSQL: the development server's thread per request must not keep
    # its connection (about a hundred requests ran PostgreSQL out of them).
    assert _conn_max_age(module) == kept
    assert _conn_max_age(module, DATABASE_CONN_MAX_AGE="15") == 15
