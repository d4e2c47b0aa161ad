"""Loyalty's panels on the customer's rewards page, and what the customer does there:
redeem a reward, and bring a friend with their referral link."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from customers.portal import portal_path, portal_public_view, portal_view
from customers.services import CustomerData
from customers.services.portal import attempt_allowed
from loyalty.models import PointsAccount, Referral
from loyalty.selectors import RewardsPage, program_get, reward_get, rewards_page
from loyalty.services.ledger import account_for
from loyalty.services.referrals import referral_record
from loyalty.services.rewards import reward_redeem_from_page
from merchants.access import client_ip


def _page(request: HttpRequest) -> RewardsPage:
    """One read of the customer's loyalty per request, shared by every panel."""
    if not hasattr(request, "_rewards_page"):
        request._rewards_page = rewards_page(customer=request.portal_customer)
    return request._rewards_page


def _panel(template: str, request: HttpRequest, **context) -> str:
    """A panel from its Jinja2 template (jinja2/loyalty/portal/). The rewards page is the
    page customers open most, and Jinja2 renders its fragments faster than the Django
    template language, with the same catalogues and number and date formats
    (config/jinja2.py)."""
    context = {
        "page": _page(request),
        "merchant": request.portal_merchant,
        "customer": request.portal_customer,
        "now": now(),
        **context,
    }
    return render_to_string(
        f"loyalty/portal/_{template}.html", context, request=request, using="jinja2"
    )


def points_panel(request: HttpRequest) -> str:
    return _panel("points", request)


def rewards_panel(request: HttpRequest, issued=None, error: str = "") -> str:
    if _page(request).program is None:
        return ""
    return _panel("rewards", request, issued=issued, error=error)


def membership_panel(request: HttpRequest) -> str:
    page = _page(request)
    if page.program is None or not (page.plans or page.membership):
        return ""
    return _panel("membership", request)


def referrals_panel(request: HttpRequest) -> str:
    page = _page(request)
    if page.program is None:
        return ""
    if page.account is None:
        # The referral code lives on the account, made on first use.
        page.account = account_for(customer=request.portal_customer)
    link = request.build_absolute_uri(
        reverse(
            "loyalty-portal:invite",
            kwargs={
                "merchant_slug": request.portal_merchant.slug,
                "code": page.account.referral_code,
            },
        )
    )
    return _panel("referrals", request, link=link)


def history_panel(request: HttpRequest) -> str:
    if _page(request).program is None:
        return ""
    return _panel("history", request)


class RedeemForm(forms.Form):
    state = forms.IntegerField(min_value=0)
    units = forms.IntegerField(min_value=1, required=False)


@portal_view
@require_POST
def redeem(request: HttpRequest, pk: int) -> HttpResponse:
    """Spends the points and shows the code; two presses of one button spend once."""
    customer = request.portal_customer
    reward = reward_get(merchant=request.portal_merchant, pk=pk)
    form = RedeemForm(request.POST)
    issued, error = None, ""
    if not form.is_valid():
        error = _("This page was out of date. Try again.")
    else:
        try:
            issued, _created = reward_redeem_from_page(
                account=account_for(customer=customer),
                reward=reward,
                page_state=form.cleaned_data["state"],
                units=form.cleaned_data["units"],
            )
        except ValidationError as failure:
            error = " ".join(failure.messages)
    if not request.headers.get("HX-Request"):
        # Without scripts: back to the page, which lists the new code first.
        if issued:
            messages.success(request, _("Your code: %(code)s") % {"code": issued.code})
        else:
            messages.error(request, error)
        return redirect(portal_path(request.portal_merchant) + "#rewards")
    request.__dict__.pop("_rewards_page", None)
    html = rewards_panel(request, issued=issued, error=error)
    # The balance and history changed too: their panels reload themselves.
    response = HttpResponse(html, status=200 if issued or not error else 422)
    response["HX-Trigger"] = "points-changed"
    return response


INVITES_PER_IP = 10  # an hour


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Your email"))
    first_name = forms.CharField(label=_("Your first name"), max_length=100, required=False)


@portal_public_view
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, code: str) -> HttpResponse:
    """A friend's landing page from a referral link: they leave their email and get their
    welcome reward's code (a suspicious referral waits for the shop's review)."""
    merchant = request.portal_merchant
    referrer_account = get_object_or_404(
        PointsAccount.objects.select_related("customer"),
        merchant=merchant,
        referral_code=code.upper(),
    )
    program = program_get(merchant=merchant)
    context = {
        "merchant": merchant,
        "referrer": referrer_account.customer,
        "welcome_reward": program.friend_reward if program else None,
        "form": InviteForm(),
    }
    if request.method == "POST":
        form = InviteForm(request.POST)
        context["form"] = form
        if not attempt_allowed(key=f"invite:{client_ip(request)}", limit=INVITES_PER_IP):
            # Each invitation makes a customer: a script must not fill the shop with them.
            form.add_error(None, _("Too many invitations from here. Try again in an hour."))
            return render(request, "loyalty/portal/invite.html", context, status=429)
        if form.is_valid():
            try:
                referral = referral_record(
                    merchant=merchant,
                    code=code,
                    friend=CustomerData(
                        email=form.cleaned_data["email"],
                        first_name=form.cleaned_data["first_name"],
                    ),
                    ip_address=client_ip(request),
                )
            except ValidationError as failure:
                for field_name, messages in failure.message_dict.items():
                    form.add_error("email" if field_name != "first_name" else field_name, messages)
            else:
                context["referral"] = referral
                context["flagged"] = referral.state == Referral.State.FLAGGED
    status = 400 if request.method == "POST" and context["form"].errors else 200
    return render(request, "loyalty/portal/invite.html", context, status=status)
