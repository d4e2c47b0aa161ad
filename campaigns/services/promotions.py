"""Promotions written by staff: checked as a whole, saved with their public code, audited."""

from __future__ import annotations

import csv
import io

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from campaigns.models import Code, Promotion, PromotionListEntry
from campaigns.services.codes import code_normalised
from campaigns.services.shops import shop_push_queue
from customers.models import Customer
from customers.services.data import problems_raise, text_problem
from merchants.models import Merchant, normalise_email
from merchants.services import audited_save

Kind, Rule = Promotion.Kind, Promotion.Eligibility
LIST_MOST_ROWS = 100_000
LIST_MOST_BYTES = 10 * 1024 * 1024
HEADERS = ("email", "external_id")
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


def customer_list_read(*, merchant: Merchant, upload) -> list[int]:
    """The customers a CSV list names, one per row: by email, or by the shop's customer id.
    The column is the one headed `email` or `external_id`, else the first. Every row that
    names no customer of this shop is refused by its number, and then none is kept."""
    field = "customer_list"
    if upload.size > LIST_MOST_BYTES:
        raise ValidationError({field: [_("At most 10 MB.")]})
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError({field: [_("The file is not UTF-8 text.")]}) from error
    rows = list(csv.reader(io.StringIO(text)))
    column, start = 0, 0
    if rows and any(cell.strip().lower() in HEADERS for cell in rows[0]):
        column = next(i for i, c in enumerate(rows[0]) if c.strip().lower() in HEADERS)
        start = 1
    named = [(n, (row[column] if len(row) > column else "").strip())
             for n, row in enumerate(rows[start:], start=start + 1)]  # fmt: skip
    named = [(n, value) for n, value in named if value]
    if not named:
        raise ValidationError({field: [_("The list names no customers.")]})
    if len(named) > LIST_MOST_ROWS:
        raise ValidationError({field: [_("At most 100,000 customers in a list.")]})
    problems_raise({field: text_problem([value for _n, value in named])})
    emails = {normalise_email(v) for _n, v in named if "@" in v}
    ids = {v for _n, v in named if "@" not in v}
    found: dict[str, int] = {}
    customers = Customer.objects.filter(merchant=merchant)
    for chunk in _chunks(sorted(emails)):
        found |= {f"@{e}": pk for pk, e in customers.filter(email__in=chunk)
                  .values_list("pk", "email")}  # fmt: skip
    for chunk in _chunks(sorted(ids)):
        found |= dict(customers.filter(external_id__in=chunk).values_list("external_id", "pk"))
    missing = []
    for n, value in named:
        key = f"@{normalise_email(value)}" if "@" in value else value
        if key not in found:
            missing.append(_("Row %(row)s: no customer %(who)s.") % {"row": n, "who": value})
    if missing:
        more = len(missing) - 10
        tail = [_("…and %(count)s more rows.") % {"count": more}] if more > 0 else []
        raise ValidationError({field: missing[:10] + tail})
    keys = (f"@{normalise_email(v)}" if "@" in v else v for _n, v in named)
    return sorted({found[key] for key in keys})


def _chunks(values: list[str], size: int = 5000):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def promotion_save(*, merchant: Merchant, promotion: Promotion | None, data: dict,
                   public_code: str = "", listed: list[int] | None = None, actor,
                   ip_address=None) -> Promotion:  # fmt: skip
    """Creates or changes a promotion, and its public code when it has one. A code another
    code of the shop (a promotion's or a reward's) already is, is refused by name. `listed`
    (from customer_list_read) replaces the customers of a promotion for a list."""
    public_code = code_normalised(public_code or "")
    problems_raise({"public_code": text_problem(public_code)})
    errors = _problems(data, promotion, public_code)
    if (
        data.get("eligibility") == Rule.LIST
        and not listed
        and not (
            promotion is not None
            and PromotionListEntry.objects.filter(promotion=promotion).exists()
        )
    ):
        errors["customer_list"] = [_("Upload the list of customers.")]
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
            if listed is not None:
                PromotionListEntry.objects.filter(promotion=saved).delete()
                PromotionListEntry.objects.bulk_create(
                    [PromotionListEntry(promotion=saved, customer_id=pk) for pk in listed],
                    batch_size=5000,
                )
            shop_push_queue(promotion=saved)
    except IntegrityError as clash:
        raise ValidationError(
            {"public_code": [_("The shop already has a code %(code)s.") % {"code": public_code}]}
        ) from clash
    return saved
