"""The JSON API at /api/v1/: one NinjaAPI, each app adding its router.

Docs at /api/v1/docs (served from our own static files), schema at /api/v1/openapi.json.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as SchemaValidationError

from campaigns.api import router as campaigns_router
from customers.api import router as customers_router
from feedback.api import router as feedback_router
from loyalty.api import router as loyalty_router
from merchants.api import API_AUTH
from merchants.api_keys import IdempotencyConflict

api = NinjaAPI(
    title="Regulars API",
    version="1",
    description=(
        "Send customers, orders, refunds and events from your shop; redeem points for codes "
        "and mark codes used; validate, reserve and redeem promotion codes at checkout; record "
        "membership payments and referrals. Authenticate with an "
        "API key from Settings → API keys, as `Authorization: Bearer rk_…` or `X-Api-Key`. "
        "Any POST may carry an `Idempotency-Key` header: its first answer is replayed for "
        "24 hours, and the same key with another body is answered 409."
    ),
    auth=API_AUTH,
    urls_namespace="api",
)
api.add_router("/", customers_router)
api.add_router("/", loyalty_router)
api.add_router("/", feedback_router)
api.add_router("/", campaigns_router)


def _field_path(location: list) -> str:
    parts = [str(p) for p in location if p not in ("body", "payload")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


@api.exception_handler(SchemaValidationError)
def _schema_invalid(request: HttpRequest, exc: SchemaValidationError) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        errors.setdefault(_field_path(list(error.get("loc", []))), []).append(error.get("msg", ""))
    return api.create_response(
        request, {"detail": "The request body is not valid.", "errors": errors}, status=400
    )


@api.exception_handler(DjangoValidationError)
def _service_refused(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"body": exc.messages}
    return api.create_response(
        request, {"detail": "The request was refused.", "errors": errors}, status=400
    )


@api.exception_handler(IdempotencyConflict)
def _idempotency_conflict(request: HttpRequest, exc: IdempotencyConflict) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc), "errors": {}}, status=409)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"detail": "A valid API key is required.", "errors": {}}, status=401
    )
