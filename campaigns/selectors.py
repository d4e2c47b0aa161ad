"""What campaigns/ shows: the offers a customer may use right now (the rewards page)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils.timezone import now

from campaigns.models import LIVE_USE, Code, CodeUse, Promotion
from campaigns.services.codes import Facts, promotion_takes_in
from customers.models import Customer


@dataclass(frozen=True)
class Offer:
    promotion: Promotion
    # The code to show: the public one, or a unique one she holds unused; None means a
    # "get my code" button.
    code: str | None
    # Targeted at her (a tier, persona, segment, plan, list or just her), not everyone.
    exclusive: bool


def offers_for(*, customer: Customer) -> list[Offer]:
    """The running promotions this customer may use now and still has uses left of, with
    the code each is used with. A few statements, whatever the number of promotions."""
    at = now()
    running = list(
        Promotion.objects.filter(merchant_id=customer.merchant_id, is_active=True)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=at))
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .prefetch_related("tiers", "personas", "plans")
        .order_by("ends_at", "pk")
    )
    running = [
        p for p in running
        if (p.usage_limit is None or p.taken < p.usage_limit)
        and (p.budget is None or p.committed < p.budget)
    ]  # fmt: skip
    if not running:
        return []
    facts = Facts(customer)
    running = [p for p in running if promotion_takes_in(promotion=p, facts=facts)]
    if not running:
        return []
    used = dict(
        CodeUse.objects.filter(customer=customer, promotion__in=running, state__in=LIVE_USE)
        .values_list("promotion_id")
        .annotate(n=Count("id"))
    )
    running = [p for p in running if used.get(p.pk, 0) < p.per_customer_limit]
    public = {
        c.promotion_id: c.code
        for c in Code.objects.filter(
            promotion__in=[p for p in running if p.codes == Promotion.Codes.PUBLIC]
        ).order_by("pk")
    }
    taken = CodeUse.objects.filter(state__in=LIVE_USE, single_code__isnull=False)
    mine: dict[int, str] = {}
    for code in (
        Code.objects.filter(customer=customer, promotion__in=running)
        .exclude(pk__in=taken.values("single_code"))
        .order_by("-pk")
    ):
        mine[code.promotion_id] = code.code
    offers = []
    for promotion in running:
        if promotion.codes == Promotion.Codes.PUBLIC:
            if promotion.pk not in public:
                continue
            code = public[promotion.pk]
        else:
            code = mine.get(promotion.pk)
        offers.append(Offer(promotion, code, promotion.eligibility != "everyone"))
    return offers
