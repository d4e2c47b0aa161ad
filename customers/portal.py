"""The rewards page's door: the customer's session, its language, and the shell that
composes the panels other apps register (merchants.panels).

A customer's session is a signed cookie holding the merchant, the customer and when it
began, on the merchant's own path (/r/<slug>/), so a customer of two shops holds two
sessions that never meet. Signing out ends every session of the customer's begun before
(Customer.portal_signed_out_at), which is read with the customer on each request anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.safestring import mark_safe
from django.utils.translation.trans_real import parse_accept_lang_header

from customers.mail import LANGUAGE_CODES
from customers.models import Customer
from merchants.content import content_activate, content_deactivate
from merchants.models import Merchant
from merchants.panels import portal_panels

COOKIE = "regulars_rewards"
SALT = "regulars.rewards-page"
SESSION_DAYS = 30


def portal_path(merchant: Merchant) -> str:
    return reverse("portal:home", kwargs={"merchant_slug": merchant.slug})


def portal_session_start(response: HttpResponse, *, customer: Customer) -> None:
    value = signing.dumps(
        {"m": customer.merchant_id, "c": customer.pk, "t": round(time.time(), 3)}, salt=SALT
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_DAYS * 24 * 60 * 60,
        path=portal_path(customer.merchant),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def portal_session_end(response: HttpResponse, *, merchant: Merchant) -> None:
    response.delete_cookie(COOKIE, path=portal_path(merchant), samesite="Lax")


SESSION_CUSTOMER_SQL = """SELECT * FROM customers_customer
WHERE id = %s AND merchant_id = %s AND erased_at IS NULL"""
SESSION_MERCHANT_SQL = "SELECT * FROM merchants_merchant WHERE id = %s AND slug = %s"


def _session_customer(request: HttpRequest, merchant_slug: str) -> Customer | None:
    raw = request.COOKIES.get(COOKIE)
    if not raw:
        return None
    try:
        session = signing.loads(raw, salt=SALT, max_age=SESSION_DAYS * 24 * 60 * 60)
        merchant_id, customer_id, began = int(session["m"]), int(session["c"]), session["t"]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    # Every rewards-page request reads these two rows: by hand (raw()), as building the
    # same join through the ORM measured costlier than running it.
    customer = next(
        iter(Customer.objects.raw(SESSION_CUSTOMER_SQL, [customer_id, merchant_id])), None
    )
    if customer is None:
        return None
    merchant = next(
        iter(Merchant.objects.raw(SESSION_MERCHANT_SQL, [merchant_id, merchant_slug])), None
    )
    if merchant is None:
        return None
    customer.merchant = merchant
    ended = customer.portal_signed_out_at
    if ended is not None and ended.timestamp() >= began:
        return None
    return customer


def browser_language(request: HttpRequest) -> str | None:
    """The language this browser chose on our pages, else the first it asks for that we
    speak."""
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen in LANGUAGE_CODES:
        return chosen
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return None


def _enter(request: HttpRequest, merchant: Merchant, customer: Customer | None) -> str:
    request.portal_merchant = merchant  # type: ignore[attr-defined]
    request.portal_customer = customer  # type: ignore[attr-defined]
    language = (
        (customer.language if customer and customer.language in LANGUAGE_CODES else None)
        or browser_language(request)
        or merchant.default_language
    )
    request.LANGUAGE_CODE = language
    timezone.activate(merchant.zone)
    content_activate(merchant)
    return language


def _in_language(request: HttpRequest, language: str, view: Callable, *args, **kwargs):
    """The view in the page's language, and the thread's own language back afterwards: a
    worker's next request (an API call, a staff page) must not answer in this customer's."""
    try:
        with translation.override(language):
            response = view(request, *args, **kwargs)
        # LocaleMiddleware names the language after the view returns, by then restored.
        response.headers.setdefault("Content-Language", language)
        return _private(response)
    finally:
        timezone.deactivate()
        content_deactivate()


def _private(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_store=True)
    patch_vary_headers(response, ["Cookie"])
    return response


def portal_view(view: Callable) -> Callable:
    """A rewards-page view for a signed-in customer of the merchant in the URL; anyone else
    is sent to sign in. The view finds `request.portal_merchant` and `portal_customer`."""

    @wraps(view)
    def wrapped(request: HttpRequest, merchant_slug: str, *args, **kwargs) -> HttpResponse:
        customer = _session_customer(request, merchant_slug)
        if customer is None:
            merchant = Merchant.objects.filter(slug=merchant_slug).first()
            if merchant is None:
                raise Http404
            target = reverse("portal:sign-in", kwargs={"merchant_slug": merchant.slug})
            if request.headers.get("HX-Request"):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return redirect(target)
        language = _enter(request, customer.merchant, customer)
        return _in_language(request, language, view, *args, **kwargs)

    wrapped.portal = True  # type: ignore[attr-defined]
    return wrapped


def portal_public_view(view: Callable) -> Callable:
    """A rewards-page view open to anyone (sign-in, links, an invitation): the merchant
    from the URL, and the customer when one is signed in."""

    @wraps(view)
    def wrapped(request: HttpRequest, merchant_slug: str, *args, **kwargs) -> HttpResponse:
        customer = _session_customer(request, merchant_slug)
        merchant = (
            customer.merchant if customer else Merchant.objects.filter(slug=merchant_slug).first()
        )
        if merchant is None:
            raise Http404
        language = _enter(request, merchant, customer)
        return _in_language(request, language, view, *args, **kwargs)

    wrapped.public = True  # type: ignore[attr-defined]
    wrapped.portal = True  # type: ignore[attr-defined]
    return wrapped


def portal_page(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    """The rewards page: the shell with every registered panel, rendered in this request.
    A form posted without JavaScript that fails comes back on it, with its errors."""
    panels = [panel.render(request) for panel in portal_panels()]
    context = {
        "merchant": request.portal_merchant,
        "customer": request.portal_customer,
        "panels": [mark_safe(html) for html in panels if html],
    }
    return render(request, "portal/home.html", context, status=status)
