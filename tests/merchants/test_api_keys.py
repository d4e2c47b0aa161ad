from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from merchants.api_keys import api_key_authenticate
from merchants.models import ApiKey, AuditEvent

pytestmark = pytest.mark.django_db


def test_owner_creates_a_key_that_is_shown_once_and_works(owner_client, owner):
    response = owner_client.post(
        "/merchants/api-keys/", {"name": "Storefront", "scopes": ["ingest", "read"]}
    )

    body = response.content.decode()
    raw = re.search(r"(rk_[0-9a-f]{8}_[\w-]+)", body).group(1)
    assert response["Cache-Control"] == "no-store"
    key = api_key_authenticate(raw)
    assert (key.merchant, key.name, key.scopes) == (
        owner.merchant,
        "Storefront",
        ["ingest", "read"],
    )
    assert raw not in ApiKey.objects.get().key_hash
    assert raw not in owner_client.get("/merchants/api-keys/").content.decode()
    audit = AuditEvent.objects.get(action=AuditEvent.Action.API_KEY_CREATED)
    assert audit.actor == owner.user
    assert audit.after == {"name": "Storefront", "scopes": ["ingest", "read"]}


def test_a_key_needs_a_name_and_a_scope(owner_client):
    response = owner_client.post("/merchants/api-keys/", {"name": "", "scopes": []})
    assert response.content.decode().count("This field is required.") == 2
    assert not ApiKey.objects.exists()


def test_a_revoked_key_stops_working_and_the_revocation_is_audited(owner_client, owner):
    body = owner_client.post(
        "/merchants/api-keys/", {"name": "Old", "scopes": ["ingest"]}
    ).content.decode()
    raw = re.search(r"(rk_[0-9a-f]{8}_[\w-]+)", body).group(1)
    key = ApiKey.objects.get()

    owner_client.post(f"/merchants/api-keys/{key.pk}/revoke/")

    assert api_key_authenticate(raw) is None
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.API_KEY_REVOKED, actor=owner.user
    ).exists()
    assert "Revoked" in owner_client.get("/merchants/api-keys/").content.decode()


def test_a_tampered_key_with_a_real_prefix_is_refused(owner):
    from merchants.api_keys import api_key_create

    _key, raw = api_key_create(merchant=owner.merchant, name="k", scopes=["ingest"])
    assert api_key_authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert api_key_authenticate(raw) is not None


def test_create_api_key_command_prints_a_working_key(merchant):
    out = StringIO()
    call_command("create_api_key", merchant=merchant.slug, name="CLI", stdout=out)
    key = api_key_authenticate(out.getvalue().strip())
    assert (key.merchant, key.scopes) == (merchant, ["ingest", "read"])
    assert AuditEvent.objects.get(action="api_key.created").actor_label == "manage.py"


def test_create_api_key_command_names_what_is_wrong(merchant):
    with pytest.raises(CommandError, match="No merchant with the slug 'nope'"):
        call_command("create_api_key", merchant="nope", name="CLI")
    with pytest.raises(CommandError, match="scopes"):
        call_command("create_api_key", merchant=merchant.slug, name="CLI", scopes="everything")
    assert not ApiKey.objects.exists()


def test_owner_connects_shopify_with_its_own_secret_and_revokes_it(owner_client, owner, client):
    import base64
    import hashlib
    import hmac

    secret = "shpss_0123456789abcdef0123456789abcdef"
    response = owner_client.post(
        "/merchants/connections/", {"platform": "shopify", "name": "Main store", "secret": secret}
    )
    assert response.status_code == 302
    page = owner_client.get("/merchants/connections/").content.decode()
    connection = owner.merchant.connections.get()
    assert f"http://testserver/hooks/shopify/{connection.public_id}/" in page
    assert AuditEvent.objects.filter(action="connection.created", actor=owner.user).exists()

    body = b'{"id": 1, "first_name": "Lea"}'
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "HTTP_X_SHOPIFY_HMAC_SHA256": signature,
        "HTTP_X_SHOPIFY_TOPIC": "customers/create",
        "HTTP_X_SHOPIFY_WEBHOOK_ID": "d-1",
    }
    url = f"/hooks/shopify/{connection.public_id}/"
    assert client.post(url, body, content_type="application/json", **headers).status_code == 200

    owner_client.post(f"/merchants/connections/{connection.pk}/revoke/")
    headers["HTTP_X_SHOPIFY_WEBHOOK_ID"] = "d-2"
    assert client.post(url, body, content_type="application/json", **headers).status_code == 404


def test_a_too_short_pasted_secret_is_named(owner_client, owner):
    response = owner_client.post(
        "/merchants/connections/", {"platform": "shopify", "secret": "short"}
    )
    assert "at least 16 characters" in response.content.decode()
    assert not owner.merchant.connections.exists()
