"""/hooks/email/<merchant-slug>/: where the mail provider delivers emails sent to the
shop's support address, as JSON. A door only: email_receive threads replies and drops
replays.

The body is signed with the merchant's inbound secret (SupportSettings.inbound_secret):
`X-Regulars-Signature: <hex HMAC-SHA256 of the raw body>`, checked with a constant-time
compare before anything is parsed. A bad signature is a 401 and writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from email.utils import parseaddr
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.utils.html import strip_tags
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from feedback.services.hours import support_settings_of
from feedback.services.intake import InboundEmail, email_receive
from feedback.services.thread import Upload
from merchants.access import public_view
from merchants.models import Merchant

SIGNATURE_HEADER = "X-Regulars-Signature"
# Five attachments of 5 MB, base64-encoded (4/3), and the text around them. Read from the
# stream ourselves: Django's own 2.5 MB cap on request.body would turn away a customer's
# email with one photo in it.
BODY_MAX_BYTES = 36 * 1024 * 1024
# The service's words for a field, in the payload's words.
FIELDS = {"body": "text", "customer": "from", "sender_email": "from"}


def signature_valid(*, secret: str, body: bytes, signature: str) -> bool:
    """Compared as bytes: a header with characters outside ASCII is simply not equal (as
    str, compare_digest would raise on them)."""
    if not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def _error(status: int, detail: str, field: str = "") -> JsonResponse:
    return JsonResponse({"detail": detail, "field": field}, status=status)


class PayloadError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def _text(payload: dict, key: str, *, required: bool = False) -> str:
    value = payload.get(key)
    if value is None:
        if required:
            raise PayloadError(key, "is missing")
        return ""
    if not isinstance(value, str):
        raise PayloadError(key, "must be a string")
    if required and not value.strip():
        raise PayloadError(key, "is empty")
    return value


def _references(payload: dict) -> tuple[str, ...]:
    value = payload.get("references") or []
    if isinstance(value, str):
        # As the header carries them: space-separated.
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(ref, str) for ref in value):
        raise PayloadError("references", "must be a list of Message-IDs")
    return tuple(value)


def _uploads(payload: dict) -> tuple[Upload, ...]:
    value = payload.get("attachments") or []
    if not isinstance(value, list):
        raise PayloadError("attachments", "must be a list")
    uploads = []
    for n, item in enumerate(value):
        path = f"attachments[{n}]"
        if not isinstance(item, dict):
            raise PayloadError(path, "must be an object")
        name = _text(item, "name") or "attachment"
        content_type = _text(item, "content_type") or "application/octet-stream"
        try:
            content = base64.b64decode(_text(item, "content_base64", required=True), validate=True)
        except PayloadError as error:
            raise PayloadError(f"{path}.{error.field}", error.problem) from error
        except (binascii.Error, ValueError) as error:
            raise PayloadError(f"{path}.content_base64", "is not valid base64") from error
        uploads.append(Upload(name=name, content_type=content_type, content=content))
    return tuple(uploads)


def email_parse(payload: Any) -> InboundEmail:
    """The provider's JSON as the service's InboundEmail; PayloadError names the field."""
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object")
    sender_name, sender = parseaddr(_text(payload, "from", required=True))
    if "@" not in sender:
        raise PayloadError("from", "has no email address")
    subject = _text(payload, "subject")
    # Some mail programs send HTML only: its words still reach the agent.
    text = _text(payload, "text").strip() or strip_tags(_text(payload, "html")).strip()
    # A subject-only email ("Where is order 1042?") says all it has to say there.
    text = text or subject.strip()
    return InboundEmail(
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        text=text,
        message_id=_text(payload, "message_id", required=True).strip(),
        in_reply_to=_text(payload, "in_reply_to").strip(),
        references=_references(payload),
        uploads=_uploads(payload),
    )


def _body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is larger than we take."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > BODY_MAX_BYTES:
        return None
    body = request.read(BODY_MAX_BYTES + 1)
    return None if len(body) > BODY_MAX_BYTES else body


@public_view
@csrf_exempt
@require_POST
def email_webhook(request: HttpRequest, merchant_slug: str) -> JsonResponse:
    merchant = Merchant.objects.filter(slug=merchant_slug).first()
    if merchant is None:
        return _error(404, "No such shop.")
    body = _body(request)
    if body is None:
        return _error(413, f"The body is larger than {BODY_MAX_BYTES} bytes.", "body")
    secret = support_settings_of(merchant=merchant).inbound_secret
    if not signature_valid(
        secret=secret, body=body, signature=request.headers.get(SIGNATURE_HEADER, "")
    ):
        return _error(
            401, "The signature does not match this shop's inbound secret.", SIGNATURE_HEADER
        )
    try:
        payload = json.loads(body)
    except ValueError:
        return _error(400, "The body is not JSON.", "body")
    try:
        email = email_parse(payload)
    except PayloadError as error:
        return _error(400, f"{error}.", error.field)
    try:
        feedback = email_receive(merchant=merchant, email=email)
    except ValidationError as error:
        fields = error.message_dict if hasattr(error, "error_dict") else {"body": error.messages}
        field, messages = next(iter(fields.items()))
        field = FIELDS.get(field, field)
        return _error(400, f"{field}: {' '.join(messages)}", field)
    return JsonResponse({"ticket": feedback.pk, "state": feedback.state})
