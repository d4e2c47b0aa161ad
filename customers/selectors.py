"""Reads of customers and orders, always scoped by merchant."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from django.core.cache import cache
from django.db.models import CharField, F, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf
from django.shortcuts import get_object_or_404
from django.utils.timezone import now

from customers.models import Customer, ImportJob, Order, OrderLine, Persona, WebhookDelivery
from merchants.content import resolution_order
from merchants.models import Merchant, StoreConnection, normalise_email


def customer_get_by_external_id(*, merchant: Merchant, external_id: str) -> Customer | None:
    return Customer.objects.filter(
        merchant=merchant, external_id=external_id, erased_at__isnull=True
    ).first()


def customer_get_by_email(*, merchant: Merchant, email: str) -> Customer | None:
    """The oldest customer with this address (normalised as stored), if any."""
    return (
        Customer.objects.filter(
            merchant=merchant, email=normalise_email(email), erased_at__isnull=True
        )
        .order_by("pk")
        .first()
    )


def deliveries_rejected(*, merchant: Merchant, connection_id: int, limit: int = 20):
    """The connection's latest deliveries that couldn't be stored, newest first, and how
    many there are in all. Another shop's connection is not found (404)."""
    get_object_or_404(StoreConnection, merchant=merchant, pk=connection_id)
    rejected = WebhookDelivery.objects.filter(
        merchant=merchant, connection_id=connection_id
    ).exclude(rejected_field="")
    return list(rejected.order_by("-received_at", "-pk")[:limit]), rejected.count()


def import_job_list(*, merchant: Merchant) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(merchant=merchant).select_related("created_by")


def import_job_get(*, merchant: Merchant, pk: int) -> ImportJob:
    return get_object_or_404(import_job_list(merchant=merchant), pk=pk)


# --- The customer list --------------------------------------------------------------------

PAGE_SIZE = 50
# What a row of the list shows, and what its cursor needs.
LIST_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "external_id",
    "orders_count",
    "total_spent",
    "average_order_value",
    "last_order_at",
    "segment",
    "marketing_consent",
    "persona__name",
)
# Sort name → (column, nullable). All sorts are descending except by name; each ends on id
# so every row has one place and the keyset cursor is exact.
SORTS = {
    "recent": ("id", False),
    "last_order": ("last_order_at", True),
    "spent": ("total_spent", False),
    "orders": ("orders_count", False),
    "name": ("first_name", False),
}


@dataclass(frozen=True)
class CustomerFilters:
    q: str = ""
    sort: str = "recent"
    min_orders: int | None = None
    max_orders: int | None = None
    last_order_from: date | None = None
    last_order_to: date | None = None
    consent: bool | None = None
    segment: str = ""
    persona_id: int | None = None


def _searched(customers: QuerySet[Customer], q: str) -> QuerySet[Customer]:
    """Exact where an index answers (email, external id); names by prefix; "@domain" (or
    "domain.tld" after an @) finds everyone at that domain."""
    q = q.strip()
    if not q:
        return customers
    if q.startswith("@"):
        # No index answers a suffix: this reads the shop's customers (about a second at a
        # million), which a search staff run now and then can afford, and an index on every
        # customer write could not.
        return customers.filter(email__endswith=q.lower())
    if "@" in q:
        return customers.filter(email__startswith=q.lower())
    words = q.split()
    by_name = Q(first_name__istartswith=words[0]) | Q(last_name__istartswith=words[0])
    if len(words) > 1:
        by_name = Q(first_name__istartswith=words[0], last_name__istartswith=" ".join(words[1:]))
    return customers.filter(Q(external_id=q) | by_name)


