"""Merchant content in four languages: what customers read of the program (rewards, tiers,
plans, terms) in their own language with the merchant's default as the fallback, the staff
forms that write the languages side by side, and the API answering in the customer's."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from customers.models import Customer
from customers.services import CustomerData, order_ingest
from customers.services.portal import storefront_link_make
from loyalty.models import MembershipPlan, Program, Tier
from loyalty.services.ledger import account_for
from merchants.api_keys import api_key_create
from merchants.content import missing_languages, resolution_order, text_sql
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, RewardFactory, TierFactory

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def shop(merchant):
    ProgramFactory(merchant=merchant, terms_en="Points last a year.",
                   terms_ar="تبقى النقاط سنة.")  # fmt: skip
    silver = TierFactory(merchant=merchant, threshold=Decimal("100.00"), name_en="Silver",
                         name_ar="الفضي", name_ru="Серебро", perks_en="Free gift wrapping",
                         perks_ar="تغليف هدايا مجاني")  # fmt: skip
    TierFactory(merchant=merchant, threshold=Decimal("900.00"), name_en="Gold", name_ar="الذهبي")
    RewardFactory(merchant=merchant, points_cost=50, name_en="$5 off your order",
                  name_ar="خصم 5 دولارات على طلبك", description_en="On any order")  # fmt: skip
    MembershipPlan.objects.create(merchant=merchant, price=Decimal("9.00"), currency="USD",
                                  period="month", name_en="Club", name_ar="النادي",
                                  description_ar="شحن مجاني كل شهر")  # fmt: skip
    return silver


def _customer(merchant, language: str) -> Customer:
    data = CustomerData(external_id="rana", email="rana@example.test", first_name="Rana")
    order_ingest(merchant=merchant, data=order_data("A-1", customer=data, total="150.00"))
    customer = Customer.objects.get(merchant=merchant, external_id="rana")
    customer.language = language
    customer.save(update_fields=["language"])
    return customer


def _page(client, customer) -> str:
    assert client.get(storefront_link_make(customer=customer)).status_code == 302
    return client.get(reverse("portal:home", args=[customer.merchant.slug]))


def test_an_arabic_customer_reads_the_program_in_arabic(client, merchant, shop):
    response = _page(client, _customer(merchant, "ar"))
    text = _text(response)
    for arabic in ("الفضي", "تغليف هدايا مجاني", "خصم 5 دولارات على طلبك", "النادي",
                   "شحن مجاني كل شهر", "تبقى النقاط سنة.", "الذهبي"):  # fmt: skip
        assert arabic in text
    for english in ("Silver", "Free gift wrapping", "$5 off your order", "Club", "Gold",
                    "Points last a year."):  # fmt: skip
        assert english not in text
    # The reward has no Arabic description: the merchant's default (English) one shows.
    assert "On any order" in text
    # The merchant's words inside an Arabic sentence are isolated from its direction.
    assert "<bdi>الفضي</bdi>" in response.content.decode()


def test_a_missing_language_falls_back_to_the_merchants_default_not_the_first_written(
    client, merchant, shop
):
    merchant.default_language = "ru"
    merchant.save()
    # Persian: no Persian names. Arabic comes before Russian in settings, but the shop
    # writes in Russian first: a Persian reader gets the Russian name.
    text = _text(_page(client, _customer(merchant, "fa")))
    assert "Серебро" in text
    assert "الفضي" not in text


def test_the_fallback_order_and_the_hand_written_sql_agree(merchant, shop, settings):
    from django.db import connection
    from django.utils import translation

    from merchants.content import content_override

    merchant.default_language = "ru"
    with translation.override("fa"), content_override(merchant):
        assert resolution_order() == ("fa", "ru", "en", "ar")
        assert Tier.objects.get(pk=shop.pk).name == "Серебро"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {text_sql('name')} FROM loyalty_tier WHERE id = %s",
                           [shop.pk])  # fmt: skip
            assert cursor.fetchone() == ("Серебро",)
    assert resolution_order("en") == ("en", "ar", "fa", "ru")  # no merchant: settings order


def test_staff_write_the_languages_side_by_side_and_see_what_is_missing(owner_client, merchant):
    client = owner_client
    merchant.default_language = "ar"
    merchant.save()
    ProgramFactory(merchant=merchant)
    form = client.get("/loyalty/tiers/new/").content.decode()
    inputs = re.findall(r'<input[^>]*name="(name_\w\w)"[^>]*>', form)
    assert inputs == ["name_ar", "name_en", "name_fa", "name_ru"]  # the default first
    first = re.search(r'<input[^>]*name="name_ar"[^>]*>', form).group(0)
    assert "required" in first
    assert 'lang="ar"' in first
    assert 'dir="auto"' in first

    # The default language is the one that must be written.
    response = client.post(
        "/loyalty/tiers/new/",
        {"name_en": "Gold", "threshold": "500", "multiplier": "1", "birthday_points": "0"},
    )
    assert "name_ar" in response.context["form"].errors
    assert not Tier.objects.exists()

    response = client.post("/loyalty/tiers/new/", {
        "name_ar": "الذهبي", "name_ru": "Золото", "threshold": "500", "multiplier": "1",
        "birthday_points": "0",
    })  # fmt: skip
    assert response.status_code == 302
    gold = Tier.objects.get(merchant=merchant)
    assert (gold.name_ar, gold.name_ru, gold.name_en, gold.name_fa) == (
        "الذهبي",
        "Золото",
        None,
        None,
    )
    listing = client.get("/loyalty/tiers/").content.decode()
    assert re.search(r'data-testid="languages-missing"[^>]*>Not in EN, FA</span>', listing)
    # The form says which languages are unwritten and what their readers get instead.
    edit = client.get(f"/loyalty/tiers/{gold.pk}/edit/").content.decode()
    assert re.findall(r'data-testid="missing-(\w+)"', edit) == ["name_en", "name_fa"]
    assert "readers in this language see the Arabic text" in edit
    assert 'placeholder="الذهبي"' in edit
    assert missing_languages(gold, ("name", "perks")) == ["en", "fa"]


def test_the_program_terms_are_written_per_language(owner_client, merchant):
    client = owner_client
    ProgramFactory(merchant=merchant)
    response = client.post("/loyalty/program/", {
        "is_active": "on", "points_per_unit": "1", "earn_base": "net",
        "rounding": "down", "pending_days": "0", "expiry_mode": "never", "expiry_months": "12",
        "reminder_days": "30", "refund_policy": "available_only", "point_value": "0.01",
        "tier_basis": "spent", "tier_window": "rolling_year", "tier_warning_days": "14",
        "referrer_points": "500",
        "support_adjust_limit": "500", "support_daily_limit": "2000",
        "terms_en": "Points never expire.", "terms_fa": "امتیازها منقضی نمی‌شوند.",
    })  # fmt: skip
    assert response.status_code == 302, response.context["form"].errors
    program = Program.objects.get(merchant=merchant)
    assert (program.terms_en, program.terms_fa) == ("Points never expire.",
                                                    "امتیازها منقضی نمی‌شوند.")  # fmt: skip


def test_the_api_answers_the_loyalty_status_in_the_customers_language(client, merchant, shop):
    customer = _customer(merchant, "ar")
    account = account_for(customer=customer)
    account.tier = shop
    account.save(update_fields=["tier"])
    _key, raw = api_key_create(merchant=merchant, name="Storefront", scopes=["read"])
    status = client.get("/api/v1/loyalty/customers/rana", HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = status.json()
    assert (body["language"], body["tier"], body["tier_perks"]) == (
        "ar",
        "الفضي",
        "تغليف هدايا مجاني",
    )
    customer.language = "ru"
    customer.save(update_fields=["language"])
    body = client.get("/api/v1/loyalty/customers/rana",
                      HTTP_AUTHORIZATION=f"Bearer {raw}").json()  # fmt: skip
    # Russian name written; the perks weren't: the shop's default language (English).
    assert (body["language"], body["tier"], body["tier_perks"]) == (
        "ru",
        "Серебро",
        "Free gift wrapping",
    )
    assert json.dumps(body)  # plain JSON, no markup
