"""/hooks/: where Shopify and WooCommerce deliver webhooks. Doors only.

The signature is checked over the raw body before anything is parsed; a bad one is a 401
and writes nothing.
"""

from __future__ import annotations

import json
import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from customers.webhooks import NotYet, WebhookRejected, signature_valid, webhook_receive
from merchants.access import public_view
from merchants.api_keys import store_connection_for_webhook
from merchants.models import StoreConnection

logger = logging.getLogger(__name__)

HEADERS = {
    StoreConnection.Platform.SHOPIFY: {
        "signature": "X-Shopify-Hmac-Sha256",
        "topic": "X-Shopify-Topic",
        "delivery": "X-Shopify-Webhook-Id",
    },
    StoreConnection.Platform.WOOCOMMERCE: {
        "signature": "X-WC-Webhook-Signature",
        "topic": "X-WC-Webhook-Topic",
        "delivery": "X-WC-Webhook-Delivery-ID",
    },
}


def _error(status: int, detail: str, field: str = "") -> JsonResponse:
    return JsonResponse({"detail": detail, "field": field}, status=status)


def _receive(request: HttpRequest, platform: str, connection_id: str) -> JsonResponse:
    connection = store_connection_for_webhook(public_id=connection_id)
    if connection is None or connection.platform != platform:
        return _error(404, "No such connection.")
    names = HEADERS[platform]
    signature = request.headers.get(names["signature"], "")
    if not signature or not signature_valid(
        secret=connection.secret, body=request.body, signature=signature
    ):
        return _error(
            401, "The signature does not match this connection's secret.", names["signature"]
        )
    if (
        platform == StoreConnection.Platform.WOOCOMMERCE
        and not request.headers.get(names["topic"])
        and request.body.startswith(b"webhook_id=")
    ):
        return JsonResponse({"outcome": "ping received"})
    try:
        payload = json.loads(request.body)
    except ValueError:
        return _error(400, "The body is not JSON.", "body")
    if not isinstance(payload, dict):
        return _error(400, "The body must be a JSON object.", "body")
    topic = request.headers.get(names["topic"], "")
    delivery_id = request.headers.get(names["delivery"], "")
    for header, value in ((names["topic"], topic), (names["delivery"], delivery_id)):
        if not value:
            return _error(400, f"The {header} header is missing.", header)
    try:
        outcome = webhook_receive(
            connection=connection, delivery_id=delivery_id, topic=topic, payload=payload
        )
    except NotYet as later:
        # Sent again by the platform until it fits (the order arrives), or it gives up.
        return _error(409, f"{later.field} {later.problem}.", later.field)
    except WebhookRejected as rejected:
        # Answered as received (any other answer and the platform resends it for days):
        # the body and the connection page say what was wrong.
        return JsonResponse({"outcome": "rejected", "field": rejected.field,
                             "detail": f"{rejected.field}: {rejected.reason}"})  # fmt: skip
    return JsonResponse({"outcome": outcome})


@public_view
@csrf_exempt
@require_POST
def shopify_webhook(request: HttpRequest, connection: str) -> JsonResponse:
    return _receive(request, StoreConnection.Platform.SHOPIFY, connection)


@public_view
@csrf_exempt
@require_POST
def woocommerce_webhook(request: HttpRequest, connection: str) -> JsonResponse:
    return _receive(request, StoreConnection.Platform.WOOCOMMERCE, connection)
