"""Staff pages of loyalty/: the overview with its figures, program settings, the catalog
(tiers, earning rules, rewards, membership plans), the referral review queue, and the
loyalty panel of a customer's 360 page with manual adjustment and tier override."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers import selectors as customer_selectors
from loyalty import selectors
from loyalty.forms import (
    AdjustForm,
    EarningRuleForm,
    PlanForm,
    ProgramForm,
    ReferralReviewForm,
    RewardForm,
    TierForm,
    TierOverrideForm,
)
from loyalty.models import PointsAccount
from loyalty.services import catalog, referrals
from loyalty.services.ledger import account_for, points_adjust
from loyalty.services.memberships import membership_live
from loyalty.services.tiers import tier_override
from merchants.access import client_ip, staff_view
from merchants.forms import form_add_service_errors
from merchants.roles import Perm


@staff_view(Perm.LOYALTY_VIEW)
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "loyalty/overview.html", _figures_context(request))


@staff_view(Perm.LOYALTY_VIEW)
def figures_panel(request: HttpRequest) -> HttpResponse:
    """The loyalty figures as a dashboard panel."""
    return render(request, "loyalty/partials/_figures.html", _figures_context(request))


def _figures_context(request: HttpRequest) -> dict:
    return {
        "program": selectors.program_get(merchant=request.merchant),
        "figures": selectors.program_figures_recent(merchant=request.merchant),
    }


@staff_view(Perm.LOYALTY_MANAGE)
def program_settings(request: HttpRequest) -> HttpResponse:
    program = selectors.program_get(merchant=request.merchant)
    form = ProgramForm(request.POST or None, instance=program, merchant=request.merchant,
                       role=request.staff_member.role)  # fmt: skip
    if request.method == "POST" and form.is_valid():
        try:
            catalog.program_save(merchant=request.merchant, data=form.cleaned_data,
                                 actor=request.user, ip_address=client_ip(request))  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Program saved."))
            return redirect("loyalty:program-settings")
    return render(request, "loyalty/program_form.html", {"form": form, "program": program})


# --- The catalog: tiers, earning rules, rewards, membership plans ---------------------------


@dataclass(frozen=True)
class Catalog:
    name: str
    title: Any
    form: type
    save: Any
    list_of: Any
    get: Any
    item: str
    takes_merchant: bool = False


CATALOGS = {
    "tier": Catalog("tier", gettext_lazy("Tiers"), TierForm, catalog.tier_save,
                    selectors.tier_list, selectors.tier_get, "tier", True),
    "rule": Catalog("rule", gettext_lazy("Earning rules"), EarningRuleForm, catalog.rule_save,
                    selectors.rule_list, selectors.rule_get, "rule"),
    "reward": Catalog("reward", gettext_lazy("Rewards"), RewardForm, catalog.reward_save,
                      selectors.reward_list, selectors.reward_get, "reward", True),
    "plan": Catalog("plan", gettext_lazy("Membership plans"), PlanForm, catalog.plan_save,
                    selectors.plan_list, selectors.plan_get, "plan", True),
}  # fmt: skip


def _catalog_list(request: HttpRequest, name: str) -> HttpResponse:
    config = CATALOGS[name]
    return render(request, f"loyalty/{name}_list.html", {
        "items": list(config.list_of(merchant=request.merchant)),
        "title": config.title,
        "program": selectors.program_get(merchant=request.merchant),
    })  # fmt: skip


def _catalog_form(request: HttpRequest, name: str, pk: int | None = None) -> HttpResponse:
    config = CATALOGS[name]
    item = config.get(merchant=request.merchant, pk=pk) if pk is not None else None
    extra = {"merchant": request.merchant} if config.takes_merchant else {}
    form = config.form(request.POST or None, instance=item, **extra)
    if request.method == "POST" and form.is_valid():
        try:
            config.save(merchant=request.merchant, data=form.cleaned_data, actor=request.user,
                        ip_address=client_ip(request), **{config.item: item})  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(f"loyalty:{name}-list")
    return render(request, f"loyalty/{name}_form.html", {
        "form": form, "item": item, "title": config.title,
        "list_url": reverse(f"loyalty:{name}-list"),
    })  # fmt: skip


@staff_view(Perm.LOYALTY_VIEW)
def tier_list(request: HttpRequest) -> HttpResponse:
    return _catalog_list(request, "tier")


@staff_view(Perm.LOYALTY_MANAGE)
def tier_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    return _catalog_form(request, "tier", pk)


@staff_view(Perm.LOYALTY_MANAGE)
def tier_delete(request: HttpRequest, pk: int) -> HttpResponse:
    tier = selectors.tier_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        catalog.tier_delete(tier=tier, actor=request.user, ip_address=client_ip(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Tier removed."))
    return redirect("loyalty:tier-list")


@staff_view(Perm.LOYALTY_MANAGE)
def tiers_recalculate(request: HttpRequest) -> HttpResponse:
    """Runs the tier recalculation now, in the background, instead of waiting for the night."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    from loyalty.tasks import tiers_recalculate_task

    tiers_recalculate_task.delay_on_commit(request.merchant.pk)
    messages.info(request, _("Tiers are being recalculated: reload this page in a moment."))
    return redirect("loyalty:tier-list")


