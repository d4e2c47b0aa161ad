"""What campaigns/ shows: the offers a customer may use right now (the rewards page), the
staff pages' promotions, their status, reach, report and attempts, and the messages: flows
with their numbers, templates, the suppression list, a customer's mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, F, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    LIVE_USE,
    Code,
    CodeAttempt,
    CodeBatch,
    CodeUse,
    Flow,
    Message,
    MessageTemplate,
    Promotion,
    PromotionListEntry,
    ShopCode,
    ShopPush,
    Suppression,
)
from campaigns.services.codes import Facts, promotion_takes_in
from campaigns.services.shops import pushing_connections
from customers import metrics
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
    # Her codes are bound to her: only her own live uses can hold them (code_issue).
    taken = CodeUse.objects.filter(customer=customer, state__in=LIVE_USE,
                                   single_code__isnull=False)  # fmt: skip
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


# --- Messages -------------------------------------------------------------------------

SENT_STATES = ("sent", "delivered", "bounced", "complained")


@dataclass(frozen=True)
class MailFigures:
    """A group of messages as the flows page counts them; orders are those each message
    was the last one before, within the attribution window (each order once)."""

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    skipped: int = 0
    orders: int = 0
    revenue: Decimal = Decimal("0.00")

    @property
    def open_rate(self):
        return metrics.open_rate(delivered=self.delivered, opened=self.opened)

    @property
    def click_rate(self):
        return metrics.click_rate(delivered=self.delivered, clicked=self.clicked)

    @property
    def unsubscribe_rate(self):
        return metrics.unsubscribe_rate(delivered=self.delivered, unsubscribed=self.unsubscribed)


@dataclass(frozen=True)
class FlowRow:
    trigger: str
    label: str
    flow: Flow | None
    figures: MailFigures


def _credit_time(by: str):
    """When a message earned the credit for an order, by the merchant's rule: its click,
    its (reader's) open or click, or its delivery (its sending, where no delivery report
    came)."""
    if by == "clicked":
        return F("clicked_at")
    if by == "opened":
        return Coalesce("opened_at", "clicked_at")
    return Coalesce("delivered_at", "sent_at")


def attributed_orders(*, merchant: Merchant, group: str) -> dict:
    """Orders and revenue (net of refunds) per `group` (a field of Message: the flow, the
    campaign) of the message each order is credited to: the last one its customer clicked
    (or opened, or received, as the merchant chose) before it, delivered within the
    attribution window before it. Each order is credited once, across every flow and
    campaign. One grouped query."""
    from campaigns.services.messages import sending_settings

    sending = sending_settings(merchant=merchant)
    window = timedelta(days=sending.attribution_days)
    last = (
        Message.objects.filter(customer_id=OuterRef("customer_id"), state__in=SENT_STATES)
        .alias(credited_at=_credit_time(sending.attribution_by),
               delivered=Coalesce("delivered_at", "sent_at"))
        .filter(credited_at__lte=OuterRef("placed_at"),
                delivered__gte=OuterRef("placed_at") - window)
        .order_by("-credited_at", "-pk")
        .values(group)[:1]
    )  # fmt: skip
    first = Message.objects.filter(merchant=merchant, state__in=SENT_STATES).aggregate(
        first=Min("sent_at")
    )["first"]
    if first is None:
        return {}
    rows = (
        Order.objects.filter(merchant=merchant, placed_at__gte=first)
        .exclude(status=Order.Status.CANCELLED)
        .annotate(credited=Subquery(last))
        .filter(credited__isnull=False)
        .values("credited")
        .annotate(n=Count("id"), revenue=Sum(F("total") - F("refunded_amount")))
    )
    return {row["credited"]: (row["n"], row["revenue"] or Decimal("0.00")) for row in rows}


def flow_rows(*, merchant: Merchant) -> list[FlowRow]:
    """Every trigger, with its flow if the shop set one up and the flow's numbers."""
    flows = {f.trigger: f for f in Flow.objects.filter(merchant=merchant).select_related(
        "template", "offer")}  # fmt: skip
    counts = {
        row["flow_id"]: row
        for row in Message.objects.filter(merchant=merchant, flow__isnull=False)
        .values("flow_id")
        .annotate(
            sent=Count("id", filter=Q(state__in=SENT_STATES)),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
            unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
            skipped=Count("id", filter=Q(state=Message.State.SKIPPED)),
        )
    }
    orders = attributed_orders(merchant=merchant, group="flow_id")
    rows = []
    for trigger, label in Flow.Trigger.choices:
        flow = flows.get(trigger)
        figures = MailFigures()
        if flow is not None and flow.pk in counts:
            found = {k: v for k, v in counts[flow.pk].items() if k != "flow_id"}
            n, revenue = orders.get(flow.pk, (0, Decimal("0.00")))
            figures = MailFigures(**found, orders=n, revenue=revenue)
        rows.append(FlowRow(trigger, label, flow, figures))
    return rows


def flow_for(*, merchant: Merchant, trigger: str) -> Flow | None:
    if trigger not in Flow.Trigger.values:
        raise Http404
    return Flow.objects.filter(merchant=merchant, trigger=trigger).first()


def template_list(*, merchant: Merchant):
    return MessageTemplate.objects.filter(merchant=merchant).order_by("name")


def template_get(*, merchant: Merchant, pk: int) -> MessageTemplate:
    return get_object_or_404(MessageTemplate, merchant=merchant, pk=pk)


def suppression_list(*, merchant: Merchant, query: str = ""):
    rows = Suppression.objects.filter(merchant=merchant)
    if query:
        rows = rows.filter(address__icontains=query.strip().lower())
    return rows.order_by("-created_at", "-pk")


def customer_messages(*, customer: Customer, limit: int = 20) -> list[Message]:
    return list(
        Message.objects.filter(customer=customer)
        .select_related("template", "flow")
        .order_by("-created_at", "-pk")[:limit]
    )


def preview_customer(*, merchant: Merchant, email: str = "") -> Customer | None:
    customers = Customer.objects.filter(merchant=merchant, erased_at=None).exclude(email="")
    if email:
        return customers.filter(email__iexact=email.strip()).first()
    return customers.order_by("-created_at", "-pk").first()
