"""The rewards page's shell and its sign-in: /r/<merchant-slug>/."""

from __future__ import annotations

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from customers.portal import (
    portal_page,
    portal_path,
    portal_public_view,
    portal_session_end,
    portal_session_start,
    portal_view,
)
from customers.services.portal import (
    MAGIC_LINK_MINUTES,
    LinkRefused,
    TooManyLinks,
    customer_language_set,
    magic_link_check,
    magic_link_request,
    magic_link_use,
    portal_sign_out,
    storefront_link_use,
)
from merchants.access import client_ip
from merchants.forms import LanguageForm
from merchants.panels import portal_panel
from merchants.views import language_cookie_set

REFUSALS = {
    "unknown": gettext_lazy("This sign-in link isn't one we know. Ask for a new one below."),
    "used": gettext_lazy(
        "This sign-in link was already used. Each link works once: ask for a new one below."
    ),
    "expired": gettext_lazy(
        "This sign-in link has expired. Ask for a new one below: it comes by email in a minute."
    ),
    "stale": gettext_lazy(
        "This link from the shop is too old. Go back to the shop and open your rewards "
        "again, or ask for a link by email."
    ),
    "signature": gettext_lazy(
        "This link from the shop isn't valid. Go back to the shop and open your rewards "
        "again, or ask for a link by email."
    ),
}


class SignInForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("Your email"),
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
    )


@portal_view
def portal_home(request: HttpRequest) -> HttpResponse:
    return portal_page(request)


@portal_view
def portal_panel_view(request: HttpRequest, name: str) -> HttpResponse:
    panel = portal_panel(name)
    if panel is None:
        raise Http404
    return HttpResponse(panel.render(request))


def _sign_in_page(request: HttpRequest, form: SignInForm, status: int = 200, **context):
    return render(
        request,
        "customers/portal/sign_in.html",
        {"merchant": request.portal_merchant, "form": form, **context},
        status=status,
    )


@portal_public_view
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    merchant = request.portal_merchant
    if request.portal_customer is not None:
        return redirect(portal_path(merchant))
    if request.method != "POST":
        return _sign_in_page(request, SignInForm())
    form = SignInForm(request.POST)
    if not form.is_valid():
        return _sign_in_page(request, form, status=400)
    try:
        magic_link_request(
            merchant=merchant, email=form.cleaned_data["email"], ip_address=client_ip(request)
        )
    except TooManyLinks:
        return _sign_in_page(request, form, status=429, too_many=True)
    return _sign_in_page(
        request, SignInForm(), sent_to=form.cleaned_data["email"], minutes=MAGIC_LINK_MINUTES
    )


def _signed_in(customer) -> HttpResponse:
    response = redirect(portal_path(customer.merchant))
    portal_session_start(response, customer=customer)
    return response


def _refused(request: HttpRequest, error: LinkRefused) -> HttpResponse:
    status = 403 if error.reason == "signature" else 410
    return _sign_in_page(request, SignInForm(), status=status, refused=REFUSALS[error.reason])


@portal_public_view
@require_http_methods(["GET", "POST"])
def magic_link(request: HttpRequest, token: str) -> HttpResponse:
    """Opening the link shows a button; pressing it signs in. Mail scanners that open
    every link in a message would otherwise spend it before the customer does."""
    merchant = request.portal_merchant
    try:
        if request.method != "POST":
            magic_link_check(merchant=merchant, token=token)
            return render(request, "customers/portal/magic_link.html", {"merchant": merchant})
        return _signed_in(magic_link_use(merchant=merchant, token=token))
    except LinkRefused as error:
        return _refused(request, error)


@portal_public_view
def storefront_link(request: HttpRequest) -> HttpResponse:
    merchant = request.portal_merchant
    try:
        customer = storefront_link_use(
            merchant=merchant,
            external_id=request.GET.get("customer", ""),
            timestamp=request.GET.get("ts", ""),
            signature=request.GET.get("sig", ""),
            ip_address=client_ip(request),
        )
    except LinkRefused as error:
        return _refused(request, error)
    return _signed_in(customer)


@portal_view
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    portal_sign_out(customer=request.portal_customer)
    response = _sign_in_page(request, SignInForm(), signed_out=True)
    portal_session_end(response, merchant=request.portal_merchant)
    return response


@portal_public_view
@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """Keeps the choice on the customer's profile (their emails follow it) and in the
    browser (for the sign-in page)."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Choose one of the languages offered."))
    language = form.cleaned_data["language"]
    if request.portal_customer is not None:
        customer_language_set(customer=request.portal_customer, language=language)
        response = redirect(portal_path(request.portal_merchant))
    else:
        response = redirect("portal:sign-in", merchant_slug=request.portal_merchant.slug)
    language_cookie_set(response, language)
    return response
