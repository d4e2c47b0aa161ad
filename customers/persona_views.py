"""Staff pages for personas: the list with each persona's figures, the rule builder with
its live count, ordering by priority."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from customers import personas, selectors
from customers.forms import PersonaForm, RuleFormSet
from merchants.access import staff_view
from merchants.forms import form_add_service_errors
from merchants.roles import Perm

RULES_PREFIX = "rules"


@staff_view(Perm.CUSTOMERS_VIEW)
def persona_list(request: HttpRequest) -> HttpResponse:
    figures, counted_at = selectors.persona_figures(merchant=request.merchant)
    rows = [(p, figures.get(p.pk)) for p in selectors.persona_list(merchant=request.merchant)]
    return render(
        request,
        "customers/persona_list.html",
        {"rows": rows, "unassigned": figures.get(None), "counted_at": counted_at},
    )


def _rules_formset(request: HttpRequest, initial: list[dict] | None = None) -> RuleFormSet:
    if request.method == "POST":
        data = request.POST.copy()
        if "add_rule" in data:
            total = int(data.get(f"{RULES_PREFIX}-TOTAL_FORMS") or 0)
            data[f"{RULES_PREFIX}-TOTAL_FORMS"] = str(total + 1)
        return RuleFormSet(data, prefix=RULES_PREFIX)
    return RuleFormSet(initial=initial or [{}], prefix=RULES_PREFIX)


def _rules_of(formset: RuleFormSet) -> list[dict]:
    return [rule for form in formset.forms if (rule := form.rule()) is not None]


def _preview(request: HttpRequest, formset: RuleFormSet) -> dict:
    complete = (
        [f for f in formset.forms if f.has_changed() and not f.cleaned_data.get("DELETE")]
        if formset.is_bound
        else []
    )
    incomplete = any(not f.is_valid() for f in complete)
    try:
        count = personas.rules_preview_count(merchant=request.merchant, rules=_rules_of(formset))
    except ValidationError:
        count, incomplete = None, True
    return {"formset": formset, "count": count, "incomplete": incomplete}


@staff_view(Perm.PERSONAS_MANAGE)
def persona_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    persona = selectors.persona_get(merchant=request.merchant, pk=pk) if pk else None
    form = PersonaForm(request.POST or None, instance=persona)
    formset = _rules_formset(request, initial=persona.rules if persona else None)
    saving = request.method == "POST" and "add_rule" not in request.POST
    if saving and form.is_valid() and formset.is_valid():
        try:
            saved = personas.persona_save(
                merchant=request.merchant,
                persona=persona,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                offers=form.cleaned_data["offers"],
                rules=_rules_of(formset),
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Persona saved; customers were reassigned."))
            return redirect("customers:persona-detail", pk=saved.pk)
    context = {"form": form, "persona": persona, **_preview(request, formset)}
    return render(request, "customers/persona_form.html", context)


@staff_view(Perm.PERSONAS_MANAGE)
@require_POST
def persona_preview(request: HttpRequest) -> HttpResponse:
    """The live count; or, when a rule's field changed, the rows again (their comparisons
    and value inputs follow the field) with the count."""
    formset = _rules_formset(request)
    formset.is_valid()
    template = (
        "customers/partials/_persona_count.html"
        if request.GET.get("count_only")
        else "customers/partials/_persona_rules.html"
    )
    return render(request, template, _preview(request, formset))


@staff_view(Perm.CUSTOMERS_VIEW)
def persona_detail(request: HttpRequest, pk: int) -> HttpResponse:
    persona = selectors.persona_get(merchant=request.merchant, pk=pk)
    figures, counted_at = selectors.persona_figures(merchant=request.merchant)
    sample = list(
        persona.customers.filter(erased_at__isnull=True).order_by("-total_spent", "-id")[:10]
    )
    return render(
        request,
        "customers/persona_detail.html",
        {
            "persona": persona,
            "figures": figures.get(persona.pk),
            "counted_at": counted_at,
            "sample": sample,
            "fields": personas.RULE_FIELDS,
        },
    )


@staff_view(Perm.PERSONAS_MANAGE)
def persona_move(request: HttpRequest, pk: int) -> HttpResponse:
    persona = selectors.persona_get(merchant=request.merchant, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    personas.persona_move(
        persona=persona, direction="up" if request.POST.get("direction") == "up" else "down"
    )
    return redirect("customers:persona-list")


@staff_view(Perm.PERSONAS_MANAGE)
def persona_delete(request: HttpRequest, pk: int) -> HttpResponse:
    persona = selectors.persona_get(merchant=request.merchant, pk=pk)
    if request.method == "POST":
        personas.persona_delete(persona=persona)
        messages.success(request, _("Persona deleted; its customers were reassigned."))
        return redirect("customers:persona-list")
    return render(request, "customers/persona_confirm_delete.html", {"persona": persona})
