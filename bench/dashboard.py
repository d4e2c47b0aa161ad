"""make bench scenario: the staff dashboard home as an owner opens it, the shell and the two
panels it loads (the loyalty figures and the inbox figures), each against a bare view that
reads the same rows with hand-written SQL and renders the same template; the bench checks
each bare view answers the same page."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.timezone import now

from bench.harness import Row, loads_compared, same_page, say, served_at, web_server, wrk

# --- The bare views ------------------------------------------------------------------------


def _rows(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@served_at("/")
def bare_dashboard(request: HttpRequest, merchant_id: int) -> HttpResponse:
    from merchants.models import AuditEvent, JobRun
    from merchants.panels import panels_for
    from merchants.roles import COMING, role_permissions
    from merchants.services import HEARTBEAT_JOB

    permissions = role_permissions(request.staff_member.role)
    heartbeat = list(JobRun.objects.raw(
        "SELECT * FROM merchants_jobrun WHERE job = %s AND state = 'done' "
        "ORDER BY started_at DESC LIMIT 1", [HEARTBEAT_JOB]))  # fmt: skip
    events = list(AuditEvent.objects.raw(
        "SELECT * FROM merchants_auditevent WHERE merchant_id = %s "
        "ORDER BY created_at DESC, id DESC LIMIT 8", [merchant_id]))  # fmt: skip
    (team,) = _rows("SELECT count(*) FROM merchants_staffmember WHERE merchant_id = %s",
                    [merchant_id])[0]  # fmt: skip
    context = {
        "role_permissions": permissions,
        "coming": COMING,
        "heartbeat": heartbeat[0] if heartbeat else None,
        "recent_events": events,
        "team_size": team,
        "panels": panels_for("dashboard", permissions),
    }
    return render(request, "merchants/dashboard.html", context)


def _loyalty_figures(merchant, program, merchant_id: int) -> dict:
    """The figures by hand: one pass over the ledger for the five sums, one over the
    accounts for the rest."""
    from loyalty.models import Tier

    at = now()
    month = at.astimezone(merchant.zone).replace(day=1, hour=0, minute=0, second=0,
                                                 microsecond=0)  # fmt: skip
    issued_month, redeemed_month, expired_month, issued_all, redeemed_all = _rows(
        "SELECT sum(points) FILTER (WHERE kind IN ('earn', 'adjust') AND points > 0 "
        "AND created_at >= %(month)s), sum(points) FILTER (WHERE kind = 'redeem' "
        "AND created_at >= %(month)s), sum(points) FILTER (WHERE kind = 'expire' "
        "AND created_at >= %(month)s), sum(points) FILTER (WHERE kind IN ('earn', 'adjust') "
        "AND points > 0), sum(points) FILTER (WHERE kind = 'redeem') "
        "FROM loyalty_pointsentry WHERE merchant_id = %(merchant)s",
        {"merchant": merchant_id, "month": month},
    )[0]
    by_tier = _rows(
        "SELECT tier_id, count(*), sum(available), sum(pending) FROM loyalty_pointsaccount "
        "WHERE merchant_id = %s GROUP BY tier_id", [merchant_id])  # fmt: skip
    counts = {tier: n for tier, n, _available, _pending in by_tier}
    outstanding = sum((available or 0) + (pending or 0) for _t, _n, available, pending in by_tier)
    tiers = list(Tier.objects.raw(
        "SELECT * FROM loyalty_tier WHERE merchant_id = %s ORDER BY threshold, id",
        [merchant_id]))  # fmt: skip
    issued_all = issued_all or 0
    return {
        "members": sum(counts.values()),
        "issued_month": issued_month or 0,
        "redeemed_month": -(redeemed_month or 0),
        "expired_month": -(expired_month or 0),
        "redemption_rate": (-(redeemed_all or 0) / issued_all) if issued_all else None,
        "outstanding_points": outstanding,
        "liability": outstanding * program.point_value if program else None,
        "tiers": [(tier, counts.get(tier.pk, 0)) for tier in tiers],
        "no_tier": counts.get(None, 0),
        "as_of": at,
    }


@served_at("/loyalty/figures/")
def bare_loyalty_figures(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """The same figures kept as long in the same cache: what anyone would do for figures
    that take seconds to add up, so the comparison is of the page, not of the sums."""
    from django.core.cache import cache

    from loyalty.models import Program
    from loyalty.selectors import FIGURES_SECONDS, figures_key

    program = next(iter(Program.objects.raw(
        "SELECT * FROM loyalty_program WHERE merchant_id = %s", [merchant_id])), None)  # fmt: skip
    figures = cache.get(figures_key(merchant_id))
    if figures is None:
        figures = _loyalty_figures(request.merchant, program, merchant_id)
        cache.set(figures_key(merchant_id), figures, FIGURES_SECONDS)
    return render(request, "loyalty/partials/_figures.html",
                  {"program": program, "figures": figures})  # fmt: skip


@served_at("/feedback/figures/")
def bare_inbox_figures(request: HttpRequest, merchant_id: int) -> HttpResponse:
    from feedback.selectors import BREACHED_STATES, UNFINISHED_STATES

    unassigned, mine, breached, pending = _rows(
        "SELECT count(*) FILTER (WHERE assignee_id IS NULL), "
        "count(*) FILTER (WHERE assignee_id = %(member)s), "
        "count(*) FILTER (WHERE breached_at IS NOT NULL AND state = ANY(%(breached)s)), "
        "count(*) FILTER (WHERE state = 'pending') FROM feedback_feedback "
        "WHERE merchant_id = %(merchant)s AND state = ANY(%(unfinished)s)",
        {"merchant": merchant_id, "member": request.staff_member.pk,
         "breached": [str(s) for s in BREACHED_STATES],
         "unfinished": [str(s) for s in UNFINISHED_STATES]},
    )[0]  # fmt: skip
    figures = {"unassigned": unassigned, "mine": mine, "breached": breached, "pending": pending}
    return render(request, "feedback/partials/_figures.html", {"figures": figures})


# --- The scenario --------------------------------------------------------------------------


def run_dashboard(ctx) -> list[Row]:
    from bench.customers import _load_row, _staff_cookie
    from bench.loyalty import program_ready
    from customers.models import Customer
    from feedback.models import Feedback

    merchant = ctx.merchant
    program_ready(merchant)
    headers = {"Cookie": _staff_cookie(merchant)}
    customers = Customer.objects.filter(merchant=merchant).count()
    tickets = Feedback.objects.filter(merchant=merchant).count()
    data = f"{customers:,} customers and points accounts, {tickets:,} tickets"
    bare = f"/bench/bare/{merchant.pk}/dashboard"
    cases = [
        ("dashboard home (the shell)", "/", f"{bare}/"),
        ("dashboard, loyalty figures panel", "/loyalty/figures/", f"{bare}/loyalty/"),
        ("dashboard, inbox figures panel", "/feedback/figures/", f"{bare}/feedback/"),
    ]
    rows = []
    with web_server(ctx.env) as base:
        for name, ours, theirs in cases:
            size = same_page(base, ours, theirs, headers)
            say(f"  {name}…")
            mine, bares = loads_compared(
                lambda path=ours: wrk(base + path, headers=headers, seconds=ctx.seconds),
                lambda path=theirs: wrk(base + path, headers=headers, seconds=ctx.seconds),
                ctx.rounds,
            )
            row = _load_row(name, data, mine, bares)
            row.notes.append(f"the bare view answers the same {size:,} bytes (checked)")
            rows.append(row)
    return rows
