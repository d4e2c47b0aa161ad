"""Merchant content per language on staff pages: which languages a text still lacks."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from merchants.content import missing_languages

register = template.Library()


@register.inclusion_tag("partials/_missing_languages.html")
def languages_missing(instance, *fields: str) -> dict:
    """`{% languages_missing reward "name" "description" %}`: a badge naming the languages
    customers would read another language's text in, or nothing."""
    return {"missing": missing_languages(instance, fields)}


@register.filter
def bdi(value) -> str:
    """Merchant or customer text set inside a sentence of another direction, isolated so
    bidi keeps its words in order ("$5 off your order" inside Arabic stays as written)."""
    if value is None or value == "":
        return ""
    return format_html("<bdi>{}</bdi>", value)
