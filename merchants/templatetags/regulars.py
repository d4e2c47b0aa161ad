"""Template filters shared by every app's pages."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils import formats
from django.utils.html import format_html

register = template.Library()


@register.filter
def percent(value: Decimal | float | str | None, places: int = 1) -> str:
    """0.8298 → "83.0%" written the active locale's way; "—" when there is no figure."""
    if value is None or value == "":
        return "—"
    return f"{formats.number_format(Decimal(value) * 100, places, use_l10n=True)}%"


@register.filter
def signed(value: int | None) -> str:
    """A change in points, +1,250 or -500, in the active language's grouping and isolated
    left to right, so an Arabic or Persian page doesn't write it as "1,250+"."""
    if value is None:
        return ""
    sign = "+" if value > 0 else "-" if value < 0 else ""
    return format_html('<bdi dir="ltr">{}{}</bdi>', sign, formats.localize(abs(value)))
