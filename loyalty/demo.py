"""The demo merchant's loyalty program: set up before the demo orders arrive, so their
points are earned by the real services, then a few redemptions, memberships and referrals
on top. Seeding twice changes nothing."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils.timezone import now

from customers.models import Customer
from customers.services import CustomerData, OrderData, OrderLineData, orders_ingest_many
from loyalty.models import EarningRule, MembershipPlan, PointsAccount, Program, Reward, Tier
from loyalty.services.memberships import membership_payment_record
from loyalty.services.referrals import referral_record
from loyalty.services.rewards import reward_redeem
from loyalty.services.schedule import DAILY_JOBS, daily_job_run, pending_confirm_hourly
from merchants.models import Merchant

TIERS = (
    ("Bronze", "50", "1.00", "Welcome gift on your birthday.", 50),
    ("Silver", "250", "1.25", "Free standard shipping on every order.", 100),
    ("Gold", "600", "1.50", "Free express shipping and early access to new harvests.", 200),
    ("Platinum", "1200", "2.00", "A tasting box each season and a personal tea adviser.", 400),
)
REWARDS = (
    ("$5 off your order", Reward.Kind.FIXED_AMOUNT, 500, "5.00", ""),
    ("10% off your order", Reward.Kind.PERCENT, 900, "10.00", ""),
    ("Free shipping", Reward.Kind.FREE_SHIPPING, 300, "0.00", ""),
    ("A free tin of Sencha", Reward.Kind.FREE_PRODUCT, 1200, "0.00", "SEN-100"),
    ("Points towards your order (100 points = $1)", Reward.Kind.POINTS_FOR_AMOUNT, 100, "0.00",
     ""),
)  # fmt: skip
PLANS = (
    ("Tea Club", "9.00", MembershipPlan.Period.MONTH, 14, "1.50", 100,
     "A sample of a new tea each month."),
    ("Tea Club Annual", "90.00", MembershipPlan.Period.YEAR, 0, "2.00", 1500,
     "Two months free, and every sample of the year."),
)  # fmt: skip

# The same texts in the shop's other languages: (name, perks or description) by language.
TEXTS = {
    "Bronze": {"ar": ("البرونزي", "هدية ترحيب في عيد ميلادك."),
               "fa": ("برنزی", "هدیه خوش‌آمد در روز تولدتان."),
               "ru": ("Бронза", "Приветственный подарок на день рождения.")},
    "Silver": {"ar": ("الفضي", "شحن عادي مجاني لكل طلب."),
               "fa": ("نقره‌ای", "ارسال عادی رایگان برای هر سفارش."),
               "ru": ("Серебро", "Бесплатная обычная доставка каждого заказа.")},
    "Gold": {"ar": ("الذهبي", "شحن سريع مجاني ووصول مبكر إلى المحاصيل الجديدة."),
             "fa": ("طلایی", "ارسال سریع رایگان و دسترسی زودهنگام به برداشت‌های تازه."),
             "ru": ("Золото", "Бесплатная экспресс-доставка и ранний доступ к новому урожаю.")},
    "Platinum": {"ar": ("البلاتيني", "صندوق تذوق كل موسم ومستشار شاي شخصي."),
                 "fa": ("پلاتینی", "یک جعبه چشیدن در هر فصل و یک مشاور چای شخصی."),
                 "ru": ("Платина", "Дегустационный набор каждый сезон и личный чайный советник.")},
    "$5 off your order": {"ar": ("خصم 5 دولارات على طلبك", ""),
                          "fa": ("5 دلار تخفیف روی سفارش", ""),
                          "ru": ("Скидка 5 $ на заказ", "")},
    "10% off your order": {"ar": ("خصم 10% على طلبك", ""), "fa": ("10% تخفیف روی سفارش", ""),
                           "ru": ("Скидка 10% на заказ", "")},
    "Free shipping": {"ar": ("شحن مجاني", ""), "fa": ("ارسال رایگان", ""),
                      "ru": ("Бесплатная доставка", "")},
    "A free tin of Sencha": {"ar": ("علبة سينتشا مجانية", ""),
                             "fa": ("یک قوطی سنچا رایگان", ""),
                             "ru": ("Банка сенчи в подарок", "")},
    "Points towards your order (100 points = $1)": {
        "ar": ("نقاط تُخصم من طلبك (100 نقطة = 1 دولار)", ""),
        "fa": ("امتیاز برای پرداخت سفارش (100 امتیاز = 1 دلار)", ""),
        "ru": ("Баллы в счёт заказа (100 баллов = 1 $)", "")},
    "Tea Club": {"ar": ("نادي الشاي", "عينة من شاي جديد كل شهر."),
                 "fa": ("باشگاه چای", "هر ماه نمونه‌ای از یک چای تازه."),
                 "ru": ("Чайный клуб", "Образец нового чая каждый месяц.")},
    "Tea Club Annual": {"ar": ("نادي الشاي السنوي", "شهران مجانًا وكل عينات العام."),
                        "fa": ("باشگاه چای سالانه", "دو ماه رایگان و همه نمونه‌های سال."),
                        "ru": ("Чайный клуб на год", "Два месяца бесплатно и все образцы года.")},
}  # fmt: skip
TERMS = {
    "en": "Earn 10 points for each dollar once your order is 30 days old. Points expire 12 "
          "months after you earn them. Tiers follow what you spent in the last 12 months.",
    "ar": "اكسب 10 نقاط عن كل دولار بعد مرور 30 يومًا على طلبك. تنتهي صلاحية النقاط بعد 12 "
          "شهرًا من كسبها. يتبع المستوى ما أنفقته خلال آخر 12 شهرًا.",
    "fa": "به ازای هر دلار، 30 روز پس از سفارش 10 امتیاز بگیرید. امتیازها 12 ماه پس از کسب "
          "منقضی می‌شوند. سطح شما بر اساس خرید 12 ماه اخیر است.",
    "ru": "10 баллов за каждый доллар через 30 дней после заказа. Баллы сгорают через 12 "
          "месяцев после начисления. Уровень зависит от покупок за последние 12 месяцев.",
}  # fmt: skip


def _in_every_language(row, english: str, second: str) -> None:
    """The row's name (and its perks or description) written in the other languages."""
    for code, (name, text) in TEXTS[english].items():
        setattr(row, f"name_{code}", name)
        if text:
            setattr(row, f"{second}_{code}", text)
    row.save()


