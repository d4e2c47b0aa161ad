"""The `date` filter of every Django template (a builtin: config/settings/base.py), in the
active merchant's calendar (merchants/dates.py)."""

from __future__ import annotations

from django import template

from merchants.dates import date_shown

register = template.Library()
register.filter("date", date_shown, expects_localtime=True)
