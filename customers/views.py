"""Staff pages of customers/."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from customers import selectors
from customers.forms import ImportForm
from customers.imports import CUSTOMER_COLUMNS, ORDER_COLUMNS, import_job_create
from merchants.access import staff_view
from merchants.roles import Perm


@staff_view(Perm.CUSTOMERS_CHANGE)
def import_list(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = import_job_create(
            merchant=request.merchant,
            kind=form.cleaned_data["kind"],
            upload=form.cleaned_data["file"],
            actor=request.user,
        )
        messages.success(request, _("Import started."))
        return redirect("customers:import-detail", pk=job.pk)
    context = {
        "form": form,
        "jobs": selectors.import_job_list(merchant=request.merchant)[:20],
        "customer_columns": CUSTOMER_COLUMNS,
        "order_columns": ORDER_COLUMNS,
    }
    return render(request, "customers/importjob_list.html", context)


@staff_view(Perm.CUSTOMERS_CHANGE)
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.import_job_get(merchant=request.merchant, pk=pk)
    template = (
        "customers/partials/_import_progress.html"
        if request.htmx
        else "customers/importjob_detail.html"
    )
    return render(request, template, {"job": job, "errors": job.row_errors.all()[:20]})


class _Echo:
    def write(self, value: str) -> str:
        return value


@staff_view(Perm.CUSTOMERS_CHANGE)
def import_errors(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The rejected rows as CSV (row, column, reason), streamed."""
    job = selectors.import_job_get(merchant=request.merchant, pk=pk)
    writer = csv.writer(_Echo())
    rows = job.row_errors.values_list("row_number", "column", "reason").iterator(chunk_size=2000)
    lines = (writer.writerow(row) for row in rows)
    response = StreamingHttpResponse(
        (line for part in ([writer.writerow(["row", "column", "reason"])], lines) for line in part),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
