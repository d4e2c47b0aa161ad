"""Personas: rules over profile and behaviour, assigned set-based by priority.

A rule is {"field": ..., "op": ..., "value": ...}; a persona's rules must all match. The
first persona by priority whose rules match is the customer's. Assignment is one UPDATE
per persona, so it costs the same for a hundred customers or a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    Count,
    DecimalField,
    FloatField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers import segments
from customers.models import Customer, Order, OrderLine, Persona, Segment
from customers.segments import segments_refresh
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
EXPRESS_WORDS = ("express", "next day", "next-day", "same day", "same-day", "overnight", "priority")


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


# --- Behaviour and assignment --------------------------------------------------------------


BEHAVIOUR_SQL = """
WITH counted AS (
  SELECT customer_id, count(*) AS n,
    count(*) FILTER (WHERE discount > 0 OR discount_codes <> '[]'::jsonb) AS discounted,
    count(*) FILTER (WHERE {express}) AS express
  FROM {order}
  WHERE merchant_id = %(merchant)s AND status <> %(cancelled)s
  GROUP BY customer_id
), channel AS (
  SELECT DISTINCT ON (customer_id) customer_id, channel
  FROM {order}
  WHERE merchant_id = %(merchant)s AND status <> %(cancelled)s AND channel <> ''
  GROUP BY customer_id, channel
  ORDER BY customer_id, count(*) DESC, channel
), category AS (
  SELECT DISTINCT ON (o.customer_id) o.customer_id, l.category
  FROM {line} l JOIN {order} o ON o.id = l.order_id
  WHERE l.merchant_id = %(merchant)s AND o.status <> %(cancelled)s AND l.category <> ''
  GROUP BY o.customer_id, l.category
  ORDER BY o.customer_id, sum(l.quantity) DESC, l.category
)
UPDATE {customer} c SET
  discount_order_share = x.discounted, express_order_share = x.express,
  main_channel = x.channel, top_category = x.category
FROM (
  SELECT c2.id,
    coalesce(round((counted.discounted::float8 / counted.n)::numeric, 4), 0) AS discounted,
    coalesce(round((counted.express::float8 / counted.n)::numeric, 4), 0) AS express,
    coalesce(channel.channel, '') AS channel, coalesce(category.category, '') AS category
  FROM {customer} c2
  LEFT JOIN counted ON counted.customer_id = c2.id
  LEFT JOIN channel ON channel.customer_id = c2.id
  LEFT JOIN category ON category.customer_id = c2.id
  WHERE c2.merchant_id = %(merchant)s
) x
WHERE c.id = x.id AND (c.discount_order_share, c.express_order_share, c.main_channel,
  c.top_category) IS DISTINCT FROM (x.discounted, x.express, x.channel, x.category)
"""


def _behaviour_refresh_postgresql(merchant: Merchant) -> None:
    express = " OR ".join(
        ["shipping_method ILIKE %(express_" + str(i) + ")s" for i in range(len(EXPRESS_WORDS))]
    )
    params = {f"express_{i}": f"%{word}%" for i, word in enumerate(EXPRESS_WORDS)}
    sql = BEHAVIOUR_SQL.format(
        express=express,
        order=Order._meta.db_table,
        line=OrderLine._meta.db_table,
        customer=Customer._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {"merchant": merchant.pk, "cancelled": Order.Status.CANCELLED, **params}
        )


def behaviour_refresh(*, merchant: Merchant) -> None:
    """Discount share, express share, usual channel and top category, from the orders. On
    PostgreSQL one UPDATE from grouped passes over the orders and lines (four correlated
    subqueries per customer took minutes at a million customers, see BENCHMARKS.md);
    elsewhere the portable form, which the tests hold to the same results."""
    if segments.FAST_PATH and connection.vendor == "postgresql":
        _behaviour_refresh_postgresql(merchant)
        return
    ratio = DecimalField(max_digits=5, decimal_places=4)
    counted = (
        Order.objects.filter(customer=OuterRef("pk"))
        .exclude(status=Order.Status.CANCELLED)
        .order_by()
    )
    discounted = Q(discount__gt=0) | ~Q(discount_codes=[])
    express = Q()
    for word in EXPRESS_WORDS:
        express |= Q(shipping_method__icontains=word)

    def share_of(condition: Q) -> Subquery:
        return Subquery(
            counted.values("customer")
            .annotate(
                # A ratio of two counts: float division on every database, rounded to
                # four places by the column.
                s=Cast(Count("id", filter=condition), FloatField()) / Count("id"),
            )
            .values("s"),
            output_field=ratio,
        )

    channel = (
        counted.exclude(channel="")
        .values("channel")
        .annotate(n=Count("id"))
        .order_by("-n", "channel")
        .values("channel")[:1]
    )
    category = (
        OrderLine.objects.filter(order__customer=OuterRef("pk"))
        .exclude(order__status=Order.Status.CANCELLED)
        .exclude(category="")
        .order_by()
        .values("category")
        .annotate(n=Sum("quantity"))
        .order_by("-n", "category")
        .values("category")[:1]
    )
    Customer.objects.filter(merchant=merchant).update(
        discount_order_share=Coalesce(share_of(discounted), Value(Decimal(0)), output_field=ratio),
        express_order_share=Coalesce(share_of(express), Value(Decimal(0)), output_field=ratio),
        main_channel=Coalesce(Subquery(channel), Value("")),
        top_category=Coalesce(Subquery(category), Value("")),
    )


@transaction.atomic
def personas_assign(*, merchant: Merchant, at: datetime | None = None) -> dict[int, int]:
    """Gives each customer the first matching persona by priority, in one UPDATE; returns
    how many each persona has."""
    at = at or now()
    personas = list(Persona.objects.filter(merchant=merchant).order_by("priority", "id"))
    customers = Customer.objects.filter(merchant=merchant)
    # Count the figures again once this assignment is what everyone sees.
    transaction.on_commit(lambda: cache.delete(persona_figures_key(merchant.pk)))
    if not personas:
        customers.exclude(persona=None).update(persona=None)
        return {}
    customers.update(
        persona=Case(
            When(erased_at__isnull=False, then=None),
            # A persona without rules takes everyone left.
            *[
                When(rules_q(persona.rules, at) or Q(pk__isnull=False), then=Value(persona.pk))
                for persona in personas
            ],
            default=None,
        )
    )
    sizes = dict(
        customers.exclude(persona=None)
        .order_by()
        .values("persona")
        .annotate(n=Count("id"))
        .values_list("persona", "n")
    )
    return {persona.pk: sizes.get(persona.pk, 0) for persona in personas}


def segments_and_personas_refresh(*, merchant: Merchant, at: datetime | None = None) -> dict:
    """The nightly (and after-import) refresh: RFM first, since persona rules may use it."""
    at = at or now()
    scored = segments_refresh(merchant=merchant, at=at)
    behaviour_refresh(merchant=merchant)
    assigned = personas_assign(merchant=merchant, at=at)
    return {"scored": scored, "personas": {str(k): v for k, v in assigned.items()}}


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
    """Creates or updates a persona and reassigns the merchant's customers at once."""
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
            personas_assign(merchant=merchant)
    except IntegrityError as error:
        raise ValidationError({"name": _("Another persona has that name.")}) from error
    return persona


@transaction.atomic
def persona_move(*, persona: Persona, direction: str) -> None:
    """Swaps the persona with its neighbour above or below, and reassigns."""
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


@transaction.atomic
def persona_delete(*, persona: Persona) -> None:
    merchant = persona.merchant
    persona.delete()
    personas_assign(merchant=merchant)


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
