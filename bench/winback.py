"""Win-back at 1M customers: a day's selection (who crossed the campaign's 90 days since
yesterday's pass, and whose re-entry days ended) against the same selection in one
hand-written statement; and a campaign's first pass (every quiet customer entered, held
out by the same hash, and the others' messages queued) against one hand-written statement
that writes the same entries and messages."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db import connection

from bench.harness import Row, median, say, timed

NAME = "Bench win-back"
DAY_ROUNDS = 21

# The customers who enter, as campaign_audience builds it for a fixed-days win-back with
# consent only and no other filter (_QUIET: the first pass, with no entries yet), without
# anyone in the campaign within re-entry days (_WHO: every later pass).
_QUIET = """
c.merchant_id = %(merchant)s AND c.erased_at IS NULL AND c.email <> ''
AND c.marketing_consent AND c.last_order_at <= %(cutoff)s
"""
_WHO = (
    _QUIET
    + """
AND NOT EXISTS (SELECT 1 FROM campaigns_campaignentry r WHERE r.campaign_id = %(campaign)s
                AND r.customer_id = c.id AND r.entered_at > %(again)s)
"""
)
DAY_SQL = f"""
SELECT c.id FROM customers_customer c WHERE {_WHO} AND c.last_order_at > %(crossed)s
UNION
SELECT c.id FROM customers_customer c
JOIN campaigns_campaignentry e ON e.customer_id = c.id AND e.campaign_id = %(campaign)s
  AND e.entered_at > %(ended_from)s AND e.entered_at <= %(ended_to)s
WHERE {_WHO}
"""
# The holdout hash of campaigns.services.campaigns.held_out: the first 8 bytes of SHA-256
# of "campaign:customer" as an unsigned number, modulo 10,000, under percent * 100.
_BUCKET = """
(('x' || encode(substr(sha256(convert_to(%(campaign)s::text || ':' || c.id::text, 'UTF8')),
  1, 8), 'hex'))::bit(64)::bigint::numeric + 18446744073709551616) %% 18446744073709551616
  %% 10000
"""
FIRST_SQL = f"""
WITH entered AS (
  INSERT INTO campaigns_campaignentry (merchant_id, campaign_id, customer_id, entered_on,
    entered_at, starts_at, held_out)
  SELECT %(merchant)s, %(campaign)s, c.id, %(day)s, %(at)s, %(at)s,
         {_BUCKET} < %(percent)s * 100
  FROM customers_customer c WHERE {_QUIET}
  ON CONFLICT DO NOTHING
  RETURNING id, customer_id, held_out
)
INSERT INTO campaigns_message (merchant_id, customer_id, kind, template_id, campaign_id,
  entry_id, key, data, state, skip_reason, failure, attempts, address, language, subject,
  code, esp_message_id, created_at, send_after)
SELECT %(merchant)s, e.customer_id, 'marketing', %(template)s, %(campaign)s, e.id,
  'campaign:' || %(campaign)s || ':' || e.id || ':1',
  jsonb_build_object('entered_at', %(at_iso)s::text, 'step', 1, 'offer_id', NULL),
  'queued', '', '', 0, '', '', '', '', '', %(at)s, %(at)s