def _demo_merchant() -> Merchant | None:
    return Merchant.objects.filter(slug="demo-store").first()


def demo_program_seed() -> list[str]:
    """Before the demo orders: the program, its tiers, rules, rewards and plans."""
    merchant = _demo_merchant()
    if merchant is None or Program.objects.filter(merchant=merchant).exists():
        return []
    tiers = [
        Tier.objects.create(merchant=merchant, name=name, threshold=Decimal(threshold),
                            multiplier=Decimal(multiplier), perks=perks, birthday_points=birthday)
        for name, threshold, multiplier, perks, birthday in TIERS
    ]  # fmt: skip
    for tier in tiers:
        _in_every_language(tier, tier.name_en, "perks")
    rewards = []
    for name, kind, cost, value, sku in REWARDS:
        reward = Reward.objects.create(merchant=merchant, name=name, kind=kind, points_cost=cost,
                                       value=Decimal(value), product_sku=sku,
                                       max_units=50 if kind == Reward.Kind.POINTS_FOR_AMOUNT
                                       else None)  # fmt: skip
        _in_every_language(reward, name, "description")
        rewards.append(reward)
    rewards[3].tiers.set(tiers[2:])  # the free tin: Gold and Platinum only
    for name, price, period, trial, multiplier, points, perks in PLANS:
        plan = MembershipPlan.objects.create(
            merchant=merchant, name=name, price=Decimal(price), currency=merchant.base_currency,
            period=period, trial_days=trial, multiplier=Decimal(multiplier),
            recurring_points=points, perks=perks,
        )  # fmt: skip
        _in_every_language(plan, name, "perks")
    rules = (
        ("Welcome: first order", EarningRule.Kind.FIRST_ORDER, {"points": 100}),
        ("Teaware triple points", EarningRule.Kind.CATEGORY_MULTIPLIER,
         {"category": "teaware", "multiplier": Decimal("3")}),
        ("Double points weekend", EarningRule.Kind.CAMPAIGN_MULTIPLIER,
         {"multiplier": Decimal("2"), "starts_at": now() - timedelta(days=200),
          "ends_at": now() - timedelta(days=197)}),
        ("Birthday", EarningRule.Kind.EVENT, {"event": EarningRule.Event.BIRTHDAY,
                                              "points": 150}),
        ("Product review", EarningRule.Kind.EVENT, {"event": EarningRule.Event.REVIEW,
                                                    "points": 50, "limit_count": 3,
                                                    "limit_per": EarningRule.Per.MONTH}),
        ("Newsletter sign-up", EarningRule.Kind.EVENT, {"event": EarningRule.Event.NEWSLETTER,
                                                        "points": 100, "limit_count": 1,
                                                        "limit_per": EarningRule.Per.MONTH}),
    )  # fmt: skip
    for name, kind, values in rules:
        EarningRule.objects.create(merchant=merchant, name=name, kind=kind, **values)
    Program.objects.create(
        merchant=merchant, points_per_unit=Decimal("10"), pending_days=30,
        expiry_mode=Program.Expiry.AFTER_EARNING, expiry_months=12, reminder_days=14,
        point_value=Decimal("0.01"), excluded_skus=["GIFT-CARD"], tier_basis="spent",
        tier_window="rolling_year", referrer_points=500, friend_reward=rewards[0],
        **{f"terms_{code}": text for code, text in TERMS.items()},
    )  # fmt: skip
    return [f"loyalty program for {merchant.slug}: 4 tiers, 5 rewards, 2 plans, 6 rules"]


