"""Personas: rules over profile and behaviour, assigned by priority.

A rule is {"field": ..., "op": ..., "value": ...}; a persona's rules must all match. The
first persona by priority whose rules match is the customer's. The rules are one CASE
expression, written chunk by chunk only to the customers whose persona changes
(customers.refresh), so it costs the same statements per chunk for a hundred customers or
a million, and an order never waits on more than one chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Case, Count, Expression, Q, Value, When
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.models import Customer, Persona, Segment
from customers.refresh import changed_rows_update, chunks_write, customers_refresh
from customers.segments import renamed
from customers.selectors import persona_figures_key
from merchants.models import Merchant

NUMBER, CHOICE, TEXT = "number", "choice", "text"
OPS = {
    NUMBER: (
        ("gte", gettext_lazy("at least")),
        ("lte", gettext_lazy("at most")),
        ("eq", gettext_lazy("exactly")),
    ),
    CHOICE: (("eq", gettext_lazy("is")), ("neq", gettext_lazy("is not"))),
    TEXT: (("eq", gettext_lazy("is")), ("neq", gettext_lazy("is not"))),
}


@dataclass(frozen=True)
class RuleField:
    label: Any
    kind: str
    choices: tuple = ()


RULE_FIELDS: dict[str, RuleField] = {
    "age": RuleField(gettext_lazy("Age"), NUMBER),
    "gender": RuleField(gettext_lazy("Gender"), CHOICE, tuple(Customer.Gender.choices)),
    "city": RuleField(gettext_lazy("City"), TEXT),
    "channel": RuleField(gettext_lazy("Usual order channel"), TEXT),
    "aov": RuleField(gettext_lazy("Average order value"), NUMBER),
    "orders": RuleField(gettext_lazy("Orders"), NUMBER),
    "discount_share": RuleField(gettext_lazy("Orders with a discount (%)"), NUMBER),
    "express_share": RuleField(gettext_lazy("Orders with express shipping (%)"), NUMBER),
    "top_category": RuleField(gettext_lazy("Top category"), TEXT),
    "days_since_last_order": RuleField(gettext_lazy("Days since last order"), NUMBER),
    "segment": RuleField(gettext_lazy("RFM segment"), CHOICE, tuple(Segment.choices)),
}


def rules_validate(rules: list[dict]) -> list[dict]:
    """The rules, cleaned; a ValidationError names the first bad one as rules[i].part."""
    cleaned = []
    for index, rule in enumerate(rules):
        field = RULE_FIELDS.get(rule.get("field", ""))
        if field is None:
            raise ValidationError({f"rules[{index}].field": _("Choose a field.")})
        op = rule.get("op", "")
        if op not in dict(OPS[field.kind]):
            raise ValidationError({f"rules[{index}].op": _("Choose how to compare.")})
        value = str(rule.get("value", "")).strip()
        if field.kind == NUMBER:
            try:
                number = Decimal(value)
            except InvalidOperation:
                raise ValidationError({f"rules[{index}].value": _("Enter a number.")}) from None
            if number < 0:
                raise ValidationError({f"rules[{index}].value": _("Enter zero or more.")})
            value = str(number)
        elif field.kind == CHOICE and value not in dict(field.choices):
            raise ValidationError({f"rules[{index}].value": _("Choose one of the values.")})
        elif not value and field.kind == TEXT:
            raise ValidationError({f"rules[{index}].value": _("Enter a value.")})
        cleaned.append({"field": rule["field"], "op": op, "value": value})
    return cleaned


def _years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year without one
        return today.replace(year=today.year - years, day=28)


def _rule_q(rule: dict, at: datetime) -> Q:
    field, op, raw = rule["field"], rule["op"], rule["value"]
    if field == "age":
        # Age ≥ n means born on or before today n years ago; age ≤ n, born after n + 1.
        years = int(Decimal(raw))
        today = at.date()
        born_by = _years_ago(today, years)
        born_after = _years_ago(today, years + 1)
        q = {
            "gte": Q(birth_date__lte=born_by),
            "lte": Q(birth_date__gt=born_after),
            "eq": Q(birth_date__lte=born_by, birth_date__gt=born_after),
        }[op]
        return q
    if field == "days_since_last_order":
        cutoff = at - timedelta(days=int(Decimal(raw)))
        return {
            "gte": Q(last_order_at__lte=cutoff),
            "lte": Q(last_order_at__gte=cutoff),
            "eq": Q(last_order_at__lte=cutoff, last_order_at__gt=cutoff - timedelta(days=1)),
        }[op]
    column = {
        "gender": "gender",
        "city": "city",
        "channel": "main_channel",
        "aov": "average_order_value",
        "orders": "orders_count",
        "discount_share": "discount_order_share",
        "express_share": "express_order_share",
        "top_category": "top_category",
        "segment": "segment",
    }[field]
    value: Any = raw
    if field in ("discount_share", "express_share"):
        value = Decimal(raw) / 100
    elif field == "orders":
        value = int(Decimal(raw))
    elif field == "aov":
        value = Decimal(raw)
    if RULE_FIELDS[field].kind == TEXT:
        match = Q(**{f"{column}__iexact": value})
        return match if op == "eq" else ~match
    if op == "neq":
        return ~Q(**{column: value})
    return Q(**{column if op == "eq" else f"{column}__{op}": value})


def rules_q(rules: list[dict], at: datetime | None = None) -> Q:
    at = at or now()
    combined = Q()
    for rule in rules:
        combined &= _rule_q(rule, at)
    return combined


def rules_preview_count(*, merchant: Merchant, rules: list[dict]) -> int:
    """How many customers the rules match, before other personas take theirs."""
    return (
        Customer.objects.filter(merchant=merchant, erased_at__isnull=True)
        .filter(rules_q(rules_validate(rules)))
        .count()
    )


# --- Assignment -------------------------------------------------------------------------


def persona_case(
    personas: list[Persona], *, at: datetime, names: Mapping[str, str] | None = None
) -> Expression:
    """Each customer's persona: the first by priority whose rules all match (a persona
    without rules takes everyone left), none for an erased customer. `names` says where
    columns are read from when they are computed in the same statement."""
    names = names or {}
    if not personas:
        return Value(None, output_field=BigIntegerField())
    return Case(
        When(erased_at__isnull=False, then=Value(None)),
        *[
            When(renamed(rules_q(p.rules, at) or Q(pk__isnull=False), names), then=Value(p.pk))
            for p in personas
        ],
        default=Value(None),
        output_field=BigIntegerField(),
    )


def _personas_of(merchant: Merchant) -> list[Persona]:
    return list(Persona.objects.filter(merchant=merchant).order_by("priority", "id"))


def _assign(*, merchant: Merchant, personas: list[Persona], at: datetime) -> int:
    """Gives every customer of the merchant their persona among `personas`, chunk by chunk,
    writing only the customers whose persona changes; the rows written."""
    persona = persona_case(personas, at=at)
    written = chunks_write(
        merchant=merchant,
        write=lambda after, upto: changed_rows_update(
            Customer.objects.filter(merchant=merchant, pk__gt=after, pk__lte=upto),
            {"persona": persona},
        ),
    )
    # Count the figures again once this assignment is what everyone sees.
    transaction.on_commit(lambda: cache.delete(persona_figures_key(merchant.pk)))
    return written


def _sizes(*, merchant: Merchant, personas: list[Persona]) -> dict[int, int]:
    sizes = dict(
        Customer.objects.filter(merchant=merchant)
        .exclude(persona=None)
        .order_by()
        .values("persona")
        .annotate(n=Count("id"))
        .values_list("persona", "n")
    )
    return {persona.pk: sizes.get(persona.pk, 0) for persona in personas}


def personas_assign(*, merchant: Merchant, at: datetime | None = None) -> dict[int, int]:
    """Gives each customer the first matching persona by priority, from the stored
    segment and behaviour (after a persona is written, moved or deleted); returns how many
    each persona has."""
    personas = _personas_of(merchant)
    _assign(merchant=merchant, personas=personas, at=at or now())
    return _sizes(merchant=merchant, personas=personas)


def segments_and_personas_refresh(*, merchant: Merchant, at: datetime | None = None) -> dict:
    """The nightly (and after-import) refresh of spend, RFM scores and segments, behaviour
    and personas, chunk by chunk (customers.refresh); returns what the night's run records."""
    at = at or now()
    personas = _personas_of(merchant)
    refreshed = customers_refresh(
        merchant=merchant,
        at=at,
        persona=lambda names: persona_case(personas, at=at, names=names),
    )
    transaction.on_commit(lambda: cache.delete(persona_figures_key(merchant.pk)))
    sizes = _sizes(merchant=merchant, personas=personas)
    return {
        "scored": refreshed.scored,
        "written": refreshed.written,
        "personas": {str(k): v for k, v in sizes.items()},
    }


