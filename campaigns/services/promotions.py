"""Promotions written by staff: checked as a whole, saved with their public code, audited."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from campaigns.models import Code, Promotion
from campaigns.services.codes import code_normalised
from campaigns.services.shops import shop_push_queue
from customers.services.data import problems_raise, text_problem
from merchants.models import Merchant
from merchants.services import audited_save

Kind, Rule = Promotion.Kind, Promotion.Eligibility
# Which list each targeted eligibility needs filled.
TARGETS = {Rule.TIERS: "tiers", Rule.PERSONAS: "personas", Rule.SEGMENTS: "segments",
           Rule.MEMBERS: "plans", Rule.CUSTOMER: "customer"}  # fmt: skip


def _problems(data: dict, promotion: Promotion | None, public_code: str) -> dict[str, list]:
    errors: dict[str, list] = {}
    kind, value = data.get("kind"), data.get("value") or 0
    if kind in (Kind.PERCENT, Kind.FIXED_AMOUNT) and value <= 0:
        errors["value"] = [_("How much off?")]
    elif kind == Kind.PERCENT and value > 100:
        errors["value"] = [_("At most 100 percent.")]
    if kind == Kind.FREE_PRODUCT and not data.get("product_sku"):
        errors["product_sku"] = [_("Name the free product's SKU.")]
    if kind == Kind.BONUS_POINTS and not data.get("bonus_points"):
        errors["bonus_points"] = [_("How many bonus points?")]
    starts, ends = data.get("starts_at"), data.get("ends_at")
    if starts and ends and ends <= starts:
        errors["ends_at"] = [_("The end must come after the start.")]
    target = TARGETS.get(data.get("eligibility"))
    if target and not data.get(target):
        errors[target] = [_("Choose who may use it.")]
    if data.get("codes") == Promotion.Codes.PUBLIC and not public_code:
        errors["public_code"] = [_("Give the code customers type.")]
    if (
        promotion is not None and promotion.codes != data.get("codes")
        and promotion.code_set.exists()
    ):  # fmt: skip
        errors["codes"] = [_("This promotion has codes already: make a new promotion instead.")]
    return errors


def promotion_save(*, merchant: Merchant, promotion: Promotion | None, data: dict,
                   public_code: str = "", actor, ip_address=None) -> Promotion:  # fmt: skip
    """Creates or changes a promotion, and its public code when it has one. A code another
    code of the shop (a promotion's or a reward's) already is, is refused by name."""
    public_code = code_normalised(public_code or "")
    problems_raise({"public_code": text_problem(public_code)})
    errors = _problems(data, promotion, public_code)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            saved = audited_save(merchant=merchant, instance=promotion or Promotion(), data=data,
                                 actor=actor, action="campaigns.promotion_saved",
                                 ip_address=ip_address)  # fmt: skip
            if saved.codes == Promotion.Codes.PUBLIC:
                code = saved.code_set.filter(single_use=False).first()
                if code is None:
                    Code.objects.create(merchant=merchant, promotion=saved, code=public_code,
                                        single_use=False)  # fmt: skip
                elif code.code != public_code:
                    if code.uses.exists():
                        raise ValidationError({"public_code": [
                            _("This code has been used: it can't be renamed.")]})  # fmt: skip
                    code.code = public_code
                    code.save(update_fields=["code"])
            shop_push_queue(promotion=saved)
    except IntegrityError as clash:
        raise ValidationError(
            {"public_code": [_("The shop already has a code %(code)s.") % {"code": public_code}]}
        ) from clash
    return saved
