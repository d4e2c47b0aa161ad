"""The Jinja2 environment for the hot pages' templates (jinja2/ at the project root), set
up to write what a Django template writes: the same catalogues (`_`, `gettext`,
`ngettext`, `pgettext`, with Django's active language), `{{ value }}` localized, in the
current time zone and the merchant's calendar as Django shows it, autoescape on, and the
few filters those templates use under their Django names."""

from __future__ import annotations

from datetime import date, datetime

from django.template.defaultfilters import floatformat, linebreaksbr, truncatechars
from django.templatetags.static import static
from django.urls import reverse
from django.utils.formats import localize
from django.utils.timezone import template_localtime
from django.utils.translation import gettext, ngettext, npgettext, pgettext

from jinja2 import Environment
from merchants.dates import date_shown
from merchants.templatetags.content import bdi
from merchants.templatetags.regulars import signed


def shown(value):
    """What `{{ value }}` prints in a Django template: numbers and dates in the active
    language's format, times in the current time zone, dates in the merchant's calendar."""
    value = template_localtime(value)
    if isinstance(value, date):
        return date_shown(value, "DATETIME_FORMAT" if isinstance(value, datetime) else None)
    return localize(value)


def url(name: str, *args, **kwargs) -> str:
    return reverse(name, args=args or None, kwargs=kwargs or None)


def environment(**options) -> Environment:
    env = Environment(extensions=["jinja2.ext.i18n"], finalize=shown, **options)
    env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext,
                                  npgettext=npgettext)  # fmt: skip
    env.globals.update(url=url, static=static)
    env.filters.update(
        bdi=bdi,
        signed=signed,
        localize=shown,
        date=lambda value, arg=None: date_shown(template_localtime(value), arg),
        floatformat=floatformat,
        linebreaksbr=lambda value: linebreaksbr(value, autoescape=True),
    )
    # The inbox rows' subjects: cut as Django's filter cuts them (length and ellipsis).
    env.filters["truncatechars"] = truncatechars
    return env
