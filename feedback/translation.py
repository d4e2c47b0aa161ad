"""Canned replies, written per language and picked in the customer's (merchants/content.py)."""

from __future__ import annotations

from modeltranslation.translator import TranslationOptions, register

from feedback.models import CannedReply
from merchants.content import fallback_languages


@register(CannedReply)
class CannedReplyTexts(TranslationOptions):
    fields = ("title", "body")
    fallback_languages = fallback_languages
