"""Dates as a merchant's readers see them: in the Gregorian calendar, or in the Solar
Hijri (Persian) calendar when the merchant chose it.

The calendar is a merchant setting, activated with its time zone and default language
(merchants/content.py: the dashboard's middleware, the rewards page, mail and the API), and
read by the one `date` filter both template engines use, so a page never mixes calendars.
A date in the Solar Hijri calendar is written with the active language's own date formats
(Persian "j F Y" reads "۱۲ آذر ۱۴۰۵" as "12 آذر 1405": Latin digits throughout, like every
number in the product) and the month names of that calendar in the reader's language.
Machine formats (ISO 8601, RFC 5322, the Unix time) stay Gregorian; forms take dates as the
browser's date input gives them (YYYY-MM-DD, Gregorian).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import date, datetime

import jdatetime
from django.db import models
from django.template import defaultfilters
from django.utils.dateformat import DateFormat
from django.utils.formats import get_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Calendar(models.TextChoices):
    GREGORIAN = "gregorian", _("Gregorian")
    SOLAR_HIJRI = "solar_hijri", _("Solar Hijri (Persian)")


_calendar: ContextVar[str] = ContextVar("merchant_calendar", default=Calendar.GREGORIAN)

MONTHS_SOLAR_HIJRI = {
    1: pgettext_lazy("Solar Hijri month", "Farvardin"),
    2: pgettext_lazy("Solar Hijri month", "Ordibehesht"),
    3: pgettext_lazy("Solar Hijri month", "Khordad"),
    4: pgettext_lazy("Solar Hijri month", "Tir"),
    5: pgettext_lazy("Solar Hijri month", "Mordad"),
    6: pgettext_lazy("Solar Hijri month", "Shahrivar"),
    7: pgettext_lazy("Solar Hijri month", "Mehr"),
    8: pgettext_lazy("Solar Hijri month", "Aban"),
    9: pgettext_lazy("Solar Hijri month", "Azar"),
    10: pgettext_lazy("Solar Hijri month", "Dey"),
    11: pgettext_lazy("Solar Hijri month", "Bahman"),
    12: pgettext_lazy("Solar Hijri month", "Esfand"),
}


# As a date writes the month, where the language declines it (Russian: "4 фарвардина").
MONTHS_SOLAR_HIJRI_IN_DATE = {
    1: pgettext_lazy("Solar Hijri month in a date", "Farvardin"),
    2: pgettext_lazy("Solar Hijri month in a date", "Ordibehesht"),
    3: pgettext_lazy("Solar Hijri month in a date", "Khordad"),
    4: pgettext_lazy("Solar Hijri month in a date", "Tir"),
    5: pgettext_lazy("Solar Hijri month in a date", "Mordad"),
    6: pgettext_lazy("Solar Hijri month in a date", "Shahrivar"),
    7: pgettext_lazy("Solar Hijri month in a date", "Mehr"),
    8: pgettext_lazy("Solar Hijri month in a date", "Aban"),
    9: pgettext_lazy("Solar Hijri month in a date", "Azar"),
    10: pgettext_lazy("Solar Hijri month in a date", "Dey"),
    11: pgettext_lazy("Solar Hijri month in a date", "Bahman"),
    12: pgettext_lazy("Solar Hijri month in a date", "Esfand"),
}


def calendar_activate(calendar: str) -> object:
    """Dates from here on in `calendar`; returns the token `calendar_reset` takes."""
    return _calendar.set(calendar)


def calendar_reset(token: object | None = None) -> None:
    if token is None:
        _calendar.set(Calendar.GREGORIAN)
    else:
        _calendar.reset(token)


class SolarHijriFormat(DateFormat):
    """Django's date format letters over the Solar Hijri date of the same day: the year,
    month and day letters answer in that calendar, the weekday and the time as they are."""

    def __init__(self, obj: date) -> None:
        super().__init__(obj)
        self.solar = jdatetime.date.fromgregorian(
            date=obj.date() if isinstance(obj, datetime) else obj
        )

    def b(self) -> str:
        return str(MONTHS_SOLAR_HIJRI[self.solar.month]).lower()

    def d(self) -> str:
        return f"{self.solar.day:02d}"

    def E(self) -> str:
        return str(MONTHS_SOLAR_HIJRI_IN_DATE[self.solar.month])

    def F(self) -> str:
        return str(MONTHS_SOLAR_HIJRI[self.solar.month])

    M = N = F

    def j(self) -> int:
        return self.solar.day

    def L(self) -> bool:
        return self.solar.isleap()

    def m(self) -> str:
        return f"{self.solar.month:02d}"

    def n(self) -> int:
        return self.solar.month

    def S(self) -> str:
        return ""  # English ordinals belong to Gregorian day numbers

    def t(self) -> int:
        return jdatetime.j_days_in_month[self.solar.month - 1] + (
            1 if self.solar.month == 12 and self.solar.isleap() else 0
        )

    def y(self) -> str:
        return f"{self.solar.year % 100:02d}"

    def Y(self) -> str:
        return f"{self.solar.year:04d}"

    def z(self) -> int:
        return self.solar.yday()


def date_shown(value, format_name: str | None = None) -> str:
    """The `date` filter of both template engines: `format_name` is a format setting
    ("SHORT_DATE_FORMAT") or a format string, `value` already in local time."""
    if _calendar.get() != Calendar.SOLAR_HIJRI or not isinstance(value, date):
        return defaultfilters.date(value, format_name)
    return SolarHijriFormat(value).format(get_format(format_name or "DATE_FORMAT"))