# --- Writing personas ----------------------------------------------------------------------


def persona_save(
    *,
    merchant: Merchant,
    name: str,
    description: str,
    offers: str,
    rules: list[dict],
    persona: Persona | None = None,
) -> Persona:
    """Creates or updates a persona, then reassigns the merchant's customers (chunk by
    chunk, once the persona is saved)."""
    cleaned = rules_validate(rules)
    if not name.strip():
        raise ValidationError({"name": _("This field is required.")})
    try:
        with transaction.atomic():
            if persona is None:
                last = Persona.objects.filter(merchant=merchant).order_by("-priority").first()
                persona = Persona(merchant=merchant, priority=(last.priority + 1) if last else 0)
            persona.name = name.strip()[:80]
            persona.description = description
            persona.offers = offers
            persona.rules = cleaned
            persona.updated_at = now()
            persona.save()
    except IntegrityError as error:
        raise ValidationError({"name": _("Another persona has that name.")}) from error
    personas_assign(merchant=merchant)
    return persona


def persona_move(*, persona: Persona, direction: str) -> None:
    """Swaps the persona with its neighbour above or below, and reassigns."""
    with transaction.atomic():
        personas = list(
            Persona.objects.select_for_update()
            .filter(merchant_id=persona.merchant_id)
            .order_by("priority", "id")
        )
        index = next(i for i, p in enumerate(personas) if p.pk == persona.pk)
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(personas):
            return
        personas[index], personas[other] = personas[other], personas[index]
        for priority, item in enumerate(personas):
            if item.priority != priority:
                Persona.objects.filter(pk=item.pk).update(priority=priority)
    personas_assign(merchant=persona.merchant)


