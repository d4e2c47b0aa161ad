from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.utils.timezone import now

from customers.models import Customer, Segment
from customers.personas import segments_and_personas_refresh
from customers.segments import segment_for
from customers.services import CustomerData, order_cancel, order_ingest
from tests.customers.factories import CustomerFactory, order_data
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

# (recency, frequency, monetary) → segment, for every segment, with its edges.
TABLE = [
    ((5, 5, 5), Segment.CHAMPIONS),
    ((4, 4, 4), Segment.CHAMPIONS),
    ((1, 5, 5), Segment.CANT_LOSE_THEM),
    ((1, 4, 4), Segment.CANT_LOSE_THEM),
    ((2, 3, 3), Segment.LOYAL),
    ((5, 3, 5), Segment.LOYAL),
    ((5, 1, 1), Segment.NEW),
    ((4, 1, 1), Segment.NEW),
    ((3, 1, 1), Segment.PROMISING),
    ((3, 3, 2), Segment.POTENTIAL_LOYALIST),
    ((5, 2, 1), Segment.POTENTIAL_LOYALIST),
    ((2, 2, 3), Segment.NEED_ATTENTION),
    ((2, 2, 2), Segment.NEED_ATTENTION),
    ((2, 1, 2), Segment.ABOUT_TO_SLEEP),
    ((2, 2, 1), Segment.ABOUT_TO_SLEEP),
    ((1, 3, 2), Segment.AT_RISK),
    ((2, 5, 2), Segment.AT_RISK),
    ((1, 2, 2), Segment.AT_RISK),
    ((1, 1, 2), Segment.HIBERNATING),
    ((1, 1, 1), Segment.HIBERNATING),
    ((3, 5, 1), Segment.LOST),
    ((5, 1, 5), Segment.LOST),
]


def _refresh(*, merchant, at=None) -> int:
    """The nightly refresh; how many customers it scored."""
    return segments_and_personas_refresh(merchant=merchant, at=at)["scored"]


@pytest.mark.parametrize(("scores", "segment"), TABLE)
def test_segment_rules(scores, segment):
    assert segment_for(*scores) == segment


