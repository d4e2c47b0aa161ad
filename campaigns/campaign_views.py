"""Staff pages of win-back campaigns and broadcasts: the list with lift at a glance,
create and edit with a live count of who would enter today and how many would be held
out, start, pause and resume, and the report with its CSV."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from campaigns import reports
from campaigns.forms import CampaignForm, CampaignMoveForm
from campaigns.models import Campaign
from campaigns.services.campaigns import audience_count, campaign_move, campaign_save
from campaigns.services.promotions import customer_list_read
from merchants.access import client_ip, staff_view
from merchants.forms import form_add_service_errors
from merchants.roles import Perm
from merchants.services import audit_record


@staff_view(Perm.CAMPAIGNS_VIEW)
def campaign_list(request: HttpRequest) -> HttpResponse:
    rows = reports.campaign_list(merchant=request.merchant)
    return render(request, "campaigns/campaign_list.html",
                  {"rows": [(c, r, _lift(r.window) if r else None) for c, r in rows]})  # fmt: skip


@staff_view(Perm.CAMPAIGNS_MANAGE)
def campaign_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    merchant = request.merchant
    campaign = reports.campaign_get(merchant=merchant, pk=pk) if pk is not None else None
    form = CampaignForm(request.POST or None, request.FILES or None, instance=campaign,
                        merchant=merchant)  # fmt: skip
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["customer_list"]
        try:
            listed = customer_list_read(merchant=merchant, upload=upload) if upload else None
            saved = campaign_save(merchant=merchant, campaign=campaign,
                                  data=form.campaign_data(), steps=form.steps(), listed=listed,
                                  actor=request.user, ip_address=client_ip(request))  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Campaign saved."))
            return redirect("campaigns:campaign-detail", saved.pk)
    return render(request, "campaigns/campaign_form.html", {
        "form": form, "campaign": campaign, "audience": _audience(request, campaign),
    })  # fmt: skip


def _audience(request: HttpRequest, campaign: Campaign | None) -> dict:
    """Who the campaign as the form shows it would enter today, and would hold out."""
    source = request.POST if request.method == "POST" else request.GET
    if not source and campaign is not None:
        count, out = audience_count(campaign=campaign)
        return {"count": count, "held_out": out, "percent": campaign.holdout_percent}
    probe_form = CampaignForm(source or None, instance=campaign, merchant=request.merchant)
    probe_form.is_valid()  # only the fields that parsed are read
    data = probe_form.cleaned_data if source else {}
    probe = Campaign(merchant=request.merchant, pk=campaign.pk if campaign else None,
                     kind=campaign.kind if campaign else Campaign.Kind.WINBACK)  # fmt: skip
    if campaign is None and data.get("kind"):
        probe.kind = data["kind"]
    for name in ("selection", "days_since", "gap_multiple", "segments", "min_spent",
                 "max_spent", "consent_only", "reentry_days", "holdout_percent"):  # fmt: skip
        if data.get(name) not in (None, ""):
            setattr(probe, name, data[name])
    filters = {name: list(data[name]) for name in ("personas", "tiers", "plans") if name in data}
    count, out = audience_count(campaign=probe, **filters)
    return {"count": count, "held_out": out, "percent": probe.holdout_percent}


@staff_view(Perm.CAMPAIGNS_MANAGE)
def audience(request: HttpRequest) -> HttpResponse:
    """The form's live count: sent as its fields change (htmx)."""
    pk = request.GET.get("campaign", "")
    campaign = reports.campaign_get(merchant=request.merchant, pk=int(pk)) if pk.isdigit() else None
    return render(request, "campaigns/partials/_audience.html",
                  {"audience": _audience(request, campaign)})  # fmt: skip


@staff_view(Perm.CAMPAIGNS_VIEW)
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = reports.campaign_get(merchant=request.merchant, pk=pk)
    report = reports.campaign_report(campaign=campaign)
    return render(request, "campaigns/campaign_detail.html", {
        "campaign": campaign, "report": report,
        "horizons": [(h, _lift(h)) for h in report.horizons],
        "steps": campaign.steps.select_related("template", "offer"),
        "chart_rows": _chart_rows(report.chart),
    })  # fmt: skip


def _chart_rows(chart: dict) -> list[tuple[int, list]]:
    """The chart's numbers as table rows, a day per row."""
    columns = [series["values"] for series in chart["series"]]
    return [(day, [values[i] for values in columns]) for i, day in enumerate(chart["labels"])]


def _lift(horizon: reports.Horizon) -> dict:
    """A horizon's comparison in the units the page shows: percentages and points."""
    conversion, revenue = horizon.conversion, horizon.revenue
    points = (
        {"diff": conversion.estimate * 100, "low": conversion.low * 100,
         "high": conversion.high * 100}
        if conversion else None
    )  # fmt: skip
    return {
        "verdict": horizon.verdict,
        "points": points,
        "revenue": revenue,
        "messaged_rate": horizon.messaged.rate * 100 if horizon.messaged.rate is not None else None,
        "held_rate": horizon.held_out.rate * 100 if horizon.held_out.rate is not None else None,
    }


@staff_view(Perm.CAMPAIGNS_MANAGE)
def campaign_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Start, pause or resume."""
    campaign = reports.campaign_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = CampaignMoveForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(_("Unknown change."))
        campaign_move(campaign=campaign, move=form.cleaned_data["move"], actor=request.user,
                      ip_address=client_ip(request))  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        done = {"start": _("Campaign started."), "pause": _("Campaign paused: its messages wait."),
                "resume": _("Campaign resumed.")}  # fmt: skip
        messages.success(request, done[form.cleaned_data["move"]])
    return redirect("campaigns:campaign-detail", campaign.pk)


@staff_view(Perm.CAMPAIGNS_VIEW)
def campaign_export(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = reports.campaign_get(merchant=request.merchant, pk=pk)
    body = reports.report_csv(reports.campaign_report(campaign=campaign))
    audit_record(merchant=request.merchant, actor=request.user, action="campaigns.report_export",
                 target=campaign, ip_address=client_ip(request))  # fmt: skip
    response = HttpResponse(body, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-report.csv"'
    return response
