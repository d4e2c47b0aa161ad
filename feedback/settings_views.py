"""Managers' configuration of the inbox: departments, routing rules and their order, SLA
targets, canned replies, and business hours with the inbound email address."""

from __future__ import annotations

import copy

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
)
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from feedback import selectors
from feedback.forms import (
    CannedReplyForm,
    DepartmentForm,
    RoutingRuleForm,
    SlaForm,
    SupportSettingsForm,
)
from feedback.services import settings as config
from feedback.services.hours import support_settings_of
from merchants.access import client_ip, staff_view
from merchants.forms import form_add_service_errors
from merchants.roles import Perm


def _config_form(
    request: HttpRequest,
    *,
    form_class,
    instance,
    save,
    item: str,
    title: str,
    list_url: str,
) -> HttpResponse:
    # The form edits a copy; the service saves (and audits) from the row as it was.
    form = form_class(
        request.POST or None,
        instance=copy.copy(instance) if instance is not None else None,
        merchant=request.merchant,
    )
    if request.method == "POST" and form.is_valid():
        try:
            save(merchant=request.merchant, data=form.cleaned_data, actor=request.user,
                 ip_address=client_ip(request), **{item: instance})  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(list_url)
    return render(request, "feedback/settings_form.html", {
        "form": form, "item": instance, "title": title, "list_url": reverse(list_url),
        "placeholders": selectors.PLACEHOLDERS if item == "canned" else (),
    })  # fmt: skip


@staff_view(Perm.FEEDBACK_MANAGE)
def department_list(request: HttpRequest) -> HttpResponse:
    departments = list(selectors.department_list(merchant=request.merchant))
    return render(request, "feedback/department_list.html", {"departments": departments})


@staff_view(Perm.FEEDBACK_MANAGE)
def department_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    department = (
        selectors.department_get(merchant=request.merchant, pk=pk) if pk is not None else None
    )
    return _config_form(request, form_class=DepartmentForm, instance=department,
                        save=config.department_save, item="department",
                        title=_("Departments"), list_url="feedback:department-list")  # fmt: skip


@staff_view(Perm.FEEDBACK_MANAGE)
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = list(selectors.rule_list(merchant=request.merchant))
    return render(request, "feedback/rule_list.html", {"rules": rules})


@staff_view(Perm.FEEDBACK_MANAGE)
def rule_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = selectors.rule_get(merchant=request.merchant, pk=pk) if pk is not None else None
    return _config_form(request, form_class=RoutingRuleForm, instance=rule,
                        save=config.rule_save, item="rule", title=_("Routing rules"),
                        list_url="feedback:rule-list")  # fmt: skip


@staff_view(Perm.FEEDBACK_MANAGE)
def rule_move(request: HttpRequest, pk: int) -> HttpResponse:
    rule = selectors.rule_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        config.rule_move(rule=rule, direction=request.POST.get("direction", ""),
                         actor=request.user, ip_address=client_ip(request))  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("feedback:rule-list")


@staff_view(Perm.FEEDBACK_MANAGE)
def sla_list(request: HttpRequest) -> HttpResponse:
    policies = selectors.sla_policies_of(merchant=request.merchant)
    form = SlaForm(request.POST or None, policies=policies)
    if request.method == "POST" and form.is_valid():
        try:
            config.sla_policies_save(merchant=request.merchant, targets=form.targets(),
                                     actor=request.user, ip_address=client_ip(request))  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("SLA targets saved."))
            return redirect("feedback:sla-list")
    return render(request, "feedback/sla_form.html", {"form": form})


@staff_view(Perm.FEEDBACK_MANAGE)
def canned_list(request: HttpRequest) -> HttpResponse:
    replies = list(selectors.canned_list(merchant=request.merchant))
    return render(request, "feedback/canned_list.html", {
        "replies": replies, "placeholders": selectors.PLACEHOLDERS})  # fmt: skip


@staff_view(Perm.FEEDBACK_MANAGE)
def canned_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    canned = selectors.canned_reply_get(merchant=request.merchant, pk=pk) if pk else None
    return _config_form(request, form_class=CannedReplyForm, instance=canned,
                        save=config.canned_reply_save, item="canned",
                        title=_("Canned replies"), list_url="feedback:canned-list")  # fmt: skip


@staff_view(Perm.FEEDBACK_MANAGE)
def canned_delete(request: HttpRequest, pk: int) -> HttpResponse:
    canned = selectors.canned_reply_get(merchant=request.merchant, pk=pk)
    if request.method == "POST":
        config.canned_reply_delete(canned=canned, actor=request.user,
                                   ip_address=client_ip(request))  # fmt: skip
        messages.success(request, _("Canned reply removed."))
        return redirect("feedback:canned-list")
    return render(request, "feedback/canned_confirm_delete.html", {"canned": canned})


def _inbound_url(request: HttpRequest) -> str:
    """Where the mail provider posts inbound email for this merchant (feedback/inbound.py);
    empty on a build without that hook."""
    try:
        path = reverse("hook-email", kwargs={"merchant_slug": request.merchant.slug})
    except NoReverseMatch:
        return ""
    return request.build_absolute_uri(path)


@staff_view(Perm.FEEDBACK_MANAGE)
def support_settings(request: HttpRequest) -> HttpResponse:
    hours = support_settings_of(merchant=request.merchant)
    form = SupportSettingsForm(request.POST or None, instance=copy.copy(hours))
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in SupportSettingsForm.Meta.fields}
        try:
            config.support_settings_save(
                merchant=request.merchant, data=data, actor=request.user,
                ip_address=client_ip(request),
            )  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Business hours saved."))
            return redirect("feedback:support-settings")
    return render(request, "feedback/support_settings.html", {
        "form": form, "hours": hours, "inbound_url": _inbound_url(request)})  # fmt: skip
