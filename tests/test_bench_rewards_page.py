"""The rewards page's bare view in the bench (bench/urls.py) draws the very page the
product draws, byte for byte but for the CSRF token and the CSP nonce, from its own two
statements: a comparison of speeds says something only if the pages are the same."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils.timezone import now

from campaigns.services.codes import code_issue
from customers.models import Customer
from customers.services import CustomerData, order_ingest
from customers.services.portal import storefront_link_make
from feedback.models import Channel, Kind, State
from feedback.services.intake import feedback_submit
from feedback.services.tickets import staff_reply
from loyalty.models import MembershipPlan, PointsEntry, Program, Redemption, Referral
from loyalty.services.ledger import account_for, account_locked, entry_write
from loyalty.services.memberships import membership_start
from loyalty.services.rewards import reward_redeem
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, RewardFactory, TierFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = [pytest.mark.needs_postgres, pytest.mark.django_db, pytest.mark.urls("bench.urls")]


def _same(text: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": "|nonce=")[^"]+', r"\1…", text)


@pytest.fixture
def rana(merchant):
    merchant.name = 'Saffron <Tea> & "Co"'
    merchant.storefront_url = "https://shop.example/"
    merchant.save()
    program = ProgramFactory(merchant=merchant, point_value=Decimal("0.01"), pending_days=14)
    # Texts written in some languages only: each page reads its own or the default's.
    silver = TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100.00"),
                         multiplier=Decimal("1.25"), perks="Gift <b>wrap</b>\nand a card",
                         birthday_points=50, name_ar="الفضي", perks_ru="Подарочная упаковка",
                         name_fa="نقره‌ای")  # fmt: skip
    gold = TierFactory(merchant=merchant, name="Gold", threshold=Decimal("500.00"))
    person = CustomerData(external_id="rana", email="rana@example.test", first_name="Rana")
    order_ingest(merchant=merchant, data=order_data("A-100", customer=person, total="120.00"))
    order_ingest(merchant=merchant, data=order_data("A-101", customer=person, total="200.00"))
    customer = Customer.objects.get(merchant=merchant, external_id="rana")
    account = account_for(customer=customer)
    with transaction.atomic():
        entry_write(account=account_locked(account=account), kind=PointsEntry.Kind.EARN,
                    points=1000, key="welcome", note="Welcome <gift>",
                    expires_at=now() + timedelta(days=10))  # fmt: skip
    RewardFactory(merchant=merchant, name='<b>Tea & "cups"</b>', points_cost=1500,
                  name_ru="Чайные <чашки>", description_ar="أكواب شاي")  # fmt: skip
    RewardFactory(merchant=merchant, name="Gift card", points_cost=100, kind="points_for_amount",
                  max_units=20)  # fmt: skip
    RewardFactory(merchant=merchant, name="Gold only", points_cost=5).tiers.add(gold)
    once = RewardFactory(merchant=merchant, name="Once", points_cost=10, per_customer_limit=1)
    reward_redeem(account=account, reward=once, key="once")
    Redemption.objects.filter(reward=once).update(state="used")
    RewardFactory(merchant=merchant, name="Sold out", points_cost=50, stock=0)
    for n, first_name in enumerate(["", "Sam"]):
        friend = Customer.objects.create(merchant=merchant, external_id=f"f{n}",
                                         first_name=first_name)  # fmt: skip
        Referral.objects.create(merchant=merchant, referrer=customer, friend=friend)
    program.friend_reward = RewardFactory(merchant=merchant, name="10% off", is_active=False,
                                          name_fa="10٪ تخفیف")  # fmt: skip
    program.save()
    plan = MembershipPlan.objects.create(
        merchant=merchant, name="Tea Club", price=Decimal("9.00"), currency="USD",
        perks_en="Free shipping", perks_ar="شحن مجاني", name_ru="Чайный клуб",
        period=MembershipPlan.Period.MONTH, trial_days=14, recurring_points=200,
    )  # fmt: skip
    membership_start(customer=customer, plan=plan)
    ticket = feedback_submit(merchant=merchant, customer=customer, channel=Channel.PORTAL,
                             kind=Kind.QUESTION, subject="Late <parcel>",
                             body="Where is it?\nIt's late.")  # fmt: skip
    staff_reply(feedback=ticket, member=StaffMemberFactory(merchant=merchant, role="support"),
                body="On its way", then=State.PENDING)  # fmt: skip
    # Offers: a public one for everyone, a Silver one with her own code, and two she
    # doesn't see (Gold only; used up).
    public = PromotionFactory(merchant=merchant, name="Ship <free>", name_ar="شحن مجاني",
                              kind="free_shipping", codes="public", min_spend=Decimal("30"),
                              ends_at=now() + timedelta(days=9))  # fmt: skip
    CodeFactory(promotion=public, code="SHIPFREE", single_use=False)
    mine = PromotionFactory(merchant=merchant, name="Silver 15%", kind="percent",
                            value=Decimal("15.00"), eligibility="tiers",
                            description_ru="Только <серебро>")  # fmt: skip
    mine.tiers.add(silver)
    code_issue(promotion=mine, customer=customer)
    PromotionFactory(merchant=merchant, name="Gold gift", eligibility="tiers").tiers.add(gold)
    PromotionFactory(merchant=merchant, name="Gone", usage_limit=1, taken=1)
    PromotionFactory(merchant=merchant, name="Get one", kind="bonus_points", bonus_points=50)
    assert silver  # Rana's tier, from her orders
    return customer


@pytest.mark.parametrize("language", ["en", "ru", "ar", "fa"])
def test_the_bare_view_draws_the_same_page(client, merchant, rana, language,
                                           django_assert_num_queries):  # fmt: skip
    Customer.objects.filter(pk=rana.pk).update(language=language)
    assert client.get(storefront_link_make(customer=rana)).status_code == 302
    product = client.get(reverse("portal:home", args=[merchant.slug]))
    bare_path = f"/bench/bare/{merchant.pk}/rewards/"
    with django_assert_num_queries(3):
        bare = client.get(bare_path)
    assert (bare.status_code, product.status_code) == (200, 200)
    page = product.content.decode()
    club = {"ru": "Чайный клуб"}.get(language, "Tea Club")
    silver = {"ar": "الفضي", "fa": "نقره‌ای"}.get(language, "Silver")
    for shown in (club, silver, "history-entry", "regulars-code", "Sam", "On its way",
                  "tier-perks", "SHIPFREE", "Silver 15%", "/code/\""):  # fmt: skip
        assert shown in page
    assert _same(bare.content.decode()) == _same(page)
    assert bare["Content-Language"] == product["Content-Language"] == language


def test_the_bare_view_draws_the_same_page_for_a_shop_without_tiers_or_program(
    client, merchant, rana
):
    """The shop's other shapes: a program without tiers, counted by orders; then none."""
    bare_path = f"/bench/bare/{merchant.pk}/rewards/"
    assert client.get(storefront_link_make(customer=rana)).status_code == 302
    for change in (
        lambda: Program.objects.filter(merchant=merchant).update(tier_basis="orders"),
        lambda: Program.objects.filter(merchant=merchant).update(tier_basis="points",
                                                                 tier_window="calendar_year"),
        lambda: merchant.tiers.all().delete(),
        lambda: Program.objects.filter(merchant=merchant).update(is_active=False),
    ):  # fmt: skip
        change()
        from loyalty.selectors import catalog_forget

        catalog_forget(merchant_id=merchant.pk)
        product = client.get(reverse("portal:home", args=[merchant.slug])).content.decode()
        assert _same(client.get(bare_path).content.decode()) == _same(product)
