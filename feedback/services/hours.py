"""The merchant's business hours, and time counted in them: the instant N business minutes
after another, and the business minutes between two instants (docs/business-rules.md §8). Hours are
wall-clock times in the merchant's time zone, so a working day across a clock change is
an hour shorter or longer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from feedback.models import SupportSettings
from merchants.models import Merchant

WEEKDAYS = [1, 2, 3, 4, 5]
DAY_STARTS, DAY_ENDS = time(9, 0), time(17, 0)
MINUTE = timedelta(minutes=1)
UTC = ZoneInfo("UTC")


def support_settings_of(*, merchant: Merchant) -> SupportSettings:
    """The merchant's support settings, created with the defaults on first use.
    get_or_create already retries the read when a concurrent insert wins the race."""
    found, _created = SupportSettings.objects.get_or_create(
        merchant=merchant,
        defaults={
            "working_days": list(WEEKDAYS),
            "day_starts": DAY_STARTS,
            "day_ends": DAY_ENDS,
            "inbound_secret": secrets.token_hex(32),
        },
    )
    if not found.inbound_secret:
        # Guarded: two first callers must end up with the same secret, not each their own.
        SupportSettings.objects.filter(pk=found.pk, inbound_secret="").update(
            inbound_secret=secrets.token_hex(32)
        )
        found.refresh_from_db(fields=["inbound_secret"])
    found.merchant = merchant
    return found


@dataclass(frozen=True)
class _Hours:
    days: frozenset[int]
    starts: time
    ends: time
    zone: ZoneInfo

    @classmethod
    def of(cls, hours: SupportSettings, merchant: Merchant) -> _Hours:
        days = frozenset(
            int(day)
            for day in hours.working_days or []
            if str(day).isdigit() and 1 <= int(day) <= 7
        )
        return cls(
            days=days or frozenset(WEEKDAYS),
            starts=hours.day_starts or DAY_STARTS,
            ends=hours.day_ends or DAY_ENDS,
            zone=merchant.zone,
        )

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working hours that open on `day` (local), as UTC instants. Local wall times
        become real instants, so a window across a clock change is an hour shorter or
        longer. Hours that end at or before they start run past midnight."""
        if day.isoweekday() not in self.days:
            return None
        end_day = day + timedelta(days=1) if self.ends <= self.starts else day
        opens = datetime.combine(day, self.starts, tzinfo=self.zone).astimezone(UTC)
        closes = datetime.combine(end_day, self.ends, tzinfo=self.zone).astimezone(UTC)
        if closes <= opens:
            # Hours inside the hour the clocks skip (02:45 to 03:00 on a spring-forward
            # night) don't exist that day.
            return None
        return opens, closes

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()


def business_add(
    *, hours: SupportSettings, merchant: Merchant, start: datetime, minutes: int
) -> datetime:
    """The instant `minutes` business minutes after `start` (before it when negative). A
    start outside working hours counts from the next opening (the last closing when going
    back). One step per calendar day."""
    clock = _Hours.of(hours, merchant)
    left = abs(minutes) * MINUTE
    cursor = start
    if minutes >= 0:
        # From the day before: hours past midnight may have opened yesterday.
        day = clock.local_day(start) - timedelta(days=1)
        while True:
            window = clock.window(day)
            day += timedelta(days=1)
            if window is None or window[1] <= cursor:
                continue
            opens, closes = window
            cursor = max(cursor, opens)
            if left <= closes - cursor:
                return cursor + left
            left -= closes - cursor
            cursor = closes
    day = clock.local_day(start) + timedelta(days=1)
    while True:
        window = clock.window(day)
        day -= timedelta(days=1)
        if window is None or window[0] >= cursor:
            continue
        opens, closes = window
        cursor = min(cursor, closes)
        if left <= cursor - opens:
            return cursor - left
        left -= cursor - opens
        cursor = opens


def business_minutes(
    *, hours: SupportSettings, merchant: Merchant, start: datetime, end: datetime
) -> int:
    """Whole business minutes in [start, end); 0 when end is not after start."""
    if end <= start:
        return 0
    clock = _Hours.of(hours, merchant)
    total = timedelta()
    day, last = clock.local_day(start) - timedelta(days=1), clock.local_day(end)
    while day <= last:
        window = clock.window(day)
        day += timedelta(days=1)
        if window is not None:
            overlap = min(window[1], end) - max(window[0], start)
            if overlap > timedelta():
                total += overlap
    return total // MINUTE
