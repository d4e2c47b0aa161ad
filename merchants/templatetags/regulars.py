"""Template filters shared by every app's pages."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils import formats

register = template.Library()


@register.filter
def percent(value: Decimal | float | str | None, places: int = 1) -> str:
    """0.8298 → "83.0%" written the active locale's way; "—" when there is no figure."""
    if value is None or value == "":
        return "—"
    return f"{formats.number_format(Decimal(value) * 100, places, use_l10n=True)}%"
