"""Staff pages of campaigns/: promotions (list, create and edit with a live count of who
may use it, the report), their code batches (made in the background, exported as CSV),
and the attempts log."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from campaigns import selectors
from campaigns.forms import AttemptFilter, BatchForm, PromotionForm
from campaigns.models import CodeBatch
from campaigns.services.batches import batch_create, batch_csv
from campaigns.services.promotions import customer_list_read, promotion_save
from campaigns.services.shops import shop_push_queue
from campaigns.tasks import codes_make_task
from merchants.access import client_ip, staff_view
from merchants.forms import form_add_service_errors
from merchants.roles import Perm

LEFT_OUT = ("customer_email", "public_code", "customer_list")


@staff_view(Perm.CAMPAIGNS_VIEW)
def promotion_list(request: HttpRequest) -> HttpResponse:
    return render(request, "campaigns/promotion_list.html",
                  {"promotions": selectors.promotion_list(merchant=request.merchant)})  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def promotion_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    merchant = request.merchant
    promotion = selectors.promotion_get(merchant=merchant, pk=pk) if pk is not None else None
    form = PromotionForm(request.POST or None, request.FILES or None, instance=promotion,
                         merchant=merchant)  # fmt: skip
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k not in LEFT_OUT}
        data["customer"] = form.cleaned_data["customer_email"]
        upload = form.cleaned_data["customer_list"]
        try:
            listed = customer_list_read(merchant=merchant, upload=upload) if upload else None
            saved = promotion_save(merchant=merchant, promotion=promotion, data=data,
                                   public_code=form.cleaned_data["public_code"], listed=listed,
                                   actor=request.user, ip_address=client_ip(request))  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Promotion saved."))
            return redirect("campaigns:promotion-detail", saved.pk)
    return render(request, "campaigns/promotion_form.html", {
        "form": form, "promotion": promotion,
        "eligible": _eligible(request, form, promotion),
    })  # fmt: skip


def _eligible(request: HttpRequest, form: PromotionForm, promotion) -> int | None:
    """Who the eligibility as shown on the form takes in today."""
    source = request.POST if request.method == "POST" else None
    if source is None and promotion is None:
        return selectors.eligible_count(merchant=request.merchant, eligibility="everyone")
    if source is None:
        return selectors.promotion_eligible_count(promotion=promotion)
    return _eligible_from(request, source, promotion)


def _eligible_from(request: HttpRequest, source, promotion) -> int:
    merchant = request.merchant
    probe = PromotionForm(source, instance=promotion, merchant=merchant)
    probe.is_valid()  # only the fields that parsed are read
    data = probe.cleaned_data
    return selectors.eligible_count(
        merchant=merchant, eligibility=data.get("eligibility") or "everyone",
        tiers=data.get("tiers") or (), personas=data.get("personas") or (),
        segments=data.get("segments") or (), plans=data.get("plans") or (),
        customer=data.get("customer_email"), promotion=promotion,
    )  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def eligible_count(request: HttpRequest) -> HttpResponse:
    """The form's live count: sent as the eligibility fields change (htmx)."""
    pk = request.GET.get("promotion")
    promotion = (
        selectors.promotion_get(merchant=request.merchant, pk=int(pk))
        if pk and pk.isdigit() else None
    )  # fmt: skip
    count = _eligible_from(request, request.GET, promotion)
    return render(request, "campaigns/partials/_eligible.html", {"eligible": count})


@staff_view(Perm.CAMPAIGNS_VIEW)
def promotion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    promotion = selectors.promotion_get(merchant=request.merchant, pk=pk)
    promotion.status = selectors.promotion_status(promotion)
    promotion.status_label = selectors.STATUS_LABELS[promotion.status]
    report = selectors.promotion_report(promotion=promotion)
    return render(
        request,
        "campaigns/promotion_detail.html",
        {
            "promotion": promotion,
            "report": report,
            "chart": _chart(report),
            "batches": selectors.batches_of(promotion=promotion),
            "public_code": promotion.code_set.filter(single_use=False).first(),
            "batch_form": BatchForm(),
            "shops": selectors.shop_states(promotion=promotion),
            "attempts": selectors.attempts_filtered(
                merchant=request.merchant, data={}, promotion=promotion
            )[:20],
        },
    )


def _chart(report: selectors.Report) -> dict:
    """The per-day chart's data, for json_script: days in the page's date format."""
    return {
        "labels": [date_format(day["day"], "SHORT_DATE_FORMAT") for day in report.days],
        "series": [
            {"label": _("Redemptions"), "values": [day["uses"] for day in report.days]},
            {"label": _("Discount given"), "axis": "money",
             "values": [float(day["discount"] or 0) for day in report.days]},
        ],
    }  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def batch_new(request: HttpRequest, pk: int) -> HttpResponse:
    promotion = selectors.promotion_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = BatchForm(request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():
                batch = batch_create(promotion=promotion, **form.cleaned_data)
                transaction.on_commit(lambda: codes_make_task.delay(batch.pk))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The codes are being made."))
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("campaigns:promotion-detail", promotion.pk)


@staff_view(Perm.CAMPAIGNS_MANAGE)
def shop_push_again(request: HttpRequest, pk: int) -> HttpResponse:
    """Sends the promotion to the shops again (after the merchant fixed what a shop refused)."""
    promotion = selectors.promotion_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    with transaction.atomic():
        shop_push_queue(promotion=promotion)
    messages.success(request, _("The promotion is being sent to your shop."))
    return redirect("campaigns:promotion-detail", promotion.pk)


@staff_view(Perm.CAMPAIGNS_VIEW)
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(CodeBatch, merchant=request.merchant, pk=pk)
    return render(request, "campaigns/partials/_batch.html", {"batch": batch})


@staff_view(Perm.CAMPAIGNS_MANAGE)
def batch_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    batch = get_object_or_404(CodeBatch, merchant=request.merchant, pk=pk)
    response = StreamingHttpResponse(batch_csv(batch=batch), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="codes-{batch.pk}.csv"'
    return response


@staff_view(Perm.CAMPAIGNS_VIEW)
def attempt_list(request: HttpRequest) -> HttpResponse:
    form = AttemptFilter(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    promotion = None
    if request.GET.get("promotion", "").isdigit():
        promotion = selectors.promotion_get(merchant=request.merchant,
                                            pk=int(request.GET["promotion"]))  # fmt: skip
    page = Paginator(selectors.attempts_filtered(merchant=request.merchant, data=data,
                                                 promotion=promotion), 50)  # fmt: skip
    return render(request, "campaigns/attempt_list.html", {
        "form": form, "page": page.get_page(request.GET.get("page")), "promotion": promotion,
    })  # fmt: skip