def customer_list(
    *, merchant: Merchant, filters: CustomerFilters, after: tuple | None = None
) -> list[Customer]:
    """One page of customers, PAGE_SIZE + 1 rows (the extra one says there is a next page),
    each with its points balance (`points`) and tier name (`tier_name`, in the active
    language), read through loyalty's reverse relation. `after` is the (sort value, id) of
    the last row of the previous page: a keyset, so page 1,000 costs what page 1 does."""
    customers = (
        _filtered(merchant, filters)
        .select_related("persona")
        .only(*LIST_COLUMNS)
        .annotate(
            points=F("points_account__available"),
            tier_name=Coalesce(
                *(NullIf(F(f"points_account__tier__name_{code}"), Value(""))
                  for code in resolution_order()),
                output_field=CharField(),
            ),
        )
    )  # fmt: skip
    column, nullable = SORTS.get(filters.sort, SORTS["recent"])
    if filters.sort == "name":
        customers = customers.order_by("first_name", "last_name", "id")
        if after is not None:
            first, last, pk = after
            customers = customers.filter(
                Q(first_name__gt=first)
                | Q(first_name=first, last_name__gt=last)
                | Q(first_name=first, last_name=last, id__gt=pk)
            )
    else:
        ordering = [f"-{column}"] if column == "id" else [f"-{column}", "-id"]
        if nullable:
            ordering = [F(column).desc(nulls_last=True), "-id"]
        customers = customers.order_by(*ordering)
        if after is not None:
            value, pk = after
            if column == "id":
                customers = customers.filter(id__lt=pk)
            elif value is None:
                customers = customers.filter(**{f"{column}__isnull": True, "id__lt": pk})
            else:
                keyset = Q(**{f"{column}__lt": value}) | Q(**{column: value, "id__lt": pk})
                if nullable:
                    keyset |= Q(**{f"{column}__isnull": True})
                customers = customers.filter(keyset)
    return list(customers[: PAGE_SIZE + 1])


# Counted exactly up to here; beyond it the list says "more than": a count of a million
# rows costs more than the page it heads.
COUNT_CAP = 10_000


def customer_count(*, merchant: Merchant, filters: CustomerFilters) -> int:
    """How many customers the filters find, at most COUNT_CAP + 1."""
    return _filtered(merchant, filters).order_by()[: COUNT_CAP + 1].count()


def _filtered(merchant: Merchant, filters: CustomerFilters):
    customers = Customer.objects.filter(merchant=merchant, erased_at__isnull=True)
    customers = _searched(customers, filters.q)
    if filters.min_orders is not None:
        customers = customers.filter(orders_count__gte=filters.min_orders)
    if filters.max_orders is not None:
        customers = customers.filter(orders_count__lte=filters.max_orders)
    if filters.last_order_from is not None:
        customers = customers.filter(last_order_at__date__gte=filters.last_order_from)
    if filters.last_order_to is not None:
        customers = customers.filter(last_order_at__date__lte=filters.last_order_to)
    if filters.consent is not None:
        customers = customers.filter(marketing_consent=filters.consent)
    if filters.segment:
        customers = customers.filter(segment=filters.segment)
    if filters.persona_id is not None:
        customers = customers.filter(persona_id=filters.persona_id)
    return customers


def customer_get(*, merchant: Merchant, pk: int) -> Customer:
    """A customer of this merchant; a foreign id is a 404."""
    return get_object_or_404(Customer.objects.filter(merchant=merchant), pk=pk)


def customer_orders(*, customer: Customer, limit: int = 20) -> list[Order]:
    return list(
        Order.objects.filter(customer=customer)
        .order_by("-placed_at", "-id")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("id")))[:limit]
    )


def customer_timeline(*, customer: Customer, limit: int = 50):
    return list(customer.activities.order_by("-occurred_at", "-id")[:limit])


def persona_list(*, merchant: Merchant) -> QuerySet[Persona]:
    return Persona.objects.filter(merchant=merchant).order_by("priority", "id")


def persona_get(*, merchant: Merchant, pk: int) -> Persona:
    return get_object_or_404(persona_list(merchant=merchant), pk=pk)


# Persona figures are counted again after every reassignment, and at least this often, since
# orders keep changing what the customers spent.
PERSONA_FIGURES_SECONDS = 60 * 60


def persona_figures(*, merchant: Merchant) -> tuple[dict, datetime]:
    """Each persona's figures (key None: customers without one) and when they were counted.
    Personas change only when they are reassigned, so the figures are counted once after
    each assignment (a grouped pass over every customer) and read from the cache after."""
    from customers.metrics import audience_figures

    key = persona_figures_key(merchant.pk)
    cached = cache.get(key)
    if cached is None:
        figures = audience_figures(
            Customer.objects.filter(merchant=merchant, erased_at__isnull=True), group_by="persona"
        )
        cached = (figures, now())
        cache.set(key, cached, timeout=PERSONA_FIGURES_SECONDS)
    return cached


def persona_figures_key(merchant_id: int) -> str:
    return f"customers:persona-figures:{merchant_id}"


def born_on(day: date) -> Q:
    """Customers whose birthday falls on this date: a Feb 29 birthday counts on Feb 28 in
    the other years."""
    born = Q(birth_date__month=day.month, birth_date__day=day.day)
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        born |= Q(birth_date__month=2, birth_date__day=29)
    return born
