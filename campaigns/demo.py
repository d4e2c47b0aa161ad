"""The demo shop's promotions: a Gold-only percent off with unique codes, an offer for the
"Busy professional" persona with unique codes, and a public free-shipping code, each used
by demo customers through the real services."""

from __future__ import annotations

from decimal import Decimal

from campaigns.models import Promotion
from campaigns.services.batches import batch_create, codes_make
from campaigns.services.codes import Cart, code_issue, code_redeem
from customers.models import Customer, Persona
from loyalty.models import Tier
from merchants.models import Merchant

TEXTS = {
    "gold": {"en": ("Gold week: 15% off", "For our Gold members, on everything."),
             "ar": ("أسبوع الذهبي: خصم 15%", "لأعضائنا في الفئة الذهبية، على كل شيء."),
             "fa": ("هفتهٔ طلایی: 15٪ تخفیف", "برای اعضای طلایی ما، روی همه‌چیز."),
             "ru": ("Золотая неделя: скидка 15%", "Для участников уровня Gold, на всё.")},
    "busy": {"en": ("10 off your next express order", "Because your time matters."),
             "ar": ("خصم 10 على طلبك السريع القادم", "لأن وقتك مهم."),
             "fa": ("10 تخفیف برای سفارش سریع بعدی", "چون وقت شما مهم است."),
             "ru": ("10 скидки на следующий экспресс-заказ", "Потому что ваше время важно.")},
    "ship": {"en": ("Free shipping over 40", "Type SHIPFREE at checkout."),
             "ar": ("شحن مجاني فوق 40", "اكتب SHIPFREE عند الدفع."),
             "fa": ("ارسال رایگان بالای 40", "در صفحهٔ پرداخت SHIPFREE را وارد کنید."),
             "ru": ("Бесплатная доставка от 40", "Введите SHIPFREE при оформлении.")},
}  # fmt: skip


def _texts(promotion: Promotion, key: str) -> None:
    for language, (name, description) in TEXTS[key].items():
        setattr(promotion, f"name_{language}", name)
        setattr(promotion, f"description_{language}", description)
    promotion.save()


def _redeemed_by(merchant: Merchant, customers, code_of, limit: int) -> int:
    """Each customer uses her code on her latest order (as the storefront would)."""
    used = 0
    for customer in customers[:limit]:
        order = customer.orders.order_by("-placed_at").first()
        if order is None:
            continue
        answer = code_redeem(
            merchant=merchant, code=code_of(customer), customer=customer,
            cart=Cart(subtotal=order.subtotal or order.total, shipping=order.shipping),
            order_external_id=order.external_id,
        )  # fmt: skip
        used += answer.accepted
    return used


def demo_promotions_seed() -> list[str]:
    merchant = Merchant.objects.filter(slug="demo-store").first()
    if merchant is None or Promotion.objects.filter(merchant=merchant).exists():
        return []
    gold = Tier.objects.filter(merchant=merchant, name="Gold").first()
    gold_week = Promotion.objects.create(
        merchant=merchant, name="Gold week", kind=Promotion.Kind.PERCENT, value=Decimal("15"),
        eligibility=Promotion.Eligibility.TIERS, codes=Promotion.Codes.UNIQUE,
        per_customer_limit=1, usage_limit=500,
    )  # fmt: skip
    _texts(gold_week, "gold")
    if gold:
        gold_week.tiers.set([gold])
    codes_make(batch_id=batch_create(promotion=gold_week, count=200, prefix="GW-").pk)
    golds = list(Customer.objects.filter(merchant=merchant, points_account__tier=gold)
                 .order_by("pk")[:10])  # fmt: skip
    issued = {c.pk: code_issue(promotion=gold_week, customer=c).code for c in golds}
    used = _redeemed_by(merchant, golds, lambda c: issued[c.pk], 6)

    busy = Promotion.objects.create(
        merchant=merchant, name="Busy professional offer", kind=Promotion.Kind.FIXED_AMOUNT,
        value=Decimal("10.00"), eligibility=Promotion.Eligibility.PERSONAS,
        codes=Promotion.Codes.UNIQUE, min_spend=Decimal("30.00"), budget=Decimal("500.00"),
    )  # fmt: skip
    _texts(busy, "busy")
    persona = Persona.objects.filter(merchant=merchant, name="Busy professional").first()
    members = []
    if persona:
        busy.personas.set([persona])
        members = list(Customer.objects.filter(merchant=merchant, persona=persona)
                       .order_by("pk")[:8])  # fmt: skip
    mine = {c.pk: code_issue(promotion=busy, customer=c).code for c in members}
    used += _redeemed_by(merchant, members, lambda c: mine[c.pk], 5)

    ship = Promotion.objects.create(
        merchant=merchant, name="Free shipping over 40", kind=Promotion.Kind.FREE_SHIPPING,
        eligibility=Promotion.Eligibility.EVERYONE, codes=Promotion.Codes.PUBLIC,
        min_spend=Decimal("40.00"), per_customer_limit=1, is_exclusive=False,
    )  # fmt: skip
    _texts(ship, "ship")
    ship.code_set.create(merchant=merchant, code="SHIPFREE", single_use=False)
    shoppers = list(Customer.objects.filter(merchant=merchant, orders_count__gte=2)
                    .order_by("-pk")[:8])  # fmt: skip
    used += _redeemed_by(merchant, shoppers, lambda c: "SHIPFREE", 8)
    return [f"3 promotions for {merchant.slug}, {used} codes redeemed"]
