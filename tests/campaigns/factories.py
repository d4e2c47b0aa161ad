from __future__ import annotations

from decimal import Decimal

import factory

from campaigns.models import Code, MessageTemplate, Promotion
from tests.merchants.factories import MerchantFactory


class PromotionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Promotion

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Promotion {n}")
    kind = Promotion.Kind.FIXED_AMOUNT
    value = Decimal("5.00")
    codes = Promotion.Codes.UNIQUE


class CodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Code

    promotion = factory.SubFactory(PromotionFactory)
    merchant = factory.LazyAttribute(lambda code: code.promotion.merchant)
    code = factory.Sequence(lambda n: f"CODE{n:06d}")
    single_use = True


class TemplateFactory(factory.django.DjangoModelFactory):
    """A template written in English and Persian."""

    class Meta:
        model = MessageTemplate

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    kind = MessageTemplate.Kind.MARKETING
    subject_en = "Thank you, {{ first_name }}"
    body_en = "Hello {{ first_name }},\n\nThank you for your order {{ order_number }}."
    subject_fa = "سپاس، {{ first_name }}"
    body_fa = "سلام {{ first_name }}،\n\nاز سفارش {{ order_number }} سپاسگزاریم."


def zone_in_its_day() -> str:
    """A whole-hour time zone where it is now between 10:00 and 20:00: a shop there runs
    its daily campaign pass now."""
    from zoneinfo import ZoneInfo

    from django.utils.timezone import now

    for offset in range(-12, 15):
        name = f"Etc/GMT{-offset:+d}" if offset else "UTC"
        if 10 <= now().astimezone(ZoneInfo(name)).hour < 20:
            return name
    raise AssertionError("some zone is always in its day")
