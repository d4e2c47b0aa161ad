"""Redis stops while the product runs: staff stay signed in and can sign in, the API takes
orders, the rewards page shows, and /healthz/ says which part is away. A Redis of the
test's own, on a port of its own, is started and stopped for real."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest
from django.core.cache import caches
from django.test import Client, override_settings

from customers.services.portal import storefront_link_make
from merchants.api_keys import api_key_create
from tests.customers.factories import CustomerFactory
from tests.loyalty.factories import ProgramFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = [pytest.mark.needs_redis, pytest.mark.django_db]
PASSWORD = "a-long-pass-phrase"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_redis():
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("needs redis-server")
    port = _free_port()
    process = subprocess.Popen([server, "--port", str(port), "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    cache = {"BACKEND": "django_redis.cache.RedisCache",
             "LOCATION": f"redis://127.0.0.1:{port}/0",
             "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.5,
                         "SOCKET_TIMEOUT": 0.5}}  # fmt: skip
    sessions = "django.contrib.sessions.backends.cached_db"
    with override_settings(CACHES={"default": cache}, SESSION_ENGINE=sessions):
        yield process
    process.kill()
    process.wait()
    caches["default"].close()


def _order(external_id: str) -> str:
    customer = {"external_id": "ada", "email": "ada@example.test"}
    return json.dumps({"external_id": external_id, "placed_at": "2026-05-01T10:00:00Z",
                       "currency": "USD", "total": "20.00", "customer": customer})  # fmt: skip


def _signs_in(client: Client, email: str) -> bool:
    answer = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
    return answer.status_code == 302


def test_the_product_goes_on_while_redis_is_away(own_redis, merchant):
    ProgramFactory(merchant=merchant)
    owner = StaffMemberFactory(merchant=merchant, role="owner")
    owner.user.set_password(PASSWORD)
    owner.user.save()
    _key, raw = api_key_create(merchant=merchant, name="Shop", scopes=["ingest"])
    api = {"content_type": "application/json", "HTTP_AUTHORIZATION": f"Bearer {raw}"}
    staff = Client()
    assert _signs_in(staff, owner.user.email)
    assert staff.get("/").status_code == 200
    assert Client().post("/api/v1/orders", _order("o-1"), **api).status_code == 201
    customer = CustomerFactory(merchant=merchant, external_id="rana")
    shopper = Client()
    shopper.get(storefront_link_make(customer=customer))
    assert shopper.get(f"/r/{merchant.slug}/").status_code == 200
    assert Client().get("/healthz/").json()["cache"] == "ok"

    own_redis.kill()
    own_redis.wait()

    assert staff.get("/").status_code == 200  # her session is in the database too
    again = Client()
    assert _signs_in(again, owner.user.email)
    assert again.get("/customers/").status_code == 200
    assert Client().post("/api/v1/orders", _order("o-2"), **api).status_code == 201
    assert shopper.get(f"/r/{merchant.slug}/").status_code == 200
    health = Client().get("/healthz/")
    assert health.status_code == 200
    assert health.json() | {"broker": "…"} == {"status": "degraded", "database": "ok",
                                                "cache": "unavailable", "broker": "…"}  # fmt: skip