FROM entered e WHERE NOT e.held_out
"""


def _campaign(merchant):
    from campaigns.models import Campaign, CampaignStep, MessageTemplate

    template, _made = MessageTemplate.objects.get_or_create(
        merchant=merchant, name=NAME,
        defaults={"subject": "We miss you", "body": "Come back, {{ first_name }}."},
    )  # fmt: skip
    campaign, _made = Campaign.objects.get_or_create(
        merchant=merchant, name=NAME,
        defaults={"kind": "winback", "days_since": 90, "holdout_percent": 10,
                  "reentry_days": 180, "state": "active"},
    )  # fmt: skip
    CampaignStep.objects.get_or_create(campaign=campaign, position=1,
                                       defaults={"template": template})  # fmt: skip
    return campaign, template


def _reset(campaign) -> None:
    from campaigns.models import Campaign
    from merchants.models import JobRun

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM campaigns_message WHERE campaign_id = %s", [campaign.pk])
        cursor.execute("DELETE FROM campaigns_campaignentry WHERE campaign_id = %s", [campaign.pk])
        cursor.execute("VACUUM ANALYZE campaigns_campaignentry")
    JobRun.objects.filter(job=f"campaigns.winback.{campaign.pk}").delete()
    Campaign.objects.filter(pk=campaign.pk).update(selected_until=None)


def _params(campaign, template, at: datetime, since: datetime | None = None) -> dict:
    days, again = timedelta(days=campaign.days_since), timedelta(days=campaign.reentry_days)
    since = since or at
    return {
        "merchant": campaign.merchant_id, "campaign": campaign.pk, "template": template.pk,
        "cutoff": at - days, "again": at - again, "crossed": since - days,
        "ended_from": since - again, "ended_to": at - again, "percent": campaign.holdout_percent,
        "at": at, "at_iso": at.isoformat(), "day": at.astimezone(campaign.merchant.zone).date(),
    }  # fmt: skip


def _counts(campaign) -> tuple[int, int, int]:
    from campaigns.models import CampaignEntry, Message

    entries = CampaignEntry.objects.filter(campaign=campaign)
    return (entries.count(), entries.filter(held_out=True).count(),
            Message.objects.filter(campaign=campaign).count())  # fmt: skip


def run_winback(ctx) -> list[Row]:
    from campaigns.models import Campaign
    from campaigns.services.campaigns import campaign_enter, candidate_ids

    merchant = ctx.merchant
    campaign, template = _campaign(merchant)
    zone = merchant.zone
    today = datetime.now(zone).date()
    at = datetime.combine(today, time(10), tzinfo=zone)
    rounds = max(ctx.rounds, 1)
    from customers.models import Customer

    size = f"{Customer.objects.filter(merchant=merchant).count():,} customers"

    # The first pass: everyone quiet, entered, held out, and messaged.
    ours, bare, made = [], [], None
    for _round in range(rounds):
        _reset(campaign)
        ours.append(timed(lambda: campaign_enter(campaign_id=campaign.pk, at=at)))
        ours_made = _counts(campaign)
        _reset(campaign)
        with connection.cursor() as cursor:
            bare.append(timed(lambda: cursor.execute(FIRST_SQL, _params(campaign, template, at))))
        bare_made = _counts(campaign)
        if ours_made != bare_made:
            raise AssertionError(f"first pass: ours made {ours_made}, the SQL {bare_made}")
        made = ours_made
        say(f"  first pass: ours {ours[-1]:.1f} s, SQL {bare[-1]:.1f} s, {made}")
    first = Row(
        scenario="win-back first pass", data=f"{size}, {made[0]:,} quiet over 90 days",
        ours=f"{median(ours):.1f} s", baseline=f"{median(bare):.1f} s (one INSERT … SELECT)",
        ratio=round(median(ours) / median(bare), 2),
        budget="set-based marking (1,000 rows a statement)",
        holds=True,
        notes=[f"{made[0]:,} entries, {made[1]:,} held out (the same hash in SQL), "
               f"{made[2]:,} messages queued; both write the same rows (counts checked)"],
    )  # fmt: skip

    # A day later: who crossed 90 days since yesterday, and whose re-entry days ended.
    _reset(campaign)
    campaign_enter(campaign_id=campaign.pk, at=at)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_campaignentry")  # as autovacuum soon would
    next_day = at + timedelta(days=1)
    campaign = Campaign.objects.select_related("merchant").get(pk=campaign.pk)
    params = _params(campaign, template, next_day, since=campaign.selected_until)
    day_ours, day_bare = [], []
    found_ours: list[int] = []
    found_bare: list[int] = []
    for _round in range(DAY_ROUNDS):
        day_ours.append(timed(lambda: found_ours.__setitem__(
            slice(None), list(candidate_ids(campaign, next_day)))))  # fmt: skip
        with connection.cursor() as cursor:

            def bare_day(cursor=cursor):
                cursor.execute(DAY_SQL, params)
                found_bare[:] = [row[0] for row in cursor.fetchall()]

            day_bare.append(timed(bare_day))
    if sorted(found_ours) != sorted(found_bare):
        raise AssertionError(f"day: ours {len(found_ours)} customers, the SQL {len(found_bare)}")
    ms_ours, ms_bare = median(day_ours) * 1000, median(day_bare) * 1000
    day = Row(
        scenario="win-back selection, a day's pass", data=f"{size}, {made[0]:,} in the campaign",
        ours=f"{ms_ours:.1f} ms", baseline=f"{ms_bare:.1f} ms (one hand-written SELECT)",
        ratio=round(ms_ours / ms_bare, 2), budget="≤ 50 ms per merchant on an index",
        holds=ms_ours <= 50,
        notes=[f"{len(found_ours):,} customers found by both; median of {DAY_ROUNDS} "
               "alternating runs"],
    )  # fmt: skip
    _reset(campaign)
    return [first, day]
