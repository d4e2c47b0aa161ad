"""The rewards page's "Offers for you": what each customer may use now, and her own code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from campaigns.models import Code, Promotion
from campaigns.services.codes import Cart, code_redeem
from customers.services.portal import storefront_link_make
from loyalty.models import PointsAccount
from tests.campaigns.factories import CodeFactory, PromotionFactory
from tests.customers.factories import CustomerFactory
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.loyalty.test_portal import _text
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers(merchant):
    ProgramFactory(merchant=merchant)
    silver = TierFactory(merchant=merchant, name="Silver")
    return silver, TierFactory(merchant=merchant, name="Gold")


def _in_tier(merchant, tier, **fields):
    customer = CustomerFactory(merchant=merchant, **fields)
    PointsAccount.objects.create(merchant=merchant, customer=customer, tier=tier,
                                 referral_code=f"R{customer.pk:08d}")  # fmt: skip
    return customer


def _page(client, customer):
    client.cookies.clear()
    assert client.get(storefront_link_make(customer=customer)).status_code == 302
    return client.get(reverse("portal:home", args=[customer.merchant.slug]))


def test_a_gold_only_offer_shows_to_gold_marked_exclusive_and_not_to_silver(
    client, merchant, tiers
):
    silver, gold = tiers
    gold_only = PromotionFactory(merchant=merchant, name="Gold week", kind=Promotion.Kind.PERCENT,
                                 value=Decimal("15"), eligibility="tiers")  # fmt: skip
    gold_only.tiers.set([gold])
    everyone = PromotionFactory(merchant=merchant, name="Free shipping weekend",
                                kind=Promotion.Kind.FREE_SHIPPING, codes="public")  # fmt: skip
    CodeFactory(promotion=everyone, code="SHIPFREE", single_use=False)
    ended = PromotionFactory(merchant=merchant, name="Old sale", is_active=False, codes="public")
    CodeFactory(promotion=ended, code="OLD", single_use=False)

    gold_text = _text(_page(client, _in_tier(merchant, gold)))
    assert "Offers for you" in gold_text
    assert "Gold week Exclusive for you 15% off Get my code" in gold_text
    assert "Free shipping weekend Free shipping SHIPFREE" in gold_text
    assert "Old sale" not in gold_text

    silver_text = _text(_page(client, _in_tier(merchant, silver)))
    assert "Gold week" not in silver_text
    assert "Free shipping weekend" in silver_text


def test_get_my_code_issues_her_code_once_and_a_used_one_leaves_the_panel(client, merchant, tiers):
    _silver, gold = tiers
    promotion = PromotionFactory(merchant=merchant, name="Gold week", eligibility="tiers")
    promotion.tiers.set([gold])
    ada = _in_tier(merchant, gold)
    _page(client, ada)
    url = reverse("campaigns-portal:code-get", args=[merchant.slug, promotion.pk])

    first = client.post(url, HTTP_HX_REQUEST="true")
    second = client.post(url, HTTP_HX_REQUEST="true")

    code = Code.objects.get(promotion=promotion)
    assert (code.customer, code.single_use) == (ada, True)
    assert code.code in _text(first)
    assert code.code in _text(second)
    done = code_redeem(merchant=merchant, code=code.code, customer=ada,
                       cart=Cart(subtotal=Decimal("30.00")), order_external_id="o-1")  # fmt: skip
    assert done.accepted
    assert "Gold week" not in _text(client.get(reverse("portal:home", args=[merchant.slug])))


def test_a_customer_cant_get_a_code_she_isnt_eligible_for_or_another_shops(client, merchant, tiers):
    silver, gold = tiers
    gold_only = PromotionFactory(merchant=merchant, eligibility="tiers")
    gold_only.tiers.set([gold])
    foreign = PromotionFactory(merchant=MerchantFactory())
    _page(client, _in_tier(merchant, silver))
    for promotion in (gold_only, foreign):
        url = reverse("campaigns-portal:code-get", args=[merchant.slug, promotion.pk])
        assert client.post(url).status_code == 404
    assert not Code.objects.exists()


def test_the_offers_speak_arabic(client, merchant, tiers):
    _silver, gold = tiers
    promotion = PromotionFactory(merchant=merchant, name="Gold week", name_ar="أسبوع الذهب",
                                 eligibility="tiers")  # fmt: skip
    promotion.tiers.set([gold])
    ada = _in_tier(merchant, gold, language="ar")
    text = _text(_page(client, ada))
    with translation.override("ar"):
        assert translation.gettext("Offers for you") in text
        assert translation.gettext("Get my code") in text
    assert "أسبوع الذهب" in text
