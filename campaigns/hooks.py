"""The ESP's tracking webhooks, through django-anymail, under /hooks/anymail/<esp>/tracking/.
Anymail checks each ESP's signature or basic auth; a request that fails it gets 401 and
writes nothing. Each event it parses is recorded once (services.tracking)."""

from __future__ import annotations

from functools import wraps

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from django.http import HttpResponse
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt


def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    from campaigns.services.tracking import tracking_record

    tracking_record(esp=esp_name, event=event)


def _unauthorised_as_401(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            return HttpResponse("signature or credentials refused", status=401,
                                content_type="text/plain")  # fmt: skip

    return csrf_exempt(wrapped)


app_name = "anymail"
urlpatterns = [
    URLPattern(p.pattern, _unauthorised_as_401(p.callback), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
    if isinstance(p, URLPattern)
]
