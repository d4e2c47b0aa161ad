"""Routing: the merchant's ordered rules decide a new ticket's category, department,
priority and assignee (docs/business-rules.md §8). A ticket no rule takes stays without a
department: the triage queue."""

from __future__ import annotations

import re
import unicodedata

from customers.models import Customer
from feedback.models import Feedback, RoutingRule

# Letters typed differently on Arabic and Persian keyboards (and Russian ё), folded to one
# form, so a rule written in one script variant matches text typed in another.
_LETTERS = str.maketrans(
    {
        "ي": "ی",  # Arabic yeh → Farsi yeh
        "ى": "ی",  # alef maksura
        "ك": "ک",  # Arabic kaf → keheh
        "ة": "ه",  # teh marbuta → heh
        "أ": "ا",
        "إ": "ا",
        "ٱ": "ا",
        "ё": "е",
        "\u0640": None,  # tatweel, a stretch with no meaning
        "\u200c": None,  # zero-width non-joiner, typed in Persian words or not
    }
)
# Harakat, the superscript alef and Quranic marks: optional vowel signs.
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
# Commas in Latin and Arabic script, and line breaks, separate keywords.
_KEYWORD_SEPARATORS = re.compile("[,\u060c\n\r]")


def text_fold(text: str) -> str:
    """Text as keyword matching compares it: case and script variants folded away."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _DIACRITICS.sub("", folded).translate(_LETTERS)


def keywords_of(rule: RoutingRule) -> list[str]:
    keywords = (text_fold(word).strip() for word in _KEYWORD_SEPARATORS.split(rule.keywords))
    return [word for word in keywords if word]


class _CustomerFacts:
    """The customer's segment and current tier, read once and only if a rule asks."""

    def __init__(self, feedback: Feedback) -> None:
        self.feedback = feedback
        self._read = False
        self.segment = ""
        self.tier_id: int | None = None

    def _load(self) -> None:
        if self._read:
            return
        self._read = True
        if self.feedback.customer_id is None:
            return
        # One query for both: the customer row and their points account (loyalty's tier).
        row = (
            Customer.objects.filter(
                pk=self.feedback.customer_id, merchant_id=self.feedback.merchant_id
            )
            .values_list("segment", "points_account__tier_id")
            .first()
        )
        if row is not None:
            self.segment, self.tier_id = row

    def segment_of(self) -> str:
        if Feedback.customer.is_cached(self.feedback) and not self._read:
            customer = self.feedback.customer
            return customer.segment if customer is not None else ""
        self._load()
        return self.segment

    def tier_of(self) -> int | None:
        self._load()
        return self.tier_id


def _matches(rule: RoutingRule, feedback: Feedback, customer: _CustomerFacts, text: str) -> bool:
    if rule.channel and rule.channel != feedback.channel:
        return False
    if rule.kind and rule.kind != feedback.kind:
        return False
    if rule.rating_min is not None or rule.rating_max is not None:
        if feedback.rating is None:
            return False
        if rule.rating_min is not None and feedback.rating < rule.rating_min:
            return False
        if rule.rating_max is not None and feedback.rating > rule.rating_max:
            return False
    if rule.keywords.strip():
        keywords = keywords_of(rule)
        if keywords and not any(word in text for word in keywords):
            return False
    # The conditions that read the customer last: cheap ones usually decide first.
    if rule.segment and (feedback.customer_id is None or customer.segment_of() != rule.segment):
        return False
    return not (
        rule.tier_id is not None
        and (feedback.customer_id is None or customer.tier_of() != rule.tier_id)
    )


def feedback_route(*, feedback: Feedback) -> RoutingRule | None:
    """Applies the first active rule (by position) whose every condition holds, and returns
    it; None leaves the ticket in triage. Changes the instance only: the caller saves."""
    rules = (
        RoutingRule.objects.filter(merchant_id=feedback.merchant_id, is_active=True)
        .select_related("department__default_assignee__user", "assignee__user")
        .order_by("position", "pk")
    )
    customer = _CustomerFacts(feedback)
    text = text_fold(f"{feedback.subject}\n{feedback.body}")
    for rule in rules:
        if not _matches(rule, feedback, customer, text):
            continue
        if rule.category:
            feedback.category = rule.category
        if rule.priority:
            feedback.priority = rule.priority
        if rule.department is not None:
            feedback.department = rule.department
        if rule.assignee is not None:
            feedback.assignee = rule.assignee
        elif rule.department is not None and rule.department.default_assignee is not None:
            feedback.assignee = rule.department.default_assignee
        return rule
    return None
