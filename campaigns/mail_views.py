"""Staff pages of campaigns/ for the shop's mail: the flows with their numbers, the
templates (written per language, previewed on a real customer, sent as a test), the
sending settings, the suppression list, and the messages on a customer's 360 page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from campaigns import selectors
from campaigns.forms import (
    FlowForm,
    PreviewForm,
    SendingSettingsForm,
    SuppressionForm,
    TemplateForm,
)
from campaigns.models import Flow, MessageTemplate
from campaigns.services.flows import flow_save
from campaigns.services.mail_admin import (
    sending_save,
    suppression_add,
    suppression_remove,
    template_save,
)
from campaigns.services.messages import (
    SKIP_REASONS,
    merge_field_labels,
    message_render,
    sending_settings,
)
from campaigns.services.sending import test_send
from customers import selectors as customer_selectors
from merchants.access import client_ip, staff_view
from merchants.forms import form_add_service_errors
from merchants.roles import Perm


@staff_view(Perm.CAMPAIGNS_VIEW)
def flow_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/flow_list.html",
                  {"rows": selectors.flow_rows(merchant=request.merchant),
                   "sending": sending_settings(merchant=request.merchant)})  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def flow_form(request: HttpRequest) -> HttpResponse:
    """The flow of one trigger (`?trigger=`), set up on first save."""
    merchant = request.merchant
    trigger = request.GET.get("trigger") or Flow.Trigger.WELCOME
    flow = selectors.flow_for(merchant=merchant, trigger=trigger)
    form = FlowForm(request.POST or None, instance=flow, merchant=merchant)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data, trigger=trigger)
        try:
            flow_save(merchant=merchant, flow=flow, data=data, actor=request.user,
                      ip_address=client_ip(request))  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Flow saved."))
            return redirect("campaigns:flow-list")
    label = dict(Flow.Trigger.choices)[trigger]
    no_templates = not selectors.template_list(merchant=merchant).exists()
    return render(request, "campaigns/flow_form.html",
                  {"form": form, "flow": flow, "label": label,
                   "no_templates": no_templates})  # fmt: skip


@staff_view(Perm.CAMPAIGNS_VIEW)
def template_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/messagetemplate_list.html",
                  {"templates": selectors.template_list(merchant=request.merchant)})  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def template_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    merchant = request.merchant
    template = selectors.template_get(merchant=merchant, pk=pk) if pk is not None else None
    form = TemplateForm(request.POST or None, instance=template, merchant=merchant)
    if request.method == "POST" and form.is_valid():
        try:
            saved = template_save(merchant=merchant, template=template, data=form.cleaned_data,
                                  actor=request.user, ip_address=client_ip(request))  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Template saved."))
            return redirect("campaigns:template-update", saved.pk)
    return render(request, "campaigns/messagetemplate_form.html", {
        "form": form, "template": template, "merge_fields": merge_field_labels(),
        "preview_form": PreviewForm(), **_preview(request, form, template),
    })  # fmt: skip


def _preview(request: HttpRequest, form: TemplateForm, template) -> dict:
    """The template as the chosen customer would get it, from the form's text as it
    stands (saved or not): the live preview beside the editor."""
    preview_form = PreviewForm(request.POST or request.GET or None)
    email = preview_form.cleaned_data["customer"] if preview_form.is_valid() else ""
    customer = selectors.preview_customer(merchant=request.merchant, email=email)
    if customer is None:
        return {"preview": None, "preview_customer": None}
    draft = template or MessageTemplate(merchant=request.merchant)
    if form.is_bound:
        kind = form.data.get("kind") or MessageTemplate.Kind.MARKETING
        draft = MessageTemplate(merchant=request.merchant, name="preview", kind=kind)
        for name in form.fields:
            if name.startswith(("subject_", "body_")):
                setattr(draft, name, form.data.get(name, ""))
    try:
        rendered = message_render(template=draft, customer=customer,
                                  data={"external_id": "1001", "points": 120},
                                  code="PREVIEW-CODE", link="#", unsubscribe_url="#")  # fmt: skip
    except Exception:  # a template that won't render yet: the form says why
        rendered = None
    return {"preview": rendered, "preview_customer": customer}


@staff_view(Perm.CAMPAIGNS_MANAGE)
def template_preview(request: HttpRequest) -> HttpResponse:
    """The preview alone, redrawn as the editor types (htmx)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    pk = request.POST.get("template_id", "")
    template = (
        selectors.template_get(merchant=request.merchant, pk=int(pk)) if pk.isdigit() else None
    )
    form = TemplateForm(request.POST, instance=template, merchant=request.merchant)
    return render(request, "campaigns/partials/_template_preview.html",
                  _preview(request, form, template))  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def template_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Sends the saved template, as the chosen customer would get it, to the signed-in
    staff member's own address."""
    template = selectors.template_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    preview_form = PreviewForm(request.POST)
    email = preview_form.cleaned_data["customer"] if preview_form.is_valid() else ""
    customer = selectors.preview_customer(merchant=request.merchant, email=email)
    if customer is None:
        messages.error(request, _("No customer with an email to preview on."))
    else:
        test_send(template=template, customer=customer, address=request.user.email)
        messages.success(request, _("Test sent to %(address)s.") % {"address": request.user.email})
    return redirect("campaigns:template-update", template.pk)


@staff_view(Perm.CAMPAIGNS_MANAGE)
def sending_form(request: HttpRequest) -> HttpResponse:
    merchant = request.merchant
    current = sending_settings(merchant=merchant)
    form = SendingSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            sending_save(merchant=merchant, data=form.cleaned_data, actor=request.user,
                         ip_address=client_ip(request))  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Sending settings saved."))
            return redirect("campaigns:sending-settings")
    return render(request, "campaigns/sending_form.html", {"form": form})


@staff_view(Perm.CAMPAIGNS_VIEW)
def suppression_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    rows = selectors.suppression_list(merchant=request.merchant, query=query)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "campaigns/suppression_list.html",
                  {"page": page, "q": query, "form": SuppressionForm()})  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def suppression_change(request: HttpRequest) -> HttpResponse:
    """Adds an address to the list, or (with `remove`) takes one off."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = SuppressionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a valid email address."))
        return redirect("campaigns:suppression-list")
    address, ip = form.cleaned_data["address"], client_ip(request)
    if "remove" in request.POST:
        suppression_remove(merchant=request.merchant, address=address, actor=request.user,
                           ip_address=ip)  # fmt: skip
        messages.success(request, _("Taken off the list."))
    else:
        suppression_add(merchant=request.merchant, address=address, actor=request.user,
                        ip_address=ip)  # fmt: skip
        messages.success(request, _("Added to the list."))
    return redirect("campaigns:suppression-list")


@staff_view(Perm.CAMPAIGNS_VIEW)
def customer_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The messages a customer was sent, or not and why, on her 360 page."""
    customer = customer_selectors.customer_get(merchant=request.merchant, pk=pk)
    if customer.erased_at is not None:
        raise Http404
    return render(request, "campaigns/partials/_customer_messages.html", {
        "customer": customer, "rows": selectors.customer_messages(customer=customer),
        "reasons": SKIP_REASONS,
    })  # fmt: skip
