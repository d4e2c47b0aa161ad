"""The feedback inbox's metrics page: a period in the merchant's time zone, and the figures
feedback.metrics defines for it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from feedback.metrics import inbox_metrics
from merchants.access import staff_view
from merchants.roles import Perm

DEFAULT_DAYS = 30
# A longer period fetches a duration per ticket for the medians; a year is what a page
# should ask for (an export can take longer periods).
MAX_DAYS = 366


class PeriodForm(forms.Form):
    """First and last day of the period, both included, in the merchant's time zone;
    either left empty means the last 30 days up to today."""

    start = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, today: date, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        end = data.get("end") or self.today
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise ValidationError({"end": _("The last day can't be before the first day.")})
        if (end - start).days + 1 > MAX_DAYS:
            raise ValidationError(
                {"end": _("Choose a period of at most %(days)s days.") % {"days": MAX_DAYS}}
            )
        data["start"], data["end"] = start, end
        return data


def local_day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment the merchant's `day` begins (DST-aware)."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def hours_minutes(value: timedelta | None) -> str:
    """A duration as hours and minutes, to the nearest minute: "26 h 5 min", "45 min"."""
    if value is None:
        return "—"
    total = round(value.total_seconds() / 60)
    sign = "-" if total < 0 else ""
    hours, minutes = divmod(abs(total), 60)
    if hours:
        return _("%(sign)s%(hours)s h %(minutes)s min") % {
            "sign": sign,
            "hours": formats.number_format(hours, use_l10n=True, force_grouping=True),
            "minutes": minutes,
        }
    return _("%(sign)s%(minutes)s min") % {"sign": sign, "minutes": minutes}


@staff_view(Perm.FEEDBACK_METRICS)
def inbox_metrics_page(request: HttpRequest) -> HttpResponse:
    zone = request.merchant.zone
    today = now().astimezone(zone).date()
    # Bound even without parameters: empty dates mean the default period.
    form = PeriodForm(request.GET, today=today)
    context: dict = {"form": form, "metrics": None}
    if form.is_valid():
        period = form.cleaned_data
        metrics = inbox_metrics(
            merchant=request.merchant,
            start=local_day_start(period["start"], zone),
            end=local_day_start(period["end"] + timedelta(days=1), zone),
        )
        context.update(
            metrics=metrics,
            first_day=period["start"],
            last_day=period["end"],
            times={
                "first_response_median": hours_minutes(metrics.first_response_time.median),
                "first_response_mean": hours_minutes(metrics.first_response_time.mean),
                "resolution_median": hours_minutes(metrics.resolution_time.median),
                "resolution_mean": hours_minutes(metrics.resolution_time.mean),
            },
            volume_tables=[
                (_("Channel"), metrics.volume.by_channel),
                (_("Category"), metrics.volume.by_category),
                (_("Department"), metrics.volume.by_department),
            ],
            agents=[
                (agent, hours_minutes(agent.median_first_response)) for agent in metrics.agents
            ],
        )
    return render(request, "feedback/metrics.html", context)