def test_every_segment_can_be_reached():
    reached = {segment_for(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    assert reached == set(Segment.values)


def test_cant_lose_them_wins_over_at_risk_and_loyal():
    # R1 F5 M5 would also be At Risk; it must be Can't Lose Them.
    assert segment_for(1, 5, 5) == Segment.CANT_LOSE_THEM


def _population(shop, targets):
    """Hand-built customers with the given (R, F, M) levels, plus fillers so every level of
    every measure holds the same number of customers: levels are then exact fifths."""
    per_level = max(max(Counter(t[i] for t in targets).values()) for i in range(3))
    per_level = max(per_level, -(-len(targets) // 5))
    deficits = [
        [
            level
            for level in range(1, 6)
            for _ in range(per_level - sum(1 for t in targets if t[i] == level))
        ]
        for i in range(3)
    ]
    everyone = list(targets) + list(zip(*deficits, strict=True))
    at = now()
    made = []
    for index, (r, f, m) in enumerate(everyone):
        result = order_ingest(
            merchant=shop,
            data=order_data(
                f"o-{index}",
                total=str(m * 100),
                placed_at=at - timedelta(days=300 - r * 50),
                customer=CustomerData(external_id=f"c-{index}"),
            ),
        )
        Customer.objects.filter(pk=result.order.customer_id).update(orders_count=f)
        made.append(result.order.customer_id)
    return made[: len(targets)], at


def test_hand_built_customers_land_in_every_segment(db):
    shop = MerchantFactory()
    wanted = {}
    for scores, segment in TABLE:
        wanted.setdefault(segment, scores)
    targets = list(wanted.values())
    ids, at = _population(shop, targets)

    assert _refresh(merchant=shop, at=at) > len(targets)

    for customer_id, (segment, scores) in zip(ids, wanted.items(), strict=True):
        customer = Customer.objects.get(pk=customer_id)
        got = (customer.recency_score, customer.frequency_score, customer.monetary_score)
        assert got == scores, segment
        assert customer.segment == segment, scores


def test_ties_share_a_score_and_one_timers_are_not_scored_high():
    shop = MerchantFactory()
    for index in range(10):
        result = order_ingest(
            merchant=shop,
            data=order_data(f"o-{index}", customer=CustomerData(external_id=f"c-{index}")),
        )
        Customer.objects.filter(pk=result.order.customer_id).update(
            orders_count=5 if index == 9 else (2 if index >= 6 else 1)
        )
    _refresh(merchant=shop)
    by_orders = dict(Customer.objects.values_list("orders_count", "frequency_score").distinct())
    assert by_orders == {1: 1, 2: 4, 5: 5}


def test_money_counts_the_last_365_days_without_cancelled_orders_or_refunds():
    shop = MerchantFactory()
    with time_machine.travel("2026-06-30 12:00Z", tick=False):
        person = CustomerData(external_id="m")
        order_ingest(
            merchant=shop,
            data=order_data(
                "old", total="900.00", placed_at=now() - timedelta(days=366), customer=person
            ),
        )
        order_ingest(
            merchant=shop,
            data=order_data(
                "kept", total="40.00", placed_at=now() - timedelta(days=10), customer=person
            ),
        )
        order_ingest(
            merchant=shop,
            data=order_data(
                "gone", total="500.00", placed_at=now() - timedelta(days=5), customer=person
            ),
        )
        order_cancel(merchant=shop, source="api", external_id="gone")
        _refresh(merchant=shop)
    assert Customer.objects.get(external_id="m").spent_last_365_days == 40


def test_customers_without_orders_erased_ones_and_other_merchants_are_left_out():
    shop, other = MerchantFactory(), MerchantFactory()
    never = CustomerFactory(merchant=shop)
    order_ingest(merchant=shop, data=order_data("1", customer=CustomerData(external_id="a")))
    order_ingest(merchant=other, data=order_data("1", customer=CustomerData(external_id="a")))
    erased = order_ingest(
        merchant=shop, data=order_data("2", customer=CustomerData(external_id="b"))
    ).order.customer
    Customer.objects.filter(pk=erased.pk).update(erased_at=now(), segment="champions")

    assert _refresh(merchant=shop) == 1

    never.refresh_from_db()
    assert (never.segment, never.recency_score) == ("", None)
    assert Customer.objects.get(pk=erased.pk).segment == ""
    assert Customer.objects.get(merchant=other).segment == ""


def test_a_merchant_without_orders_refreshes_to_nothing():
    shop = MerchantFactory()
    CustomerFactory(merchant=shop)
    assert _refresh(merchant=shop) == 0


def test_the_nightly_refresh_runs_once_per_merchant_day_in_local_time(
    django_capture_on_commit_callbacks,
):
    from customers.personas import SEGMENTS_JOB, segments_due, segments_refresh_nightly
    from merchants.models import JobRun

    tehran = MerchantFactory(timezone="Asia/Tehran")  # UTC+3:30
    new_york = MerchantFactory(timezone="America/New_York")  # UTC-5 in November
    order_ingest(merchant=tehran, data=order_data("1", customer=CustomerData(external_id="t")))

    with time_machine.travel("2026-11-23 23:00Z", tick=False):
        due = dict(segments_due())
    assert due[tehran.pk] == "2026-11-24"  # 02:30 in Tehran
    assert due[new_york.pk] == "2026-11-23"  # 18:00 in New York: that day's night is past
    with time_machine.travel("2026-11-24 07:30Z", tick=False):
        assert dict(segments_due())[new_york.pk] == "2026-11-24"  # 02:30 in New York

    assert segments_refresh_nightly(merchant_id=tehran.pk, local_date="2026-11-24") is True
    assert segments_refresh_nightly(merchant_id=tehran.pk, local_date="2026-11-24") is False
    run = JobRun.objects.get(job=SEGMENTS_JOB, merchant=tehran)
    assert (run.detail["scored"], run.detail["personas"]) == (1, {})
    assert run.detail["written"] > 0
    assert Customer.objects.get(merchant=tehran).segment != ""


def test_an_import_refreshes_segments(tmp_path):

    from django.core.files.uploadedfile import SimpleUploadedFile

    from customers.imports import import_job_run
    from customers.models import ImportJob

    shop = MerchantFactory(base_currency="USD")
    csv = "order_id,placed_at,customer_external_id,total\n1,2026-01-01T10:00:00Z,a,10.00\n"
    job = ImportJob.objects.create(
        merchant=shop,
        kind="orders",
        file=SimpleUploadedFile("o.csv", csv.encode()),
        original_name="o.csv",
    )
    import_job_run(job_id=job.pk)
    assert Customer.objects.get(merchant=shop).segment != ""
