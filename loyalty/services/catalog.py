"""The program's configuration written by staff: settings, tiers, earning rules, rewards
and membership plans. Every change is audited with what it was and what it became."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _

from loyalty.models import EarningRule, MembershipPlan, PointsAccount, Program, Reward, Tier
from merchants.models import Merchant
from merchants.services import audit_record, audited_save


def program_save(*, merchant: Merchant, data: dict, actor, ip_address=None) -> Program:
    program = Program.objects.filter(merchant=merchant).first() or Program(merchant=merchant)
    for name in ("friend_reward",):
        reward = data.get(name)
        if reward is not None and reward.merchant_id != merchant.pk:
            raise ValidationError({name: _("No such reward.")})
    program.updated_at = now()
    return audited_save(
        merchant=merchant,
        instance=program,
        data=data,
        actor=actor,
        action="loyalty.program_changed",
        ip_address=ip_address,
    )


def tier_save(*, merchant: Merchant, tier: Tier | None, data: dict, actor, ip_address=None):
    return audited_save(
        merchant=merchant,
        instance=tier or Tier(),
        data=data,
        actor=actor,
        action="loyalty.tier_saved",
        ip_address=ip_address,
    )


@transaction.atomic
def tier_delete(*, tier: Tier, actor, ip_address=None) -> None:
    """A tier someone holds can't be removed: move them first (or lower the threshold)."""
    if PointsAccount.objects.filter(tier=tier).exists():
        raise ValidationError(_("Customers hold this tier: it can't be removed."))
    audit_record(action="loyalty.tier_deleted", merchant=tier.merchant, actor=actor,
                 target=tier, before={"name": tier.name, "threshold": str(tier.threshold)},
                 ip_address=ip_address)  # fmt: skip
    tier.delete()


def _rule_check(data: dict) -> None:
    kind = data.get("kind")
    errors = {}
    if kind == EarningRule.Kind.CATEGORY_MULTIPLIER and not (
        data.get("category") or data.get("sku")
    ):
        errors["category"] = _("Name a category or a SKU.")
    if kind in (EarningRule.Kind.CATEGORY_MULTIPLIER, EarningRule.Kind.CAMPAIGN_MULTIPLIER) and (
        data.get("multiplier") is None or data["multiplier"] <= 1
    ):
        errors["multiplier"] = _("A multiplier above 1.")
    if kind == EarningRule.Kind.PRODUCT_BONUS and not data.get("sku"):
        errors["sku"] = _("Name the SKU that earns the bonus.")
    if kind in (EarningRule.Kind.FIRST_ORDER, EarningRule.Kind.PRODUCT_BONUS,
                EarningRule.Kind.EVENT) and not data.get("points"):  # fmt: skip
        errors["points"] = _("How many points?")
    if kind == EarningRule.Kind.EVENT:
        if not data.get("event"):
            errors["event"] = _("Choose the event.")
        elif data["event"] == EarningRule.Event.CUSTOM and not data.get("event_key"):
            errors["event_key"] = _("Name the event key your shop sends.")
    if bool(data.get("limit_count")) != bool(data.get("limit_per")):
        errors["limit_per"] = _("A limit needs both a number and a period.")
    if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
        errors["ends_at"] = _("The end comes after the start.")
    if errors:
        raise ValidationError(errors)


def rule_save(*, merchant: Merchant, rule: EarningRule | None, data: dict, actor,
              ip_address=None) -> EarningRule:  # fmt: skip
    _rule_check(data)
    return audited_save(
        merchant=merchant,
        instance=rule or EarningRule(),
        data=data,
        actor=actor,
        action="loyalty.rule_saved",
        ip_address=ip_address,
    )


def reward_save(*, merchant: Merchant, reward: Reward | None, data: dict, actor,
                ip_address=None) -> Reward:  # fmt: skip
    for name in ("tiers", "plans"):
        if any(item.merchant_id != merchant.pk for item in data.get(name, [])):
            raise ValidationError({name: _("No such item.")})
    if data.get("kind") == Reward.Kind.FREE_PRODUCT and not data.get("product_sku"):
        raise ValidationError({"product_sku": _("Name the free product's SKU.")})
    if data.get("kind") in (Reward.Kind.FIXED_AMOUNT, Reward.Kind.PERCENT) and not data.get(
        "value"
    ):
        raise ValidationError({"value": _("How much off?")})
    if data.get("kind") == Reward.Kind.PERCENT and data.get("value", 0) > 100:
        raise ValidationError({"value": _("At most 100 percent.")})
    return audited_save(
        merchant=merchant,
        instance=reward or Reward(),
        data=data,
        actor=actor,
        action="loyalty.reward_saved",
        ip_address=ip_address,
    )


def plan_save(*, merchant: Merchant, plan: MembershipPlan | None, data: dict, actor,
              ip_address=None) -> MembershipPlan:  # fmt: skip
    return audited_save(
        merchant=merchant,
        instance=plan or MembershipPlan(),
        data=data,
        actor=actor,
        action="loyalty.plan_saved",
        ip_address=ip_address,
    )