def demo_night(merchant: Merchant, at: datetime) -> None:
    """The demo store's night at the end of a month of its history, as the scheduler runs
    it: points past their return window become available, then the daily jobs (expiry and
    its reminders, tiers over the rolling year, memberships, birthdays), each claimed for
    that merchant-day."""
    pending_confirm_hourly(at=at)
    local_date = at.astimezone(merchant.zone).date().isoformat()
    for job in DAILY_JOBS:
        daily_job_run(job=job, merchant_id=merchant.pk, local_date=local_date)


def demo_activity_seed() -> list[str]:
    """After the demo orders: redemptions, memberships and referrals by the real services."""
    merchant = _demo_merchant()
    if merchant is None or not Program.objects.filter(merchant=merchant).exists():
        return []
    if PointsAccount.objects.filter(merchant=merchant, redemptions__isnull=False).exists():
        return []
    rng = random.Random(7)
    rewards = list(Reward.objects.filter(merchant=merchant).exclude(
        kind=Reward.Kind.FREE_PRODUCT))  # fmt: skip
    rich = list(PointsAccount.objects.filter(merchant=merchant, available__gte=1500)
                .select_related("customer").order_by("pk")[:60])  # fmt: skip
    redeemed = 0
    for account in rich:
        reward = rng.choice(rewards)
        units = 10 if reward.kind == Reward.Kind.POINTS_FOR_AMOUNT else None
        reward_redeem(account=account, reward=reward, key=f"demo-{account.pk}", units=units)
        redeemed += 1
    plans = list(MembershipPlan.objects.filter(merchant=merchant))
    customers = list(Customer.objects.filter(merchant=merchant, orders_count__gte=3)
                     .order_by("pk")[:40])  # fmt: skip
    for index, customer in enumerate(customers):
        plan = plans[index % 2]
        paid = now() - timedelta(days=rng.randint(5, 80))
        for period in range(3 if plan.period == MembershipPlan.Period.MONTH else 1):
            membership_payment_record(customer=customer, plan=plan,
                                      external_id=f"demo-pay-{customer.pk}-{period}",
                                      amount=plan.price, currency=plan.currency,
                                      paid_at=paid + timedelta(days=30 * period))  # fmt: skip
    referrers = list(PointsAccount.objects.filter(merchant=merchant).order_by("pk")[:12])
    for index, account in enumerate(referrers):
        friend = CustomerData(
            external_id=f"demo-friend-{index:02d}",
            email=f"friend{index}@demo-customer.test",
            first_name=rng.choice(["Lina", "Omid", "Vera", "Karim"]),
            last_name=rng.choice(["Haddad", "Rahimi", "Orlova", "Saleh"]),
        )
        referral_record(
            merchant=merchant,
            code=account.referral_code,
            friend=friend,
            ip_address="198.51.100.7" if index >= 8 else f"203.0.113.{index}",
        )
        if index < 6:
            orders_ingest_many(merchant=merchant, orders=[OrderData(
                source="api", external_id=f"demo-friend-order-{index:02d}",
                placed_at=now() - timedelta(days=rng.randint(1, 60)), total=Decimal("42.00"),
                subtotal=Decimal("42.00"), currency=merchant.base_currency, customer=friend,
                lines=(OrderLineData(sku="SEN-100", name="Sencha", category="tea", quantity=2,
                                     price=Decimal("21.00")),))])  # fmt: skip
    return [f"{redeemed} redemptions, {len(customers)} memberships and {len(referrers)} "
            f"referrals for {merchant.slug}"]  # fmt: skip
