"""What customers read of the program, written per language (merchants/content.py)."""

from __future__ import annotations

from modeltranslation.translator import TranslationOptions, register

from loyalty.models import MembershipPlan, Program, Reward, Tier
from merchants.content import fallback_languages


class _Texts(TranslationOptions):
    fallback_languages = fallback_languages


@register(Program)
class ProgramTexts(_Texts):
    fields = ("terms",)


@register(Tier)
class TierTexts(_Texts):
    fields = ("name", "perks")


@register(MembershipPlan)
class PlanTexts(_Texts):
    fields = ("name", "description", "perks")


@register(Reward)
class RewardTexts(_Texts):
    fields = ("name", "description")
