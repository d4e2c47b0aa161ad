"""What customers read of a promotion, written per language (merchants/content.py)."""

from __future__ import annotations

from modeltranslation.translator import TranslationOptions, register

from campaigns.models import MessageTemplate, Promotion
from merchants.content import fallback_languages


@register(Promotion)
class PromotionTexts(TranslationOptions):
    fallback_languages = fallback_languages
    fields = ("name", "description")


@register(MessageTemplate)
class TemplateTexts(TranslationOptions):
    fallback_languages = fallback_languages
    fields = ("subject", "body")
