"""How shops reach Regulars: API keys and Idempotency-Key replays for /api/v1/, and shop
connections (webhook secrets) for /hooks/."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from merchants.models import (
    ApiKey,
    AuditEvent,
    IdempotencyRecord,
    Merchant,
    StoreConnection,
    User,
)
from merchants.services import audit_record

KEY_PREFIX = "rk_"
IDEMPOTENCY_WINDOW = timedelta(hours=24)


def _digest(raw_key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; no password hashing needed.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *, merchant: Merchant, name: str, scopes: list[str], actor: User | None = None
) -> tuple[ApiKey, str]:
    """Returns the stored key and the raw key, which is never shown again."""
    scopes = sorted(set(scopes))
    unknown = [scope for scope in scopes if scope not in ApiKey.Scope.values]
    if not scopes or unknown:
        raise ValidationError({"scopes": _("Choose at least one of the scopes.")})
    if not name.strip():
        raise ValidationError({"name": _("This field is required.")})
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            merchant=merchant,
            name=name.strip()[:80],
            prefix=prefix,
            key_hash=_digest(raw_key),
            scopes=scopes,
            created_by=actor,
        )
        audit_record(
            action=AuditEvent.Action.API_KEY_CREATED,
            merchant=merchant,
            actor=actor,
            actor_label="" if actor else "manage.py",
            target=key,
            after={"name": key.name, "scopes": scopes},
        )
    return key, raw_key


def api_key_revoke(*, key: ApiKey, actor: User) -> None:
    if key.revoked_at is not None:
        return
    with transaction.atomic():
        ApiKey.objects.filter(pk=key.pk).update(revoked_at=now())
        audit_record(
            action=AuditEvent.Action.API_KEY_REVOKED,
            merchant=key.merchant,
            actor=actor,
            target=key,
            before={"name": key.name, "scopes": key.scopes},
        )


# Every API request reads its key and the key's shop: by hand (raw()), as building the
# statement through the ORM measured 0.9 ms, fifteen times the database's round trip.
KEY_SQL = "SELECT * FROM merchants_apikey WHERE prefix = %s"
KEY_MERCHANT_SQL = "SELECT * FROM merchants_merchant WHERE id = %s"


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, compared in constant time, or None."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    prefix = raw_key[len(KEY_PREFIX) :].split("_", 1)[0]
    key = next(iter(ApiKey.objects.raw(KEY_SQL, [prefix])), None)
    if key is None:
        return None
    if not hmac.compare_digest(key.key_hash, _digest(raw_key)) or key.revoked_at is not None:
        return None
    key.merchant = next(iter(Merchant.objects.raw(KEY_MERCHANT_SQL, [key.merchant_id])))
    moment = now()
    if key.last_used_at is None or moment - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=moment)
    return key


# --- Idempotency-Key ------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


class IdempotencyConflict(Exception):
    """The key was used with another body, or its first request is still running."""


def request_fingerprint(*, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def idempotency_claim(
    *, merchant: Merchant, key: str, path: str, body: bytes
) -> IdempotencyRecord | Replay:
    """Claims the key for this request, or returns the stored answer to replay. Raises
    IdempotencyConflict for the same key with a different request, or while the first
    request with it is still being answered."""
    fingerprint = request_fingerprint(path=path, body=body)
    IdempotencyRecord.objects.filter(
        merchant=merchant, key=key, created_at__lt=now() - IDEMPOTENCY_WINDOW
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                merchant=merchant, key=key[:255], request_hash=fingerprint, path=path[:255]
            )
    except IntegrityError:
        record = IdempotencyRecord.objects.get(merchant=merchant, key=key[:255])
    if record.request_hash != fingerprint:
        raise IdempotencyConflict(_("This Idempotency-Key was already used with another request."))
    if record.status_code is None:
        raise IdempotencyConflict(_("A request with this Idempotency-Key is still being answered."))
    return Replay(status_code=record.status_code, body=record.response_body)


def idempotency_store(*, record: IdempotencyRecord, status_code: int, body: Any) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=status_code, response_body=body
    )


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forgets a claim whose request failed before answering, so a retry can run."""
    IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()


# --- Shop connections -----------------------------------------------------------------


def _admin_problems(platform: str, url: str, key: str, token: str) -> None:
    """The shop's address and credentials come together, over HTTPS (plain HTTP only to
    this machine, for a shop under development)."""
    if not (url or key or token):
        return
    errors: dict[str, list] = {}
    parts = urlsplit(url)
    if not url:
        errors["admin_url"] = [_("Give the shop's address.")]
    elif parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1"):
        errors["admin_url"] = [_("The shop's address starts with https://.")]
    if not token:
        errors["admin_token"] = [_("Give the access token or consumer secret.")]
    if platform == StoreConnection.Platform.WOOCOMMERCE and not key:
        errors["admin_key"] = [_("Give the consumer key.")]
    if errors:
        raise ValidationError(errors)


def store_connection_create(
    *,
    merchant: Merchant,
    platform: str,
    name: str = "",
    secret: str = "",
    admin_url: str = "",
    admin_key: str = "",
    admin_token: str = "",
    actor: User | None = None,
) -> StoreConnection:
    """`secret` is the platform's signing secret when it makes its own (Shopify shows one
    for webhooks made in its admin); empty generates one to paste into the platform.
    `admin_*` are where and how we may write to the shop (promotions' codes), optional."""
    if platform not in StoreConnection.Platform.values:
        raise ValidationError({"platform": _("Choose Shopify or WooCommerce.")})
    secret = secret.strip()
    if secret and len(secret) < 16:
        raise ValidationError({"secret": _("A signing secret has at least 16 characters.")})
    admin_url, admin_key, admin_token = admin_url.strip(), admin_key.strip(), admin_token.strip()
    _admin_problems(platform, admin_url, admin_key, admin_token)
    with transaction.atomic():
        connection = StoreConnection.objects.create(
            merchant=merchant,
            platform=platform,
            name=(name.strip() or StoreConnection.Platform(platform).label)[:80],
            secret=secret or secrets.token_urlsafe(32),
            admin_url=admin_url,
            admin_key=admin_key,
            admin_token=admin_token,
        )
        audit_record(
            action=AuditEvent.Action.CONNECTION_CREATED,
            merchant=merchant,
            actor=actor,
            actor_label="" if actor else "manage.py",
            target=connection,
            after={"platform": platform, "name": connection.name, "admin_url": admin_url},
        )
    return connection


def store_connection_revoke(*, connection: StoreConnection, actor: User) -> None:
    if connection.revoked_at is not None:
        return
    with transaction.atomic():
        StoreConnection.objects.filter(pk=connection.pk).update(revoked_at=now())
        audit_record(
            action=AuditEvent.Action.CONNECTION_REVOKED,
            merchant=connection.merchant,
            actor=actor,
            target=connection,
            before={"platform": connection.platform, "name": connection.name},
        )


def store_connection_for_webhook(*, public_id: str) -> StoreConnection | None:
    return (
        StoreConnection.objects.select_related("merchant")
        .filter(public_id=public_id, revoked_at__isnull=True)
        .first()
    )
