"""Settings for the test suite: SQLite unless DATABASE_URL names PostgreSQL."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, env

DEBUG = False
SECRET_KEY = "test-only-key-regulars-not-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ALLOWED_HOSTS = ["*"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# A worker started by a test sends over real SMTP to the test's own server.
if env("TEST_EMAIL_URL", default=""):
    _test_mail = env.email_url("TEST_EMAIL_URL")
    EMAIL_BACKEND = _test_mail["EMAIL_BACKEND"]
    EMAIL_HOST, EMAIL_PORT = _test_mail["EMAIL_HOST"], _test_mail["EMAIL_PORT"]
    EMAIL_USE_TLS = EMAIL_USE_SSL = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a real Celery worker started by a test sees the same rows.
    # TEST_SQLITE_PATH gives two suites running side by side a file each.
    DATABASES["default"]["TEST"] = {
        "NAME": env("TEST_SQLITE_PATH", default=str(VAR_DIR / "test-regulars.sqlite3"))
    }

# Still Argon2, with costs low enough for a suite that creates many users. Production
# keeps Django's defaults.
from django.contrib.auth.hashers import Argon2PasswordHasher  # noqa: E402


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 1


PASSWORD_HASHERS = ["config.settings.test.FastArgon2PasswordHasher"]

# Tasks queued by the code under test go nowhere unless a test runs a real worker
# (tests/merchants/test_celery_worker.py passes its own broker).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")

# Enough demo customers to fill every page, few enough to seed in a moment.
DEMO_CUSTOMERS = 80
DEMO_TICKETS = 60
