"""The loyalty program's scheduled work (docs/business-rules.md §9), each run claimed by a JobRun
unique on (job, merchant, period) so a second run of the same period does nothing, and
each keyed inside so a retried run does not repeat what it already did."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from customers.models import Activity, Customer
from customers.selectors import born_on
from loyalty.models import EarningRule, PointsAccount, PointsEntry, Program
from loyalty.services.expiry import expiry_reminders, pending_confirm, points_expire
from loyalty.services.ledger import accounts_for, accounts_locked, entry_write, lot_expiry
from loyalty.services.memberships import memberships_run
from loyalty.services.tiers import tiers_at_risk_warn, tiers_recalculate
from merchants.services import job_run_claim, job_run_finish

DAILY_LOCAL_HOUR = 2
DAILY_JOBS = ("loyalty.expiry", "loyalty.tiers", "loyalty.memberships", "loyalty.birthdays")


def programs_due(*, at: datetime | None = None) -> list[tuple[int, str]]:
    """(merchant id, merchant-local date) of each running program whose night has come."""
    at = at or now()
    due = []
    for program in Program.objects.filter(is_active=True).select_related("merchant"):
        local = at.astimezone(program.merchant.zone)
        if local.hour >= DAILY_LOCAL_HOUR:
            due.append((program.merchant_id, local.date().isoformat()))
    return due


def daily_job_run(*, job: str, merchant_id: int, local_date: str) -> dict | None:
    """Runs one of the daily jobs for one merchant-day, once; None when already claimed."""
    program = Program.objects.select_related("merchant").get(merchant_id=merchant_id)
    run = job_run_claim(job=job, merchant=program.merchant, period_key=local_date)
    if run is None:
        return None
    at = now()
    if job == "loyalty.expiry":
        detail = {
            "expired_points": points_expire(program=program, at=at),
            "reminders": expiry_reminders(program=program, at=at),
        }
    elif job == "loyalty.tiers":
        detail = {
            "changed": tiers_recalculate(merchant=program.merchant, at=at),
            "warned": tiers_at_risk_warn(program=program, at=at),
        }
    elif job == "loyalty.memberships":
        detail = memberships_run(merchant_id=merchant_id, at=at)
    elif job == "loyalty.birthdays":
        detail = {"customers": birthdays_reward(program=program, at=at)}
    else:
        raise ValueError(f"Unknown loyalty job {job!r}")
    job_run_finish(run=run, detail=detail)
    return detail


def pending_confirm_hourly(*, at: datetime | None = None) -> dict[int, int]:
    """Hourly, every running program: points past their return window become available.
    Safe to run twice: each account remembers how far it was confirmed."""
    at = at or now()
    hour = at.strftime("%Y-%m-%dT%H")
    moved = {}
    for program in Program.objects.filter(is_active=True).select_related("merchant"):
        run = job_run_claim(job="loyalty.pending", merchant=program.merchant, period_key=hour)
        if run is None:
            continue
        moved[program.merchant_id] = pending_confirm(merchant_id=program.merchant_id, at=at)
        job_run_finish(run=run, detail={"accounts": moved[program.merchant_id]})
    return moved


def birthdays_reward(*, program: Program, at: datetime | None = None) -> int:
    """Birthday points (the birthday rule's, and the customer's tier bonus) once a year, on
    the merchant-local day; a Feb 29 birthday counts on Feb 28 in other years."""
    at = at or now()
    local = at.astimezone(program.merchant.zone).date()
    rules = [
        rule
        for rule in EarningRule.objects.filter(
            merchant_id=program.merchant_id,
            kind=EarningRule.Kind.EVENT,
            event=EarningRule.Event.BIRTHDAY,
            is_active=True,
        )
        if (rule.starts_at is None or rule.starts_at <= at)
        and (rule.ends_at is None or at < rule.ends_at)
    ]
    customers = Customer.objects.filter(
        born_on(local), merchant_id=program.merchant_id, erased_at__isnull=True
    ).order_by("pk")
    rewarded = 0
    last_id = 0
    while True:
        chunk = list(customers.filter(pk__gt=last_id)[:500])
        if not chunk:
            return rewarded
        last_id = chunk[-1].pk
        with transaction.atomic():
            accounts = accounts_for(customers=chunk)
            locked = accounts_locked(account_ids=[a.pk for a in accounts.values()])
            for account in locked.values():
                gifts = [(rule.pk, rule.points, rule.name) for rule in rules]
                if account.tier_id and account.tier.birthday_points:
                    gifts.append(("tier", account.tier.birthday_points, account.tier.name))
                for source, points, name in gifts:
                    if points <= 0:
                        continue
                    _entry, created = entry_write(
                        account=account,
                        kind=PointsEntry.Kind.EARN,
                        points=points,
                        key=f"birthday:{account.pk}:{local.year}:{source}",
                        at=at,
                        expires_at=lot_expiry(
                            program=program, available_at=at, zone=program.merchant.zone
                        ),
                        rule_id=source if source != "tier" else None,
                        note=name[:200],
                        activity=Activity.Kind.POINTS_EARNED,
                    )
                    rewarded += created


def accounts_mismatched(*, merchant_id: int | None = None):
    """Accounts whose available or pending balance differs from the sum of their ledger
    (there should be none), with both figures. One grouped pass; rows only for mismatches."""
    accounts = PointsAccount.objects.all()
    if merchant_id is not None:
        accounts = accounts.filter(merchant_id=merchant_id)
    counted = Q(entries__available_at__lte=F("confirmed_through"))
    return (
        accounts.annotate(
            ledger_available=Coalesce(Sum("entries__points", filter=counted), Value(0)),
            ledger_pending=Coalesce(Sum("entries__points", filter=~counted), Value(0)),
        )
        .exclude(available=F("ledger_available"), pending=F("ledger_pending"))
        .select_related("merchant", "customer")
        .order_by("pk")
    )