@staff_view(Perm.LOYALTY_VIEW)
def rule_list(request: HttpRequest) -> HttpResponse:
    return _catalog_list(request, "rule")


@staff_view(Perm.LOYALTY_MANAGE)
def rule_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    return _catalog_form(request, "rule", pk)


@staff_view(Perm.LOYALTY_VIEW)
def reward_list(request: HttpRequest) -> HttpResponse:
    return _catalog_list(request, "reward")


@staff_view(Perm.LOYALTY_MANAGE)
def reward_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    return _catalog_form(request, "reward", pk)


@staff_view(Perm.LOYALTY_VIEW)
def plan_list(request: HttpRequest) -> HttpResponse:
    return _catalog_list(request, "plan")


@staff_view(Perm.LOYALTY_MANAGE)
def plan_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    return _catalog_form(request, "plan", pk)


# --- Referral review --------------------------------------------------------------------------


@staff_view(Perm.LOYALTY_VIEW)
def referral_list(request: HttpRequest) -> HttpResponse:
    flagged = list(selectors.referrals_flagged(merchant=request.merchant)[:100])
    return render(request, "loyalty/referral_list.html", {"referrals": flagged})


@staff_view(Perm.LOYALTY_MANAGE)
def referral_review(request: HttpRequest, pk: int) -> HttpResponse:
    referral = selectors.referral_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = ReferralReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose approve or reject."))
        return redirect("loyalty:referral-list")
    try:
        referrals.referral_review(referral=referral, by=request.user,
                                  approve=form.cleaned_data["decision"] == "approve",
                                  note=form.cleaned_data["note"])  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Referral reviewed."))
    return redirect("loyalty:referral-list")


# --- A customer's loyalty panel on the 360 page ------------------------------------------------


def _panel(request: HttpRequest, customer, adjust_form=None, override_form=None) -> HttpResponse:
    # No account yet: shown as an empty one (a GET writes nothing).
    account = selectors.account_of(customer=customer) or PointsAccount(
        merchant=request.merchant, customer=customer
    )
    program = selectors.program_get(merchant=request.merchant)
    saved = account.pk is not None
    context = {
        "customer": customer,
        "account": account,
        "program": program,
        "value": account.available * program.point_value if program else None,
        "entries": selectors.entries_of(account=account) if saved else [],
        "tier_changes": selectors.tier_changes_of(account=account) if saved else [],
        "membership": membership_live(customer=customer),
        "redemptions": selectors.redemptions_of(account=account) if saved else [],
        "adjust_form": adjust_form or AdjustForm(initial={"key": uuid.uuid4().hex}),
        "override_form": override_form
        or TierOverrideForm(
            merchant=request.merchant,
            initial={"tier": account.tier_floor_id, "until": account.tier_floor_until},
        ),
    }
    return render(request, "loyalty/partials/_customer_panel.html", context)


def _customer(request: HttpRequest, pk: int):
    customer = customer_selectors.customer_get(merchant=request.merchant, pk=pk)
    if customer.erased_at is not None:
        raise Http404
    return customer


@staff_view(Perm.LOYALTY_VIEW)
def customer_panel(request: HttpRequest, pk: int) -> HttpResponse:
    return _panel(request, _customer(request, pk))


@staff_view(Perm.POINTS_ADJUST)
def customer_adjust(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            points_adjust(account=account_for(customer=customer), by=request.user,
                          points=form.cleaned_data["points"], reason=form.cleaned_data["reason"],
                          key=form.cleaned_data["key"], ip_address=client_ip(request),
                          role=request.staff_member.role)  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            return _panel(request, customer)
    return _panel(request, customer, adjust_form=form)


@staff_view(Perm.LOYALTY_MANAGE)
def customer_tier(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = TierOverrideForm(request.POST, merchant=request.merchant)
    if form.is_valid():
        try:
            tier_override(account=account_for(customer=customer), tier=form.cleaned_data["tier"],
                          until=form.cleaned_data["until"], by=request.user,
                          note=form.cleaned_data["note"])  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            return _panel(request, customer)
    return _panel(request, customer, override_form=form)
