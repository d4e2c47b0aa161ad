"""Shared fixtures, and the switch that makes CI run every test.

Tests that need PostgreSQL, Redis, Chromium or gettext carry a marker (needs_postgres,
needs_redis, needs_chromium, needs_gettext). On a bare machine they skip with the reason
shown in the summary. REGULARS_REQUIRE_SERVICES names the services a run must have
("postgres,redis,chromium,gettext", or "all"); .ci/run sets it, and then a test whose
service is missing fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.db import connection

from tests.merchants.factories import MerchantFactory, StaffMemberFactory

SERVICES = {"postgres", "redis", "chromium", "gettext"}
_required = os.environ.get("REGULARS_REQUIRE_SERVICES", "").strip().lower()
REQUIRED = SERVICES if _required in ("1", "all") else {s.strip() for s in _required.split(",") if s}
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


def _redis_reachable() -> bool:
    url = urlparse(TEST_REDIS_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), 1):
            return True
    except OSError:
        return False


def _missing(item: pytest.Item) -> tuple[str, str] | None:
    if item.get_closest_marker("needs_postgres") and connection.vendor != "postgresql":
        return "postgres", "needs PostgreSQL: set DATABASE_URL=postgres://…"
    if item.get_closest_marker("needs_redis") and not _redis_reachable():
        return "redis", f"needs Redis at {TEST_REDIS_URL} (TEST_REDIS_URL)"
    if item.get_closest_marker("needs_chromium") and not chromium_path():
        return "chromium", "needs Chromium: apt-get install chromium (or set CHROMIUM_PATH)"
    if item.get_closest_marker("needs_gettext") and not shutil.which("xgettext"):
        return "gettext", "needs GNU gettext: apt-get install gettext"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    missing = _missing(item)
    if missing is None:
        return
    service, reason = missing
    if service in REQUIRED:
        pytest.fail(
            f"REGULARS_REQUIRE_SERVICES includes {service} but this test {reason}", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _no_language_left_over():
    """Each test starts in no language of its own: a staff page answered in Arabic leaves
    Arabic active in this thread (as Django leaves it until the next request), and a
    translated field set as `name=` would be written in Arabic."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache, whether it is local memory or Redis."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def merchant(db):
    return MerchantFactory()


@pytest.fixture
def other_merchant(db):
    return MerchantFactory()


@pytest.fixture
def owner(merchant):
    return StaffMemberFactory(merchant=merchant, role="owner")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner.user)
    return client


@pytest.fixture
def worker_broker(tmp_path):
    """Points this process's task publishing at Redis (a database of its own) and starts a
    real worker there, so tasks queued by pages run as they would in production."""
    import redis

    from config.celery import app
    from tests.workers import celery_worker

    broker = TEST_REDIS_URL.rsplit("/", 1)[0] + "/13"
    redis.Redis.from_url(broker).flushdb()
    previous = app.conf.broker_url

    def reset_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = broker
    reset_pools()
    try:
        with celery_worker(broker_url=broker, log=tmp_path / "worker.log") as worker:
            yield worker
    finally:
        app.conf.broker_url = previous
        reset_pools()
