"""Text a merchant writes for customers, in each of the product's languages.

Reward names, tier perks, plan descriptions, program terms and canned replies are written
per language: django-modeltranslation keeps one column per language on the row itself
(`name_en`, `name_ar`, `name_fa`, `name_ru`), so the rewards page reads them with the row
it already reads (and the catalog cache keeps all four in one copy), and `reward.name`
answers in the active language. When that language is empty, the text falls back to the
merchant's default language, then to the others in settings order: the merchant whose
default is Russian shows a Persian customer the Russian text, not whichever came first.

The merchant's default language is known where its time zone is: the dashboard's
middleware, the rewards page, mail and jobs activate both. `fallback_languages` is what
each translated field is registered with (the `translation.py` of each app).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from django import forms
from django.conf import settings
from django.db import models
from django.utils.translation import get_language

from merchants.dates import calendar_activate, calendar_reset
from merchants.models import Merchant

LANGUAGES = tuple(code for code, _name in settings.LANGUAGES)
_merchant_default: ContextVar[str | None] = ContextVar("content_default_language", default=None)


class _MerchantFirst(Mapping):
    """modeltranslation's fallback table for a field, read on every access: after the
    asked language come the active merchant's default language and then the rest."""

    def __getitem__(self, key: str) -> tuple[str, ...]:
        if key != "default":
            raise KeyError(key)
        first = _merchant_default.get()
        return (first, *LANGUAGES) if first else LANGUAGES

    def __iter__(self) -> Iterator[str]:
        yield "default"

    def __len__(self) -> int:
        return 1


fallback_languages = _MerchantFirst()


def content_activate(merchant: Merchant) -> None:
    """The merchant's readers from here on: its default language for texts and its
    calendar for dates (merchants/dates.py)."""
    _merchant_default.set(merchant.default_language)
    calendar_activate(merchant.calendar)


def content_deactivate() -> None:
    _merchant_default.set(None)
    calendar_reset()


@contextmanager
def content_override(merchant: Merchant) -> Iterator[None]:
    token = _merchant_default.set(merchant.default_language)
    calendar = calendar_activate(merchant.calendar)
    try:
        yield
    finally:
        _merchant_default.reset(token)
        calendar_reset(calendar)


def resolution_order(language: str | None = None) -> tuple[str, ...]:
    """The languages a text is looked for in, the one asked (the active one) first."""
    asked = language or get_language() or settings.LANGUAGE_CODE
    order = (asked, *fallback_languages["default"])
    return tuple(dict.fromkeys(code for code in order if code in LANGUAGES))


def text_sql(column: str, language: str | None = None) -> str:
    """The SQL of a translated column read in the active language with its fallbacks, for
    the few statements written by hand: `text_sql("p.name")` →
    COALESCE(NULLIF(p.name_ar, ''), NULLIF(p.name_en, ''), …, p.name)."""
    parts = [f"NULLIF({column}_{code}, '')" for code in resolution_order(language)]
    return f"COALESCE({', '.join(parts)}, {column})"


def missing_languages(instance, fields: tuple[str, ...]) -> list[str]:
    """The languages in which any of `fields` is empty while another language has it."""
    missing = []
    for code in LANGUAGES:
        for name in fields:
            values = [getattr(instance, f"{name}_{other}") or "" for other in LANGUAGES]
            if any(values) and not (getattr(instance, f"{name}_{code}") or ""):
                missing.append(code)
                break
    return missing


def localized(*names: str) -> list[str]:
    """A form's Meta.fields for translated fields: `localized("name")` → name_en, name_ar…"""
    return [f"{name}_{code}" for name in names for code in LANGUAGES]


class TranslatedFieldsForm(forms.ModelForm):
    """A model form whose translated fields (`translated`, listed in Meta.fields with
    `localized(...)`) are edited side by side, one input per language: the merchant's
    default language first and required, the others optional, each marked with its
    language and direction. An empty one shows what its readers get instead (the default
    language's text) and says so."""

    translated: tuple[str, ...] = ()

    def __init__(self, *args, merchant: Merchant, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        default = merchant.default_language
        order = (default, *(code for code in LANGUAGES if code != default))
        names = dict(settings.LANGUAGES)
        self.translated_groups: list[tuple[str, list]] = []
        for name in self.translated:
            plain = self.instance._meta.get_field(name)
            fallback = getattr(self.instance, f"{name}_{default}", "") or ""
            group = []
            for code in order:
                field = self.fields[f"{name}_{code}"]
                field.label = f"{plain.verbose_name[:1].upper()}{plain.verbose_name[1:]}"
                field.required = code == default and not plain.blank
                field.widget.attrs.update(lang=code, dir="auto", **{"class": "form-control"})
                if code != default and fallback:
                    field.widget.attrs["placeholder"] = fallback
                group.append((code, names[code], self[f"{name}_{code}"]))
            self.translated_groups.append((field.label, group))
        self.default_language = default

    @property
    def layout(self) -> list[tuple[str, object]]:
        """The form in its order for the template: ("field", bound field) or ("group",
        (label, [(code, language name, bound field), …])) where a translated field was."""
        groups = {entries[0][2].name.rpartition("_")[0]: (label, entries)
                  for label, entries in self.translated_groups}  # fmt: skip
        rows: list[tuple[str, object]] = []
        for name in self.fields:
            base, _sep, code = name.rpartition("_")
            if base in groups:
                if code == self.default_language:
                    rows.append(("group", groups[base]))
            elif not (base in self.translated and code in LANGUAGES):
                rows.append(("field", self[name]))
        return rows


def texts_copy_to_default_language(model, fields: tuple[str, ...]):
    """A data migration's step: the text written before a field had languages becomes its
    text in the merchant's default language (one UPDATE per language, set-based)."""

    def forwards(apps, schema_editor) -> None:
        rows = apps.get_model(*model.split("."))
        for code in LANGUAGES:
            chosen = rows.objects.filter(merchant__default_language=code)
            chosen.update(**{f"{name}_{code}": models.F(name) for name in fields})

    return forwards
