"""The Jinja2 environment for the hot pages' templates (jinja2/ at the project root), set
up to write what a Django template writes: the same catalogues (`_`, `gettext`,
`ngettext`, `pgettext`, with Django's active language), `{{ value }}` localized and in the
current time zone as Django shows it, autoescape on, and the few filters those templates
use under their Django names."""

from __future__ import annotations

from django.template.defaultfilters import date, floatformat, linebreaksbr, truncatechars
from django.templatetags.static import static
from django.urls import reverse
from django.utils.formats import localize
from django.utils.timezone import template_localtime
from django.utils.translation import gettext, ngettext, npgettext, pgettext

from jinja2 import Environment
from merchants.templatetags.content import bdi


def shown(value):
    """What `{{ value }}` prints in a Django template: numbers and dates in the active
    language's format, times in the current time zone."""
    return localize(template_localtime(value))


def url(name: str, *args, **kwargs) -> str:
    return reverse(name, args=args or None, kwargs=kwargs or None)


def environment(**options) -> Environment:
    env = Environment(extensions=["jinja2.ext.i18n"], finalize=shown, **options)
    env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext,
                                  npgettext=npgettext)  # fmt: skip
    env.globals.update(url=url, static=static)
    env.filters.update(
        bdi=bdi,
        localize=shown,
        date=lambda value, arg=None: date(template_localtime(value), arg),
        floatformat=floatformat,
        linebreaksbr=lambda value: linebreaksbr(value, autoescape=True),
    )
    # The inbox rows' subjects: cut as Django's filter cuts them (length and ellipsis).
    env.filters["truncatechars"] = truncatechars
    return env
