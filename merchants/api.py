"""What every /api/v1/ endpoint shares: API-key authentication, scopes, Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from ninja import Status
from ninja.errors import HttpError
from ninja.security import APIKeyHeader, HttpBearer

from merchants.api_keys import (
    Replay,
    api_key_authenticate,
    idempotency_claim,
    idempotency_release,
    idempotency_store,
)
from merchants.models import ApiKey, Merchant


class BearerKey(HttpBearer):
    """Authorization: Bearer rk_…"""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_key_authenticate(token)


class HeaderKey(APIKeyHeader):
    """X-Api-Key: rk_…"""

    param_name = "X-Api-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return api_key_authenticate(key or "")


API_AUTH = [BearerKey(), HeaderKey()]


def api_merchant(request: HttpRequest, scope: str) -> Merchant:
    """The merchant of the request's API key, once the key is known to have `scope`."""
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    if scope not in key.scopes:
        raise HttpError(403, f"This API key lacks the '{scope}' scope.")
    return key.merchant


def idempotent(view: Callable[..., Status]) -> Callable[..., Any]:
    """Stores the first answer to a POST carrying an Idempotency-Key and replays it for 24
    hours; the same key with another body is a 409. The view returns Status(code, JSON)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return view(request, *args, **kwargs)
        merchant = request.auth.merchant  # type: ignore[attr-defined]
        claim = idempotency_claim(merchant=merchant, key=key, path=request.path, body=request.body)
        if isinstance(claim, Replay):
            response = JsonResponse(claim.body, status=claim.status_code, safe=False)
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            result = view(request, *args, **kwargs)
        except BaseException:
            idempotency_release(record=claim)
            raise
        idempotency_store(record=claim, status_code=result.status_code, body=result.value)
        return result

    return wrapper
