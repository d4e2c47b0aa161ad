"""Shared fixtures, and the switch that makes CI run every test.

Tests that need PostgreSQL, Redis or Chromium carry a marker (needs_postgres,
needs_redis, needs_chromium). On a bare machine they skip with the reason shown in the
summary; with REGULARS_REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.db import connection

from tests.merchants.factories import MerchantFactory, StaffMemberFactory

REQUIRE_SERVICES = os.environ.get("REGULARS_REQUIRE_SERVICES") == "1"
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


def _missing(item: pytest.Item) -> str | None:
    if item.get_closest_marker("needs_postgres") and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://…"
    if item.get_closest_marker("needs_redis") and not _redis_reachable():
        return f"needs Redis at {TEST_REDIS_URL} (TEST_REDIS_URL)"
    if item.get_closest_marker("needs_chromium") and not chromium_path():
        return "needs Chromium: apt-get install chromium (or set CHROMIUM_PATH)"
    if item.get_closest_marker("needs_gettext") and not shutil.which("xgettext"):
        return "needs GNU gettext: apt-get install gettext"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing(item)
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"REGULARS_REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)


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
