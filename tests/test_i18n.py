"""The catalogues are complete and compiled, placeholders survive translation, pages turn
right-to-left for Arabic and Persian, and dates follow the locale."""

from __future__ import annotations

import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import translation

from tests.merchants.factories import StaffMemberFactory

LOCALE = Path(settings.BASE_DIR) / "locale"
TRANSLATED = ["ar", "fa", "ru"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _catalogue(language: str) -> polib.POFile:
    return polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalogue_is_complete(language):
    po = _catalogue(language)
    assert len(po) > 100
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []
    for entry in po:
        if entry.msgid_plural:
            assert all(entry.msgstr_plural.values()), entry.msgid


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_placeholders(language):
    for entry in _catalogue(language):
        source = set(PLACEHOLDER.findall(entry.msgid + entry.msgid_plural))
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            found = set(PLACEHOLDER.findall(text))
            assert found <= source, (entry.msgid, text)
            if not entry.msgid_plural:
                assert found == source, (entry.msgid, text)


@pytest.mark.parametrize("language", TRANSLATED)
def test_compiled_catalogue_matches_its_source(language):
    mo = polib.mofile(str(LOCALE / language / "LC_MESSAGES" / "django.mo"))
    compiled = {(e.msgctxt, e.msgid, e.msgid_plural): (e.msgstr, dict(e.msgstr_plural)) for e in mo}
    for entry in _catalogue(language).translated_entries():
        key = (entry.msgctxt, entry.msgid, entry.msgid_plural)
        assert key in compiled, f"{entry.msgid!r} missing: run `make messages`"
        msgstr, plural = compiled[key]
        if entry.msgid_plural:
            assert {int(k): v for k, v in plural.items()} == {
                int(k): v for k, v in entry.msgstr_plural.items()
            }
        else:
            assert msgstr == entry.msgstr, f"{entry.msgid!r} is stale: run `make messages`"


@pytest.mark.needs_gettext
def test_every_string_in_the_code_is_in_the_catalogues():
    before = {
        lang: (LOCALE / lang / "LC_MESSAGES" / "django.po").read_bytes() for lang in TRANSLATED
    }
    known = {lang: {e.msgid for e in _catalogue(lang)} for lang in TRANSLATED}
    try:
        call_command(
            "makemessages",
            locale=TRANSLATED,
            ignore_patterns=["node_modules", ".venv", ".tools", "var", "tests"],
            no_obsolete=True,
            verbosity=0,
        )
        found = {lang: {e.msgid for e in _catalogue(lang)} for lang in TRANSLATED}
    finally:
        for lang, content in before.items():
            (LOCALE / lang / "LC_MESSAGES" / "django.po").write_bytes(content)
    for lang in TRANSLATED:
        assert found[lang] - known[lang] == set(), (
            f"untranslated new strings: run `make messages` ({lang})"
        )


def test_every_string_in_the_jinja2_templates_is_in_the_catalogues():
    """makemessages doesn't read the Jinja2 templates (jinja2/): `make messages` has
    pybabel find their strings, with the map in babel.cfg and the Makefile's keywords."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_keywords, parse_mapping_cfg

    root = Path(settings.BASE_DIR)
    (keywords,) = re.findall(r"^JINJA2_KEYWORDS := (.+)$", (root / "Makefile").read_text(), re.M)
    with (root / "babel.cfg").open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        root / "jinja2", method_map, options_map, keywords=parse_keywords(keywords.split())
    ):
        found.add((context or "", message if isinstance(message, str) else message[0]))
    assert ("", "Your points") in found  # the map finds the templates
    for language in TRANSLATED:
        known = {(e.msgctxt or "", e.msgid) for e in _catalogue(language)}
        assert found - known == set(), f"strings new in jinja2/: run `make messages` ({language})"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "direction"), [("en", "ltr"), ("ar", "rtl"), ("fa", "rtl"), ("ru", "ltr")]
)
def test_staff_pages_follow_the_chosen_language_and_direction(client, language, direction):
    member = StaffMemberFactory()
    client.force_login(member.user)

    response = client.post("/language/", {"language": language, "next": "/merchants/staff/"})

    assert response.status_code == 302
    assert response.url == "/merchants/staff/"
    member.user.refresh_from_db()
    assert member.user.language == language
    body = client.get("/merchants/staff/").content.decode()
    assert f'<html lang="{language}" dir="{direction}">' in body
    stylesheet = "bootstrap.rtl.min.css" if direction == "rtl" else "bootstrap.min.css"
    assert stylesheet in body
    with translation.override(language):
        assert translation.gettext("Team") in body


@pytest.mark.django_db
def test_a_staff_members_language_follows_them_to_a_new_browser(client):
    member = StaffMemberFactory(user__language="ru")
    response = client.post(
        "/accounts/login/",
        {"username": member.user.email, "password": "correct-horse-battery-staple"},
    )
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    assert 'lang="ru"' in client.get("/").content.decode()


@pytest.mark.django_db
def test_dates_are_written_the_locales_way(client):
    member = StaffMemberFactory(role="owner")
    member.created_at = member.created_at.replace(year=2026, month=3, day=9, hour=12)
    member.save()
    client.force_login(member.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    assert "09.03.2026" in client.get("/merchants/staff/").content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"
    assert "2026/3/9" in client.get("/merchants/staff/").content.decode()


def test_language_menu_refuses_a_next_address_on_another_site(client):
    response = client.post("/language/", {"language": "ar", "next": "https://evil.example/"})
    assert response.url == "/"


@pytest.mark.parametrize(
    ("language", "count", "money", "gain", "loss"),
    [
        ("en", "24,394", "1,234.50", "+1,250", "-500"),
        ("ar", "24,394", "1,234.50", "+1,250", "-500"),
        ("fa", "24,394", "1,234.50", "+1,250", "-500"),
        ("ru", "24\xa0394", "1\xa0234,50", "+1\xa0250", "-500"),
    ],
)
def test_numbers_group_thousands_in_latin_digits_and_signs_stay_left(
    language, count, money, gain, loss
):
    """Arabic and Persian group thousands too (Django's own formats don't), with Latin
    digits as in every input; a signed change is isolated left to right so an RTL page
    writes "+1,250", not "1,250+". The same in both template engines."""
    from decimal import Decimal

    from django.template import engines
    from django.utils import translation

    values = {"n": 24394, "amount": Decimal("1234.50"), "gain": 1250, "loss": -500}
    django_template = engines["django"].from_string(
        "{% load regulars %}{{ n }}|{{ amount }}|{{ gain|signed }}|{{ loss|signed }}"
    )
    jinja_template = engines["jinja2"].from_string(
        "{{ n }}|{{ amount }}|{{ gain|signed }}|{{ loss|signed }}"
    )
    expected = f'{count}|{money}|<bdi dir="ltr">{gain}</bdi>|<bdi dir="ltr">{loss}</bdi>'
    with translation.override(language):
        assert django_template.render(values) == expected
        assert jinja_template.render(values) == expected
