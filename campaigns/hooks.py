"""The ESP's tracking webhooks, through django-anymail, under /hooks/anymail/<esp>/tracking/.
Anymail checks each ESP's signature or basic auth; a request that fails it gets 401 and
writes nothing. Each event it parses is recorded once (services.tracking)."""

from __future__ import annotations

from functools import wraps

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt


def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    from campaigns.services.tracking import tracking_record

    tracking_record(esp=esp_name, event=event)


def _answered_plainly(view):
    """A refused signature is 401 (Anymail's own answer is 400); an ESP this deployment
    isn't set up for (no signing key in ANYMAIL) is 404."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            return HttpResponse("signature or credentials refused", status=401,
                                content_type="text/plain")  # fmt: skip
        except ImproperlyConfigured:
            return HttpResponse("this mail provider is not set up here", status=404,
                                content_type="text/plain")  # fmt: skip

    wrapped.public = True  # type: ignore[attr-defined]  # authenticated by the ESP's signature
    return csrf_exempt(wrapped)


app_name = "anymail"
# Tracking only: mail to the shop's support address comes in through feedback/inbound.py.
urlpatterns = [
    URLPattern(p.pattern, _answered_plainly(p.callback), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
    if isinstance(p, URLPattern) and p.name.endswith("_tracking_webhook")
]
