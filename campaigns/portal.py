"""campaigns/ on the customer's rewards page: the offers she may use now, and the button
that issues her own code of one."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns.models import Promotion
from campaigns.selectors import offers_for
from campaigns.services.codes import code_issue, customer_eligible
from customers.portal import portal_path, portal_view


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
