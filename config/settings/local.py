"""The embedded default for `make run`: SQLite and the Celery filesystem broker under var/."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import SECRET_KEY, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A fixed key is fine for a machine nobody else reaches; production refuses to start
# without its own.
SECRET_KEY = SECRET_KEY or "local-only-insecure-key-regulars-embedded-default-do-not-deploy"
