"""SLA clocks in business hours: weekends, DST, pauses, custom weeks, priority changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.models import Feedback, SupportSettings
from feedback.services.hours import business_add, business_minutes, support_settings_of
from feedback.services.sla import sla_due_set, sla_pause, sla_priority_changed, sla_resume
from merchants.models import Merchant
from tests.feedback.factories import FeedbackFactory, SlaPolicyFactory

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
DUBAI = ZoneInfo("Asia/Dubai")


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def office(timezone: str = "Europe/London", days=(), starts=time(9), ends=time(17)):
    """Unsaved rows: the clock arithmetic needs no database."""
    return (
        SupportSettings(working_days=list(days), day_starts=starts, day_ends=ends),
        Merchant(timezone=timezone),
    )


def add(start: datetime, minutes: int, **hours) -> datetime:
    support, merchant = office(**hours)
    return business_add(hours=support, merchant=merchant, start=start, minutes=minutes)


def between(start: datetime, end: datetime, **hours) -> int:
    support, merchant = office(**hours)
    return business_minutes(hours=support, merchant=merchant, start=start, end=end)


# --- the arithmetic -------------------------------------------------------------------


def test_two_hours_from_friday_at_four_is_monday_at_ten():
    friday = local(LONDON, 2025, 3, 7, 16, 0)
    assert add(friday, 120) == local(LONDON, 2025, 3, 10, 10, 0)
    assert between(friday, local(LONDON, 2025, 3, 10, 10, 0)) == 120


def test_target_ending_exactly_at_closing_is_due_at_closing():
    assert add(local(LONDON, 2025, 3, 7, 16, 0), 60) == local(LONDON, 2025, 3, 7, 17, 0)


@pytest.mark.parametrize(
    ("friday", "monday_ten_utc"),
    [
        # Clocks go forward on Sunday 30 March 2025: Monday 10:00 BST is 09:00 UTC.
        ((2025, 3, 28), datetime(2025, 3, 31, 9, 0, tzinfo=UTC)),
        # Clocks go back on Sunday 26 October 2025: Monday 10:00 GMT is 10:00 UTC.
        ((2025, 10, 24), datetime(2025, 10, 27, 10, 0, tzinfo=UTC)),
    ],
)
def test_two_hours_across_a_dst_weekend_land_on_monday_ten_local(friday, monday_ten_utc):
    start = local(LONDON, *friday, 16, 0)
    due = add(start, 120)
    assert due == monday_ten_utc
    assert due.astimezone(LONDON).hour == 10
    assert between(start, due) == 120


def test_a_working_day_that_loses_an_hour_to_dst_counts_23_hours():
    # Open round the clock every day (hours that end when they start run to the next day).
    every_day = {"days": range(1, 8), "starts": time(0), "ends": time(0)}
    sunday, monday = local(LONDON, 2025, 3, 30, 0, 0), local(LONDON, 2025, 3, 31, 0, 0)
    assert between(sunday, monday, **every_day) == 23 * 60
    assert add(sunday, 23 * 60, **every_day) == monday


def test_a_start_on_sunday_rolls_to_monday_at_nine():
    sunday = local(LONDON, 2025, 3, 9, 12, 0)
    assert add(sunday, 0) == local(LONDON, 2025, 3, 10, 9, 0)
    assert add(sunday, 30) == local(LONDON, 2025, 3, 10, 9, 30)
    assert between(sunday, local(LONDON, 2025, 3, 10, 9, 0)) == 0


def test_after_closing_rolls_to_the_next_morning():
    assert add(local(LONDON, 2025, 3, 11, 18, 30), 15) == local(LONDON, 2025, 3, 12, 9, 15)


def test_negative_minutes_go_back_over_the_weekend():
    monday = local(LONDON, 2025, 3, 10, 10, 0)
    assert add(monday, -120) == local(LONDON, 2025, 3, 7, 16, 0)


def test_a_gulf_week_runs_sunday_to_thursday():
    gulf = {"timezone": "Asia/Dubai", "days": [7, 1, 2, 3, 4], "starts": time(8), "ends": time(16)}
    thursday = local(DUBAI, 2025, 3, 13, 15, 0)
    assert add(thursday, 120, **gulf) == local(DUBAI, 2025, 3, 16, 9, 0)
    friday = local(DUBAI, 2025, 3, 14, 10, 0)
    assert add(friday, 0, **gulf) == local(DUBAI, 2025, 3, 16, 8, 0)
    # Friday and Saturday count nothing; Sunday counts a full day.
    assert between(friday, local(DUBAI, 2025, 3, 17, 8, 0), **gulf) == 8 * 60


def test_no_working_days_saved_means_monday_to_friday():
    saturday = local(LONDON, 2025, 3, 8, 10, 0)
    assert add(saturday, 60, days=[]) == local(LONDON, 2025, 3, 10, 10, 0)


def test_a_long_target_is_counted_by_days_not_minutes():
    monday = local(LONDON, 2025, 1, 6, 9, 0)
    # 52 weeks of 5 days of 8 hours, used up at closing time on the last Friday.
    assert add(monday, 52 * 5 * 8 * 60) == local(LONDON, 2026, 1, 2, 17, 0)


ZONES = ["Europe/London", "Asia/Dubai", "America/New_York", "Asia/Tehran", "Australia/Sydney"]


@settings(max_examples=300, deadline=None)
@given(
    timezone=st.sampled_from(ZONES),
    days=st.sets(st.integers(1, 7), min_size=1),
    starts=st.integers(0, 23 * 4).map(lambda q: time(q // 4, q % 4 * 15)),
    hours_open=st.integers(1, 24 * 4),
    # Hypothesis takes naive bounds and attaches the time zone itself.
    start=st.datetimes(
        min_value=datetime(2024, 1, 1),  # noqa: DTZ001
        max_value=datetime(2026, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    minutes=st.integers(0, 20_000),
)
def test_business_minutes_undo_business_add(timezone, days, starts, hours_open, start, minutes):
    ends_at = (starts.hour * 60 + starts.minute + hours_open * 15) % (24 * 60)
    hours = {"timezone": timezone, "days": days, "starts": starts}
    hours["ends"] = time(ends_at // 60, ends_at % 60)
    due = add(start, minutes, **hours)
    assert due >= start
    assert between(start, due, **hours) == minutes
    if minutes:  # going back 0 minutes is going forward 0: a start outside hours rolls on
        earlier = add(start, -minutes, **hours)
        assert earlier <= start
        assert between(earlier, start, **hours) == minutes


def test_hours_inside_the_skipped_hour_of_a_spring_forward_night_count_nothing_that_day():
    # New York skips 02:00 to 03:00 on 10 March 2024: a 02:45 to 03:00 desk isn't open.
    hours = {"timezone": "America/New_York", "days": {1, 2, 3, 4, 5, 6, 7},
             "starts": time(2, 45), "ends": time(3, 0)}  # fmt: skip
    saturday = local(NEW_YORK, 2024, 3, 9, 12, 0)
    monday = local(NEW_YORK, 2024, 3, 11, 12, 0)
    assert between(saturday, monday, **hours) == 15  # Monday's quarter hour only
    assert add(saturday, 15, **hours) == local(NEW_YORK, 2024, 3, 11, 3, 0)
    assert add(monday, -15, **hours) == local(NEW_YORK, 2024, 3, 11, 2, 45)


# --- clocks on a ticket -----------------------------------------------------------------


@pytest.fixture
def policies(merchant):
    return {
        "normal": SlaPolicyFactory(
            merchant=merchant, priority="normal", first_response_minutes=120, resolution_minutes=480
        ),
        "high": SlaPolicyFactory(
            merchant=merchant, priority="high", first_response_minutes=60, resolution_minutes=240
        ),
    }


@pytest.mark.django_db
def test_a_ticket_created_friday_at_four_owes_a_first_response_monday_at_ten(merchant, policies):
    friday = local(LONDON, 2025, 3, 7, 16, 0)
    ticket = FeedbackFactory(merchant=merchant, created_at=friday)
    sla_due_set(feedback=ticket, at=friday, first_response=True)
    assert ticket.first_response_due_at == local(LONDON, 2025, 3, 10, 10, 0)
    assert ticket.resolution_due_at == local(LONDON, 2025, 3, 10, 16, 0)


@pytest.mark.django_db
def test_a_merchants_saved_hours_set_the_clock(merchant, policies):
    merchant.timezone = "Asia/Dubai"
    merchant.save()
    SupportSettings.objects.create(
        merchant=merchant, working_days=[7, 1, 2, 3, 4], day_starts=time(8), day_ends=time(16)
    )
    thursday = local(DUBAI, 2025, 3, 13, 15, 0)
    ticket = FeedbackFactory(merchant=Merchant.objects.get(pk=merchant.pk))
    sla_due_set(feedback=ticket, at=thursday, first_response=True)
    assert ticket.first_response_due_at == local(DUBAI, 2025, 3, 16, 9, 0)


@pytest.mark.django_db
def test_without_a_policy_there_is_no_clock(merchant):
    ticket = FeedbackFactory(merchant=merchant, priority="low")
    sla_due_set(feedback=ticket, at=local(LONDON, 2025, 3, 7, 16, 0), first_response=True)
    assert ticket.first_response_due_at is None
    assert ticket.resolution_due_at is None


@pytest.mark.django_db
def test_a_reopen_starts_a_new_resolution_clock_only(merchant, policies):
    ticket = FeedbackFactory(merchant=merchant)
    sla_due_set(feedback=ticket, at=local(LONDON, 2025, 3, 7, 16, 0), first_response=True)
    first_response_due = ticket.first_response_due_at
    reopened = local(LONDON, 2025, 3, 12, 9, 0)
    sla_due_set(feedback=ticket, at=reopened, first_response=False)
    assert ticket.first_response_due_at == first_response_due
    assert ticket.resolution_due_at == local(LONDON, 2025, 3, 12, 17, 0)


@pytest.mark.django_db
def test_pending_from_tuesday_ten_to_thursday_ten_moves_due_times_by_16_business_hours(
    merchant, policies
):
    tuesday_nine = local(LONDON, 2025, 3, 11, 9, 0)
    ticket = FeedbackFactory(merchant=merchant)
    sla_due_set(feedback=ticket, at=tuesday_nine, first_response=True)
    assert ticket.first_response_due_at == local(LONDON, 2025, 3, 11, 11, 0)
    assert ticket.resolution_due_at == local(LONDON, 2025, 3, 11, 17, 0)
    before = (ticket.first_response_due_at, ticket.resolution_due_at)

    sla_pause(feedback=ticket, at=local(LONDON, 2025, 3, 11, 10, 0))
    assert ticket.sla_paused_at == local(LONDON, 2025, 3, 11, 10, 0)
    sla_resume(feedback=ticket, at=local(LONDON, 2025, 3, 13, 10, 0))

    assert ticket.sla_paused_at is None
    assert ticket.first_response_due_at == local(LONDON, 2025, 3, 13, 11, 0)
    assert ticket.resolution_due_at == local(LONDON, 2025, 3, 13, 17, 0)
    support, _ = office()
    for old, new in zip(
        before, (ticket.first_response_due_at, ticket.resolution_due_at), strict=True
    ):
        assert business_minutes(hours=support, merchant=merchant, start=old, end=new) == 16 * 60


@pytest.mark.django_db
def test_a_pause_over_the_weekend_only_counts_working_hours(merchant, policies):
    ticket = FeedbackFactory(merchant=merchant)
    sla_due_set(feedback=ticket, at=local(LONDON, 2025, 3, 7, 16, 0), first_response=True)
    sla_pause(feedback=ticket, at=local(LONDON, 2025, 3, 7, 17, 0))
    sla_resume(feedback=ticket, at=local(LONDON, 2025, 3, 10, 9, 0))
    assert ticket.first_response_due_at == local(LONDON, 2025, 3, 10, 10, 0)


@pytest.mark.django_db
def test_raising_priority_takes_the_difference_and_keeps_earlier_pauses(merchant, policies):
    ticket = FeedbackFactory(merchant=merchant)
    sla_due_set(feedback=ticket, at=local(LONDON, 2025, 3, 11, 9, 0), first_response=True)
    sla_pause(feedback=ticket, at=local(LONDON, 2025, 3, 11, 10, 0))
    sla_resume(feedback=ticket, at=local(LONDON, 2025, 3, 11, 12, 0))  # two hours on hold
    ticket.priority = "high"
    sla_priority_changed(feedback=ticket, old_priority="normal", at=local(LONDON, 2025, 3, 11, 12))
    # 09:00 + 60 min + 2 h paused; 09:00 + 240 min + 2 h paused.
    assert ticket.first_response_due_at == local(LONDON, 2025, 3, 11, 12, 0)
    assert ticket.resolution_due_at == local(LONDON, 2025, 3, 11, 15, 0)


@pytest.mark.django_db
def test_a_priority_change_leaves_a_met_first_response_alone(merchant, policies):
    ticket = FeedbackFactory(merchant=merchant)
    sla_due_set(feedback=ticket, at=local(LONDON, 2025, 3, 11, 9, 0), first_response=True)
    ticket.first_response_at = local(LONDON, 2025, 3, 11, 9, 30)
    ticket.priority = "high"
    sla_priority_changed(feedback=ticket, old_priority="normal", at=local(LONDON, 2025, 3, 11, 10))
    assert ticket.first_response_due_at == local(LONDON, 2025, 3, 11, 11, 0)
    assert ticket.resolution_due_at == local(LONDON, 2025, 3, 11, 13, 0)


@pytest.mark.django_db
def test_a_priority_without_policy_drops_the_clock_and_one_with_a_policy_starts_it(
    merchant, policies
):
    ticket = FeedbackFactory(merchant=merchant)
    sla_due_set(feedback=ticket, at=local(LONDON, 2025, 3, 11, 9, 0), first_response=True)
    ticket.priority = "low"
    sla_priority_changed(feedback=ticket, old_priority="normal", at=local(LONDON, 2025, 3, 11, 10))
    assert (ticket.first_response_due_at, ticket.resolution_due_at) == (None, None)
    ticket.priority = "high"
    sla_priority_changed(feedback=ticket, old_priority="low", at=local(LONDON, 2025, 3, 11, 10))
    assert ticket.first_response_due_at == local(LONDON, 2025, 3, 11, 11, 0)
    assert ticket.resolution_due_at == local(LONDON, 2025, 3, 11, 14, 0)


@pytest.mark.django_db
def test_support_settings_are_created_once_with_a_secret(merchant):
    first = support_settings_of(merchant=merchant)
    again = support_settings_of(merchant=merchant)
    assert first.pk == again.pk
    assert first.working_days == [1, 2, 3, 4, 5]
    assert (first.day_starts, first.day_ends) == (time(9), time(17))
    assert len(first.inbound_secret) == 64
    assert again.inbound_secret == first.inbound_secret
    assert SupportSettings.objects.filter(merchant=merchant).count() == 1


@pytest.mark.django_db
def test_settings_saved_without_a_secret_get_one(merchant):
    SupportSettings.objects.create(merchant=merchant)
    assert len(support_settings_of(merchant=merchant).inbound_secret) == 64
    assert SupportSettings.objects.get(merchant=merchant).inbound_secret


@pytest.mark.django_db
def test_due_times_survive_a_save(merchant, policies):
    ticket = FeedbackFactory(merchant=merchant)
    sla_due_set(feedback=ticket, at=local(LONDON, 2025, 3, 7, 16, 0), first_response=True)
    ticket.save()
    stored = Feedback.objects.get(pk=ticket.pk)
    assert stored.first_response_due_at == local(LONDON, 2025, 3, 10, 10, 0)
