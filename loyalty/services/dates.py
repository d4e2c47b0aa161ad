"""Calendar arithmetic for points and tiers: months are added from an anchor date, never
by chaining, so Jan 31 + 1 month is the last day of February and + 2 months is Mar 31."""

from __future__ import annotations

import calendar
from datetime import datetime


def months_after(moment: datetime, months: int) -> datetime:
    """The same day `months` later, or the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