def persona_delete(*, persona: Persona) -> None:
    """Moves the persona's customers to their next match first, chunk by chunk, so the
    delete itself has (next to) no customers left to clear."""
    merchant = persona.merchant
    others = [p for p in _personas_of(merchant) if p.pk != persona.pk]
    _assign(merchant=merchant, personas=others, at=now())
    persona.delete()


SEGMENTS_JOB = "customers.segments_and_personas"
NIGHTLY_LOCAL_HOUR = 2


def segments_due(*, at: datetime | None = None) -> list[tuple[int, str]]:
    """(merchant id, merchant-local date) of each merchant whose night has come (02:00 local
    or later). The run is claimed per date, so asking every hour starts each one once."""
    at = at or now()
    due = []
    for merchant in Merchant.objects.only("pk", "timezone"):
        local = at.astimezone(merchant.zone)
        if local.hour >= NIGHTLY_LOCAL_HOUR:
            due.append((merchant.pk, local.date().isoformat()))
    return due


def segments_refresh_nightly(*, merchant_id: int, local_date: str) -> bool:
    """Runs the night's segment and persona refresh for one merchant once; False when that
    night was already claimed."""
    from merchants.services import job_run_claim, job_run_finish

    merchant = Merchant.objects.get(pk=merchant_id)
    run = job_run_claim(job=SEGMENTS_JOB, merchant=merchant, period_key=local_date)
    if run is None:
        return False
    detail = segments_and_personas_refresh(merchant=merchant)
    job_run_finish(run=run, detail=detail)
    return True
