"""campaigns/ on the customer's rewards page: the offers she may use now, the button
that issues her own code of one, and the page a marketing message's unsubscribe link
opens."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.models import Promotion
from campaigns.selectors import offers_for
from campaigns.services.codes import code_issue, customer_eligible
from campaigns.services.tracking import message_from_token, unsubscribe_answer
from customers.portal import portal_path, portal_public_view, portal_view


def offers_panel(request: HttpRequest, issued: str = "") -> str:
    offers = offers_for(customer=request.portal_customer)
    if not offers:
        return ""
    return render_to_string(
        "campaigns/portal/_offers.html",
        {"offers": offers, "merchant": request.portal_merchant, "issued": issued},
        request=request,
        using="jinja2",
    )


@portal_view
@require_POST
def code_get(request: HttpRequest, pk: int) -> HttpResponse:
    """Her own code of a promotion she may use; pressed twice, the same code."""
    customer = request.portal_customer
    promotion = Promotion.objects.filter(merchant=request.portal_merchant, pk=pk).first()
    if promotion is None or not customer_eligible(promotion=promotion, customer=customer):
        raise Http404
    code = code_issue(promotion=promotion, customer=customer)
    if not request.headers.get("HX-Request"):
        messages.success(request, _("Your code: %(code)s") % {"code": code.code})
        return redirect(portal_path(request.portal_merchant) + "#offers")
    return HttpResponse(offers_panel(request, issued=code.code))


@csrf_exempt  # RFC 8058: her mail program posts the one click, with no cookie or token
@portal_public_view
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The link in every marketing message. Opening it asks (a scanner that opens links
    changes nothing); a POST unsubscribes, or with `every` keeps her on fewer emails."""
    message = message_from_token(merchant_id=request.portal_merchant.pk, token=token)
    if message is None:
        raise Http404
    done = ""
    if request.method == "POST":
        done = unsubscribe_answer(message=message, every=request.POST.get("every", ""))
    with translation.override(message.language or translation.get_language()):
        return render(request, "campaigns/portal/unsubscribe.html", {
            "merchant": request.portal_merchant, "done": done,
            "address": message.address,
        })  # fmt: skip
