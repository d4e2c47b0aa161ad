"""What campaigns/ shows: the offers a customer may use right now (the rewards page), and
the staff pages' promotions, their status, reach, report and attempts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.shortcuts import get_object_or_404
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    LIVE_USE,
    Code,
    CodeAttempt,
    CodeBatch,
    CodeUse,
    Promotion,
    PromotionListEntry,
    ShopCode,
    ShopPush,
)
from campaigns.services.codes import Facts, promotion_takes_in
from campaigns.services.shops import pushing_connections
from customers.models import Customer, Order
from loyalty.models import Membership
from loyalty.services.earning import LIVE_MEMBERSHIP
from merchants.models import Merchant, StoreConnection


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


# --- Staff pages ----------------------------------------------------------------------


def promotion_status(promotion: Promotion, at=None) -> str:
    """off, scheduled, running, ended or exhausted (its uses or its budget are all taken)."""
    at = at or now()
    if not promotion.is_active:
        return "off"
    if promotion.starts_at and at < promotion.starts_at:
        return "scheduled"
    if promotion.ends_at and at >= promotion.ends_at:
        return "ended"
    if (promotion.usage_limit is not None and promotion.taken >= promotion.usage_limit) or (
        promotion.budget is not None and promotion.committed >= promotion.budget
    ):
        return "exhausted"
    return "running"


STATUS_LABELS = {
    "off": _("Off"), "scheduled": _("Scheduled"), "running": _("Running"),
    "ended": _("Ended"), "exhausted": _("Exhausted"),
}  # fmt: skip


def promotion_list(*, merchant: Merchant) -> list[Promotion]:
    """The merchant's promotions, each with its status and redemptions, in two statements."""
    at = now()
    promotions = list(
        Promotion.objects.filter(merchant=merchant).annotate(
            redeemed=Count("uses", filter=Q(uses__state=CodeUse.State.REDEEMED))
        )
    )
    for promotion in promotions:
        promotion.status = promotion_status(promotion, at)
        promotion.status_label = STATUS_LABELS[promotion.status]
    return promotions


def promotion_get(*, merchant: Merchant, pk: int) -> Promotion:
    return get_object_or_404(Promotion, merchant=merchant, pk=pk)


def eligible_count(*, merchant: Merchant, eligibility: str, tiers=(), personas=(), segments=(),
                   plans=(), customer=None, promotion: Promotion | None = None) -> int:  # fmt: skip
    """How many of the merchant's customers this eligibility takes in today, in one count."""
    rule = Promotion.Eligibility
    customers = Customer.objects.filter(merchant=merchant)
    if eligibility == rule.EVERYONE:
        return customers.count()
    if eligibility == rule.TIERS:
        return customers.filter(points_account__tier__in=list(tiers)).count()
    if eligibility == rule.PERSONAS:
        return customers.filter(persona__in=list(personas)).count()
    if eligibility == rule.SEGMENTS:
        return customers.filter(segment__in=list(segments)).count()
    if eligibility == rule.MEMBERS:
        members = Membership.objects.filter(
            merchant=merchant, plan__in=list(plans), state__in=LIVE_MEMBERSHIP
        )
        return members.values("customer_id").distinct().count()
    if eligibility == rule.CUSTOMER:
        return 1 if customer is not None else 0
    if eligibility == rule.LIST and promotion is not None:
        return PromotionListEntry.objects.filter(promotion=promotion).count()
    return 0


def promotion_eligible_count(*, promotion: Promotion) -> int:
    """How many customers a saved promotion's eligibility takes in today."""
    return eligible_count(
        merchant=promotion.merchant, eligibility=promotion.eligibility,
        tiers=promotion.tiers.all(), personas=promotion.personas.all(),
        segments=promotion.segments, plans=promotion.plans.all(),
        customer=promotion.customer, promotion=promotion,
    )  # fmt: skip


@dataclass(frozen=True)
class Report:
    redeemed: int
    discount: Decimal
    revenue: Decimal
    orders: int
    budget_left: Decimal | None
    reserved: int
    days: list[dict]


def promotion_report(*, promotion: Promotion) -> Report:
    """What the promotion gave and brought: redemptions, the discount given, the revenue of
    the orders that used it (loyalty-driven revenue), the budget left, and per day."""
    redeemed = CodeUse.objects.filter(promotion=promotion, state=CodeUse.State.REDEEMED)
    totals = redeemed.aggregate(n=Count("id"), discount=Sum("discount"))
    orders = Order.objects.filter(code_uses__in=redeemed).distinct()
    revenue = orders.aggregate(total=Sum("total"), n=Count("id"))
    zone = promotion.merchant.zone
    days = list(
        redeemed.annotate(day=TruncDate("redeemed_at", tzinfo=zone))
        .values("day")
        .annotate(uses=Count("id"), discount=Sum("discount"))
        .order_by("day")
    )
    left = promotion.budget - promotion.committed if promotion.budget is not None else None
    return Report(
        redeemed=totals["n"],
        discount=totals["discount"] or Decimal("0.00"),
        revenue=revenue["total"] or Decimal("0.00"),
        orders=revenue["n"],
        budget_left=left,
        reserved=CodeUse.objects.filter(promotion=promotion, state=CodeUse.State.RESERVED).count(),
        days=days,
    )


def attempts_filtered(*, merchant: Merchant, data: dict, promotion: Promotion | None = None):
    """The attempts log, newest first, narrowed by the filters given."""
    attempts = CodeAttempt.objects.filter(merchant=merchant).select_related("customer", "promotion")
    if promotion is not None:
        attempts = attempts.filter(promotion=promotion)
    if data.get("code"):
        attempts = attempts.filter(code=data["code"].strip().upper())
    if data.get("action"):
        attempts = attempts.filter(action=data["action"])
    if data.get("result"):
        attempts = attempts.filter(accepted=data["result"] == "accepted")
    if data.get("reason"):
        attempts = attempts.filter(reason=data["reason"])
    return attempts.order_by("-created_at", "-pk")


def batches_of(*, promotion: Promotion) -> list[CodeBatch]:
    return list(CodeBatch.objects.filter(promotion=promotion).order_by("-created_at", "-pk"))


@dataclass
class ShopState:
    connection: StoreConnection
    sent: int
    refused: int
    waiting: int
    push: ShopPush | None


def shop_states(*, promotion: Promotion) -> list[ShopState]:
    """For the promotion's page: in each shop that takes codes, how many of its codes the
    shop holds, refused, or has yet to get, and the shop's last refusal."""
    connections = pushing_connections(merchant_id=promotion.merchant_id)
    if not connections:
        return []
    total = Code.objects.filter(promotion=promotion).count()
    pushes = {p.connection_id: p for p in ShopPush.objects.filter(promotion=promotion)}
    counts = {
        row["connection_id"]: row
        for row in ShopCode.objects.filter(code__promotion=promotion)
        .values("connection_id")
        .annotate(sent=Count("pk", filter=Q(error="")), refused=Count("pk", filter=~Q(error="")))
    }
    states = []
    for connection in connections:
        row = counts.get(connection.pk, {"sent": 0, "refused": 0})
        states.append(ShopState(connection, row["sent"], row["refused"],
                                total - row["sent"] - row["refused"],
                                pushes.get(connection.pk)))  # fmt: skip
    return states
