"""The product's URLs plus the baselines the benchmarks compare with, served by the same
server behind the same middleware."""

from __future__ import annotations

from html import escape

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.timezone import now

from bench.bare_orders import bare_order_create
from bench.campaigns import bare_code_redeem, bare_code_validate
from bench.dashboard import bare_dashboard, bare_inbox_figures, bare_loyalty_figures
from bench.harness import served_at
from config.urls import urlpatterns as product_urlpatterns
from customers.forms import CustomerFilterForm
from customers.models import Activity, ConsentRecord, Customer, Order, OrderLine, Persona
from customers.selectors import COUNT_CAP
from merchants.panels import panels_for
from merchants.roles import role_permissions


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _table(rows: list[tuple]) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{escape(str(value))}</td>" for value in row) + "</tr>"
        for row in rows
    )
    return f"<table>{cells}</table>"


# The staff pages' bare views: the same rows fetched by raw SQL and rendered by the same
# template, with no permission check, no selectors and no query building.

LIST_SQL = """
SELECT c.id, c.first_name, c.last_name, c.email, c.external_id, c.orders_count,
  c.total_spent, c.average_order_value, c.last_order_at, c.segment, c.marketing_consent,
  c.persona_id, p.name AS persona_name, a.available AS points, {tier_name} AS tier_name
FROM customers_customer c
LEFT JOIN customers_persona p ON p.id = c.persona_id
LEFT JOIN loyalty_pointsaccount a ON a.customer_id = c.id
LEFT JOIN loyalty_tier t ON t.id = a.tier_id
WHERE c.merchant_id = %s AND c.erased_at IS NULL{where}
ORDER BY {order} LIMIT 51
"""
# How many the filters find, counted no further than the list says exactly.
LIST_COUNT_SQL = """
SELECT count(*) FROM (SELECT 1 FROM customers_customer c
  WHERE c.merchant_id = %s AND c.erased_at IS NULL{where} LIMIT {cap}) found
"""


def _text_sql(column: str, language: str, default: str) -> str:
    """A merchant's text read by hand in the page's language, else the shop's default,
    else any language it is written in."""
    order = dict.fromkeys((language, default, *(code for code, _name in settings.LANGUAGES)))
    found = ", ".join(f"NULLIF({column}_{code}, '')" for code in order)
    return f"COALESCE({found}, {column})"


def _with_persona(customer: Customer) -> Customer:
    if customer.persona_id:
        customer.persona = Persona(pk=customer.persona_id, name=customer.persona_name)
    return customer


@served_at("/customers/")
def bare_customer_list(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """The first page, newest first or by spend (?sort=spent); ?q= for names starting with it
    and ?segment= for one segment, as the list filters."""
    import json

    from django.template.loader import render_to_string
    from django.utils.safestring import mark_safe

    where, params = "", [merchant_id]
    if q := request.GET.get("q", "").upper():
        where += " AND (upper(c.first_name::text) LIKE %s OR upper(c.last_name::text) LIKE %s)"
        params += [f"{q}%", f"{q}%"]
    if segment := request.GET.get("segment", ""):
        where += " AND c.segment = %s"
        params.append(segment)
    order = "c.total_spent DESC, c.id DESC" if request.GET.get("sort") == "spent" else "c.id DESC"
    tier_name = _text_sql("t.name", request.LANGUAGE_CODE, request.merchant.default_language)
    sql = LIST_SQL.format(where=where, order=order, tier_name=tier_name)
    rows = [_with_persona(c) for c in Customer.objects.raw(sql, params)]
    with connection.cursor() as cursor:
        cursor.execute(LIST_COUNT_SQL.format(where=where, cap=COUNT_CAP + 1), params)
        (count,) = cursor.fetchone()
    rows_html = render_to_string(
        "customers/partials/_customer_rows.html",
        {"customers": rows[:50], "currency": request.merchant.base_currency},
        request=request,
        using="jinja2",
    )
    # The next page's link as the list writes it: after the last row shown.
    following = request.GET.copy()
    following.pop("after", None)
    next_query = ""
    if len(rows) > 50:
        last = rows[49]
        value = str(last.total_spent) if request.GET.get("sort") == "spent" else last.pk
        following["after"] = json.dumps([value, last.pk])
        next_query = following.urlencode()
    context = {
        "form": CustomerFilterForm(request.GET or None, merchant=request.merchant),
        "customers": rows[:50],
        "rows": mark_safe(rows_html),
        "next_query": next_query,
        "first_query": "",
        "is_first_page": True,
        "found": count,
        "count_cap": COUNT_CAP,
    }
    return render(request, "customers/customer_list.html", context)


@served_at(lambda merchant_id, pk: f"/customers/{pk}/")
def bare_customer_detail(request: HttpRequest, merchant_id: int, pk: int) -> HttpResponse:
    customer = Customer.objects.raw(
        "SELECT * FROM customers_customer WHERE merchant_id = %s AND id = %s", [merchant_id, pk]
    )[0]
    orders = list(
        Order.objects.raw(
            "SELECT * FROM customers_order WHERE customer_id = %s "
            "ORDER BY placed_at DESC, id DESC LIMIT 20",
            [pk],
        )
    )
    lines: dict[int, list] = {order.pk: [] for order in orders}
    if orders:
        for line in OrderLine.objects.raw(
            "SELECT * FROM customers_orderline WHERE order_id = ANY(%s) ORDER BY id",
            [list(lines)],
        ):
            lines[line.order_id].append(line)
    for order in orders:
        prefetched = OrderLine.objects.none()
        prefetched._result_cache = lines[order.pk]
        order._prefetched_objects_cache = {"lines": prefetched}
    context = {
        "customer": customer,
        "orders": orders,
        "timeline": list(
            Activity.objects.raw(
                "SELECT * FROM customers_activity WHERE customer_id = %s "
                "ORDER BY occurred_at DESC, id DESC LIMIT 50",
                [pk],
            )
        ),
        "consents": list(
            ConsentRecord.objects.raw(
                "SELECT * FROM customers_consentrecord WHERE customer_id = %s "
                "ORDER BY recorded_at DESC LIMIT 10",
                [pk],
            )
        ),
        # The other apps' panels load from their own URLs; the page names them.
        "panels": panels_for("customer-360", role_permissions(request.staff_member.role)),
    }
    return render(request, "customers/customer_detail.html", context)


# The floor: the same rows as text in an f-string, no template at all.


def floor_customer_list(request: HttpRequest, merchant_id: int) -> HttpResponse:
    rows = _rows(
        "SELECT id, first_name, last_name, email, orders_count, total_spent, last_order_at, "
        "segment FROM customers_customer WHERE merchant_id = %s ORDER BY id DESC LIMIT 50",
        [merchant_id],
    )
    return HttpResponse(f"<html><body>{_table(rows)}</body></html>")


# The rewards page's bare view: the same page (the same templates and panels, the same
# bytes but for the CSRF token and the CSP nonce) from the reads a careful engineer would
# write by hand for it, with no selectors, no panel registry and no cache: the session's
# customer with her shop, its program, her account with its ledger sums, her membership
# and her value on the tier basis in one statement; every list the page shows (tiers,
# rewards, plans, history, lots expiring soon, codes, friends, her tickets with their
# public thread) in a second, each as JSON. PostgreSQL only, as the bench is.

REWARDS_PAGE_SQL = """
SELECT c.first_name, c.language, c.portal_signed_out_at,
  m.name, m.slug, m.brand_color, m.base_currency, m.timezone, m.default_language,
  m.storefront_url, p.is_active, p.point_value, p.tier_basis, p.referrer_points,
  p.friend_reward_id,
  a.id, a.available, a.pending, a.referral_code, a.tier_id,
  s.matured, s.due, s.spent, s.earned,
  ms.id, ms.state, ms.current_period_end, ms.plan_id, o.orders, o.spent
FROM customers_customer c
JOIN merchants_merchant m ON m.id = c.merchant_id
LEFT JOIN loyalty_program p ON p.merchant_id = m.id
LEFT JOIN loyalty_pointsaccount a ON a.customer_id = c.id AND a.merchant_id = m.id
CROSS JOIN LATERAL (SELECT CASE p.tier_window
    WHEN 'rolling_year' THEN %(at)s - interval '12 months'
    WHEN 'calendar_year' THEN
      date_trunc('year', %(at)s AT TIME ZONE m.timezone) AT TIME ZONE m.timezone
  END AS start) w
LEFT JOIN LATERAL (SELECT
    sum(e.points) FILTER (WHERE e.available_at > a.confirmed_through
      AND e.available_at <= %(at)s) AS matured,
    sum(e.points) FILTER (WHERE e.expires_at <= %(at)s AND e.available_at <= %(at)s) AS due,
    sum(e.points) FILTER (WHERE e.expires_at IS NULL AND e.points < 0) AS spent,
    sum(e.points) FILTER (WHERE e.kind IN ('earn', 'reverse') AND e.available_at <= %(at)s
      AND (w.start IS NULL OR e.available_at >= w.start)) AS earned
  FROM loyalty_pointsentry e WHERE e.account_id = a.id) s ON true
LEFT JOIN LATERAL (SELECT m2.id, m2.state, m2.current_period_end, m2.plan_id
  FROM loyalty_membership m2 WHERE m2.customer_id = c.id AND m2.merchant_id = m.id
    AND m2.state IN ('trialing', 'active', 'past_due', 'cancelled')
  ORDER BY m2.started_at DESC, m2.id DESC LIMIT 1) ms ON true
LEFT JOIN LATERAL (SELECT count(*) AS orders, sum(bo.total - bo.refunded_amount) AS spent
  FROM customers_order bo WHERE p.tier_basis <> 'points' AND bo.customer_id = c.id
    AND bo.placed_at <= %(at)s AND bo.status <> 'cancelled'
    AND (w.start IS NULL OR bo.placed_at >= w.start)) o ON true
WHERE c.id = %(customer)s AND c.merchant_id = %(merchant)s AND c.erased_at IS NULL
"""
REWARDS_LISTS_SQL = """
SELECT
  (SELECT json_agg(t ORDER BY t.threshold, t.id) FROM (
    SELECT id, {name} AS name, threshold, multiplier, {perks} AS perks, birthday_points,
      exclusive_promotions
    FROM loyalty_tier WHERE merchant_id = %(merchant)s) t)::text,
  (SELECT json_agg(r ORDER BY r.points_cost, r.id) FROM (
    SELECT w.id, {w_name} AS name, {w_description} AS description, w.kind, w.points_cost,
      w.stock,
      w.per_customer_limit, w.max_units,
      ARRAY(SELECT rt.tier_id FROM loyalty_reward_tiers rt WHERE rt.reward_id = w.id) tiers,
      ARRAY(SELECT rp.membershipplan_id FROM loyalty_reward_plans rp
        WHERE rp.reward_id = w.id) plans,
      (SELECT count(*) FROM loyalty_redemption d WHERE w.per_customer_limit IS NOT NULL
        AND d.account_id = %(account)s AND d.reward_id = w.id AND d.state <> 'cancelled') taken
    FROM loyalty_reward w WHERE w.merchant_id = %(merchant)s AND w.is_active) r)::text,
  (SELECT json_agg(pl ORDER BY pl.price, pl.id) FROM (
    SELECT id, {name} AS name, price, currency, period, trial_days, multiplier,
      recurring_points, {perks} AS perks
    FROM loyalty_membershipplan WHERE merchant_id = %(merchant)s AND is_active) pl)::text,
  (SELECT json_agg(h ORDER BY h.created_at DESC, h.id DESC) FROM (
    SELECT e.id, e.kind, e.points, e.note, e.created_at, e.available_at, o.external_id
    FROM loyalty_pointsentry e LEFT JOIN customers_order o ON o.id = e.order_id
    WHERE e.account_id = %(account)s ORDER BY e.created_at DESC, e.id DESC LIMIT 20) h)::text,
  (SELECT json_agg(l ORDER BY l.expires_at, l.id) FROM (
    SELECT id, expires_at, points FROM loyalty_pointsentry WHERE account_id = %(account)s
      AND expires_at > %(at)s AND expires_at <= %(soon)s AND available_at <= %(at)s) l)::text,
  (SELECT json_agg(d ORDER BY d.created_at DESC, d.id DESC) FROM (
    SELECT d.id, d.code, d.state, d.created_at, {w_name} AS name FROM loyalty_redemption d
    JOIN loyalty_reward w ON w.id = d.reward_id WHERE d.account_id = %(account)s
    ORDER BY d.created_at DESC, d.id DESC LIMIT 10) d)::text,
  (SELECT json_agg(f ORDER BY f.created_at DESC, f.id DESC) FROM (
    SELECT r.id, r.state, r.created_at, f.first_name FROM loyalty_referral r
    JOIN customers_customer f ON f.id = r.friend_id
    WHERE r.referrer_id = %(customer)s AND r.merchant_id = %(merchant)s
    ORDER BY r.created_at DESC, r.id DESC LIMIT 10) f)::text,
  (SELECT json_agg(k ORDER BY k.created_at DESC, k.id DESC) FROM (
    SELECT f.id, f.subject, f.state, f.created_at,
      (SELECT json_agg(g ORDER BY g.created_at, g.id) FROM (
        SELECT g.id, g.kind, g.body, g.created_at FROM feedback_message g
        WHERE g.feedback_id = f.id AND g.merchant_id = %(merchant)s
          AND g.kind IN ('customer', 'reply')) g) thread
    FROM feedback_feedback f WHERE f.merchant_id = %(merchant)s
      AND f.customer_id = %(customer)s AND f.state <> 'merged'
    ORDER BY f.created_at DESC, f.id DESC LIMIT 10) k)::text,
  (SELECT {name} FROM loyalty_reward WHERE id = %(friend)s),
  (SELECT json_build_object('name', {name}, 'perks', {perks}) FROM loyalty_membershipplan
    WHERE id = %(plan)s)::text
"""


def _texts_sql(language: str, default: str) -> str:
    """REWARDS_LISTS_SQL with the merchant's texts read in the page's language, else the
    shop's default, else any."""

    def text(column: str) -> str:
        return _text_sql(column, language, default)

    return REWARDS_LISTS_SQL.format(
        name=text("name"),
        perks=text("perks"),
        w_name=text("w.name"),
        w_description=text("w.description"),
    )


# The offers panel's rows: running promotions not used up that take her in, with her live
# uses under the per-customer limit, and the code each shows (public, or her own unused).
OFFERS_SQL = """
SELECT p.id, {name}, {description}, p.kind, p.value, p.bonus_points, p.min_spend, p.ends_at,
  p.eligibility, p.codes,
  CASE WHEN p.codes = 'public' THEN (SELECT k.code FROM campaigns_code k
     WHERE k.promotion_id = p.id AND NOT k.single_use ORDER BY k.id LIMIT 1) END,
  (SELECT k.code FROM campaigns_code k WHERE k.promotion_id = p.id
     AND k.customer_id = %(customer)s AND NOT EXISTS (SELECT 1 FROM campaigns_codeuse u
       WHERE u.single_code_id = k.id AND u.state IN ('reserved', 'redeemed'))
     ORDER BY k.id DESC LIMIT 1)
FROM campaigns_promotion p, customers_customer c
WHERE c.id = %(customer)s AND p.merchant_id = %(merchant)s AND p.is_active
  AND (p.starts_at IS NULL OR p.starts_at <= %(at)s) AND (p.ends_at IS NULL OR p.ends_at > %(at)s)
  AND (p.usage_limit IS NULL OR p.taken < p.usage_limit)
  AND (p.budget IS NULL OR p.committed < p.budget)
  AND CASE p.eligibility
    WHEN 'everyone' THEN true
    WHEN 'customer' THEN p.customer_id = c.id
    WHEN 'segments' THEN c.segment <> '' AND p.segments::jsonb ? c.segment
    WHEN 'personas' THEN EXISTS (SELECT 1 FROM campaigns_promotion_personas x
      WHERE x.promotion_id = p.id AND x.persona_id = c.persona_id)
    WHEN 'tiers' THEN EXISTS (SELECT 1 FROM campaigns_promotion_tiers x
      JOIN loyalty_pointsaccount a ON a.tier_id = x.tier_id
      WHERE x.promotion_id = p.id AND a.customer_id = c.id)
    WHEN 'members' THEN EXISTS (SELECT 1 FROM campaigns_promotion_plans x
      JOIN loyalty_membership m ON m.plan_id = x.membershipplan_id
      WHERE x.promotion_id = p.id AND m.customer_id = c.id AND m.state = ANY(%(live)s))
    WHEN 'list' THEN EXISTS (SELECT 1 FROM campaigns_promotionlistentry e
      WHERE e.promotion_id = p.id AND e.customer_id = c.id)
    ELSE false END
  AND (SELECT count(*) FROM campaigns_codeuse u WHERE u.promotion_id = p.id
    AND u.customer_id = c.id AND u.state IN ('reserved', 'redeemed')) < p.per_customer_limit
  AND (p.codes <> 'public' OR EXISTS (SELECT 1 FROM campaigns_code k
    WHERE k.promotion_id = p.id AND NOT k.single_use))
ORDER BY p.ends_at, p.id
"""


def _bare_offers(cursor, *, merchant_id: int, customer_id: int, language: str, default: str,
                 at) -> list:  # fmt: skip
    from types import SimpleNamespace

    from loyalty.services.earning import LIVE_MEMBERSHIP

    cursor.execute(
        OFFERS_SQL.format(name=_text_sql("p.name", language, default),
                          description=_text_sql("p.description", language, default)),
        {"customer": customer_id, "merchant": merchant_id, "at": at,
         "live": [str(state) for state in LIVE_MEMBERSHIP]},
    )  # fmt: skip
    offers = []
    for (pk, name, description, kind, value, bonus_points, min_spend, ends_at, eligibility,
         codes, public, mine) in cursor.fetchall():  # fmt: skip
        promotion = SimpleNamespace(pk=pk, name=name, description=description, kind=kind,
                                    value=value, bonus_points=bonus_points,
                                    min_spend=min_spend, ends_at=ends_at)  # fmt: skip
        code = public if codes == "public" else mine
        offers.append(SimpleNamespace(promotion=promotion, code=code,
                                      exclusive=eligibility != "everyone"))  # fmt: skip
    return offers


def bare_rewards_page(request: HttpRequest, merchant_id: int) -> HttpResponse:
    import json
    from datetime import datetime, timedelta
    from decimal import Decimal
    from types import SimpleNamespace

    from django.core import signing
    from django.http import Http404
    from django.middleware.csrf import get_token
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils import timezone, translation
    from django.utils.cache import patch_cache_control, patch_vary_headers
    from django.utils.safestring import mark_safe

    from customers.mail import LANGUAGE_CODES
    from customers.portal import COOKIE, SALT, SESSION_DAYS, browser_language
    from feedback.portal import CUSTOMER_STATES, FeedbackForm
    from feedback.services.thread import ATTACHMENT_MAX_BYTES, ATTACHMENT_MAX_COUNT
    from loyalty.models import Membership, MembershipPlan, PointsAccount, Program, Reward, Tier
    from loyalty.selectors import CodeLine, HistoryLine, ReferralLine, RewardOffer, RewardsPage
    from loyalty.services.ledger import account_for
    from merchants.models import Merchant

    def listed(text: str | None) -> list[dict]:
        return json.loads(text, parse_float=Decimal) if text else []

    moment = datetime.fromisoformat
    session = signing.loads(request.COOKIES[COOKIE], salt=SALT, max_age=SESSION_DAYS * 86400)
    at = now()
    with connection.cursor() as cursor:
        cursor.execute(
            REWARDS_PAGE_SQL, {"customer": session["c"], "merchant": merchant_id, "at": at}
        )
        row = cursor.fetchone()
        if row is None or (row[2] is not None and row[2].timestamp() >= session["t"]):
            raise Http404
        (
            first_name,
            language,
            _signed_out,
            name,
            slug,
            brand_color,
            currency,
            zone,
            default_language,
            storefront_url,
            running,
            point_value,
            tier_basis,
            referrer_points,
            friend_reward_id,
            account_id,
            available,
            pending,
            referral_code,
            tier_id,
            matured,
            due,
            spent,
            earned,
            membership_id,
            state,
            period_end,
            plan_id,
            orders,
            amount,
        ) = row
        language = (
            (language if language in LANGUAGE_CODES else None)
            or browser_language(request)
            or default_language
        )
        cursor.execute(
            _texts_sql(language, default_language),
            {
                "customer": session["c"],
                "merchant": merchant_id,
                "account": account_id,
                "at": at,
                "soon": at + timedelta(days=30),
                "friend": friend_reward_id,
                "plan": plan_id,
            },
        )
        *lists, friend_reward, plan = cursor.fetchone()
        offers = _bare_offers(cursor, merchant_id=merchant_id, customer_id=session["c"],
                              language=language, default=default_language, at=at)  # fmt: skip
        tiers, rewards, plans, history, lots, codes, referrals, tickets = map(listed, lists)
        plan = json.loads(plan) if plan else {}
    # The texts above are in the page's language: the rows are made in it.
    with translation.override(language):
        merchant = Merchant(
            id=merchant_id,
            name=name,
            slug=slug,
            brand_color=brand_color,
            base_currency=currency,
            timezone=zone,
            default_language=default_language,
            storefront_url=storefront_url,
        )
        customer = Customer(
            id=session["c"], merchant=merchant, first_name=first_name, language=row[1]
        )
        request.portal_merchant, request.portal_customer = merchant, customer
        request.LANGUAGE_CODE = language
        # Answering as if at her page's address (bench.harness.served_at, which can't know the
        # shop's slug before the read): the language menu sends her back there.
        request.path = request.path_info = reverse("portal:home", kwargs={"merchant_slug": slug})

        page = RewardsPage(program=None, account=None)
        if running:
            program = Program(
                merchant=merchant,
                is_active=True,
                point_value=point_value,
                tier_basis=tier_basis,
                referrer_points=referrer_points,
                friend_reward=Reward(name=friend_reward) if friend_reward else None,
            )
            tiers = [
                Tier(
                    id=t["id"],
                    name=t["name"],
                    threshold=t["threshold"],
                    multiplier=t["multiplier"],
                    perks=t["perks"],
                    birthday_points=t["birthday_points"],
                    exclusive_promotions=t["exclusive_promotions"],
                )
                for t in tiers
            ]
            account = None
            if account_id is not None:
                account = PointsAccount(
                    id=account_id,
                    merchant_id=merchant_id,
                    customer_id=customer.pk,
                    available=available,
                    pending=pending,
                    referral_code=referral_code,
                    tier_id=tier_id,
                )
                account.tier = next((t for t in tiers if t.pk == tier_id), None)
            page = RewardsPage(program=program, account=account, tiers=tiers)
            if account is not None:
                page.available, page.pending = available + (matured or 0), pending - (matured or 0)
                held = (due or 0) + (spent or 0)
                for lot in lots:  # oldest lots first
                    held += lot["points"]
                    if held > 0:
                        page.expiring_points = min(held, page.available)
                        page.expiring_on = moment(lot["expires_at"])
                        break
                page.history = [
                    HistoryLine(
                        e["id"],
                        e["kind"],
                        e["points"],
                        e["note"],
                        moment(e["created_at"]),
                        moment(e["available_at"]),
                        e["external_id"],
                    )
                    for e in history
                ]
                page.ledger_state = page.history[0].pk if page.history else 0
                page.codes = [CodeLine(d["code"], d["state"], d["name"]) for d in codes]
                page.referrals = [ReferralLine(r["state"], r["first_name"]) for r in referrals]
            page.worth = (Decimal(max(page.available, 0)) * point_value).quantize(Decimal("0.01"))
            if tiers:
                value = {"points": earned, "orders": orders}.get(tier_basis, amount) or 0
                page.basis_value = value
                current = page.tier.threshold if page.tier else None
                above = [t for t in tiers if current is None or t.threshold > current]
                page.next_tier = next(
                    (t for t in above if t.threshold > value), above[0] if above else None
                )
                page.progress_percent = 100
                if page.next_tier is not None:
                    page.to_next_tier = max(page.next_tier.threshold - value, 0)
                    if page.next_tier.threshold:
                        page.progress_percent = min(
                            int(value * 100 / page.next_tier.threshold), 100
                        )
            if membership_id is not None:
                page.membership = Membership(
                    id=membership_id,
                    merchant_id=merchant_id,
                    customer_id=customer.pk,
                    plan=MembershipPlan(
                        id=plan_id,
                        merchant_id=merchant_id,
                        name=plan.get("name"),
                        perks=plan.get("perks"),
                    ),
                    state=state,
                    current_period_end=period_end,
                )
            page.plans = [
                MembershipPlan(
                    id=p["id"],
                    merchant_id=merchant_id,
                    name=p["name"],
                    price=p["price"],
                    currency=p["currency"],
                    period=p["period"],
                    trial_days=p["trial_days"],
                    multiplier=p["multiplier"],
                    recurring_points=p["recurring_points"],
                    perks=p["perks"],
                )
                for p in plans
            ]
            live_plan = plan_id if membership_id is not None else None
            for r in rewards:
                reward = Reward(
                    id=r["id"],
                    merchant_id=merchant_id,
                    name=r["name"],
                    description=r["description"],
                    kind=r["kind"],
                    points_cost=r["points_cost"],
                    stock=r["stock"],
                    per_customer_limit=r["per_customer_limit"],
                    max_units=r["max_units"],
                )
                limit, cost = reward.per_customer_limit, reward.points_cost
                left = None if limit is None else max(limit - r["taken"], 0)
                open_to = (not r["tiers"] or (account and account.tier_id) in r["tiers"]) and (
                    not r["plans"] or live_plan in r["plans"]
                )
                page.offers.append(
                    RewardOffer(
                        reward=reward,
                        open_to_customer=open_to,
                        left_for_customer=left,
                        affordable=open_to
                        and page.available >= cost
                        and left != 0
                        and reward.stock != 0,
                        short=max(cost - page.available, 0),
                    )
                )
            if page.account is None:
                # The referral code lives on the account, made on first use.
                page.account = account_for(customer=customer)
        threads = [
            SimpleNamespace(
                pk=k["id"],
                subject=k["subject"],
                state=k["state"],
                created_at=moment(k["created_at"]),
                customer_state=CUSTOMER_STATES.get(k["state"], ""),
                can_reply=k["state"] != "spam",
                thread=[
                    SimpleNamespace(
                        kind=g["kind"], body=g["body"], created_at=moment(g["created_at"])
                    )
                    for g in k["thread"] or []
                ],
            )
            for k in tickets
        ]

    with translation.override(language), timezone.override(merchant.zone):
        context = {"page": page, "merchant": merchant, "customer": customer, "now": at}

        def panel(name: str, **more) -> str:
            return render_to_string(
                f"loyalty/portal/_{name}.html", {**context, **more}, request=request, using="jinja2"
            )

        panels = [panel("points")]
        if offers:
            panels.append(render_to_string(
                "campaigns/portal/_offers.html",
                {"offers": offers, "merchant": merchant, "issued": ""},
                request=request, using="jinja2",
            ))  # fmt: skip
        if page.program is not None:
            panels.append(panel("rewards", issued=None, error=""))
            if page.plans or page.membership:
                panels.append(panel("membership"))
            code = {"merchant_slug": slug, "code": page.account.referral_code}
            link = request.build_absolute_uri(reverse("loyalty-portal:invite", kwargs=code))
            panels.append(panel("referrals", link=link))
            panels.append(panel("history"))
        panels.append(
            render_to_string(
                "feedback/portal/_panel.html",
                {
                    "merchant": merchant,
                    "form": FeedbackForm(),
                    "reply_to": None,
                    "reply_form": None,
                    "opened": None,
                    "notice": "",
                    "tickets": threads,
                    "csrf_token": get_token(request),
                    "language": language,
                    "max_files": ATTACHMENT_MAX_COUNT,
                    "max_megabytes": ATTACHMENT_MAX_BYTES // (1024 * 1024),
                },
                using="jinja2",
            )
        )
        response = render(
            request,
            "portal/home.html",
            {
                "merchant": merchant,
                "customer": customer,
                "panels": [mark_safe(html) for html in panels],
            },
        )
    response.headers.setdefault("Content-Language", language)
    patch_cache_control(response, private=True, no_store=True)
    patch_vary_headers(response, ["Cookie"])
    return response


def floor_rewards_page(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """The floor under the rewards page: the same session cookie and middleware, one
    query, the answer in an f-string."""
    from django.core import signing

    from customers.portal import COOKIE, SALT

    session = signing.loads(request.COOKIES[COOKIE], salt=SALT)
    (name, available), *_ = _rows(
        "SELECT c.first_name, a.available FROM customers_customer c JOIN "
        "loyalty_pointsaccount a ON a.customer_id = c.id WHERE c.id = %s AND c.merchant_id = %s",
        [session["c"], merchant_id],
    )
    return HttpResponse(f"<html><body><h1>{escape(name)}</h1><p>{available}</p></body></html>")


# The feedback inbox's bare views: the rows the inbox list and the ticket page show, by
# raw SQL (one statement per part), rendered by the same templates, with no permission
# check, no selectors and no query building.

# One walk down fb_state per unfinished state, a page each, merged: what an index can
# answer without reading every unfinished ticket; then the page's rows with what they name.
INBOX_WALK = """(SELECT id, updated_at FROM feedback_feedback
  WHERE merchant_id = %s AND state = %s{where}
  ORDER BY updated_at DESC, id DESC LIMIT 51)"""
INBOX_SQL = """
WITH page AS ({walks} ORDER BY updated_at DESC, id DESC LIMIT 51)
SELECT f.*, c.first_name AS c_first_name, c.last_name AS c_last_name, c.email AS c_email,
  d.name AS d_name, s.user_id AS s_user_id, u.full_name AS u_full_name, u.email AS u_email
FROM page JOIN feedback_feedback f ON f.id = page.id
LEFT JOIN customers_customer c ON c.id = f.customer_id
LEFT JOIN feedback_department d ON d.id = f.department_id
LEFT JOIN merchants_staffmember s ON s.id = f.assignee_id
LEFT JOIN merchants_user u ON u.id = s.user_id
ORDER BY f.updated_at DESC, f.id DESC
"""
# The same full-text match as the inbox's search.
SUBJECT_MATCH = "to_tsvector('simple', subject) @@ plainto_tsquery('simple', %s)"
AGENTS_SQL = """
SELECT s.id, coalesce(nullif(u.full_name, ''), u.email) FROM merchants_staffmember s
JOIN merchants_user u ON u.id = s.user_id
WHERE s.merchant_id = %s AND s.role IN ('manager', 'owner', 'support')
ORDER BY u.full_name, u.email, s.id
"""
DEPARTMENTS_SQL = (
    "SELECT id, name FROM feedback_department WHERE merchant_id = %s ORDER BY name, id"
)


def _named(ticket):
    """Puts the customer, department and assignee read with the ticket where the template
    looks for them."""
    from feedback.models import Department
    from merchants.models import StaffMember, User

    ticket.customer = (
        Customer(pk=ticket.customer_id, merchant_id=ticket.merchant_id,
                 first_name=ticket.c_first_name, last_name=ticket.c_last_name,
                 email=ticket.c_email)
        if ticket.customer_id else None
    )  # fmt: skip
    ticket.department = (
        Department(pk=ticket.department_id, name=ticket.d_name) if ticket.department_id else None
    )
    ticket.assignee = (
        StaffMember(pk=ticket.assignee_id, user=User(pk=ticket.s_user_id,
                    full_name=ticket.u_full_name, email=ticket.u_email))
        if ticket.assignee_id else None
    )  # fmt: skip
    return ticket


@served_at("/feedback/")
def bare_inbox(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """The first page of unfinished tickets, ?view=all (the default) or ?view=unassigned,
    ?q= for words of the subject, ?after=<updated_at>_<id> for the next pages."""
    from django.template.loader import render_to_string
    from django.utils.dateparse import parse_datetime
    from django.utils.safestring import mark_safe
    from django.utils.translation import gettext as _

    from feedback.forms import BulkForm, InboxFilterForm
    from feedback.models import Feedback

    where, extra = "", []
    if request.GET.get("view") == "unassigned":
        where += " AND assignee_id IS NULL"
    if q := request.GET.get("q", "").strip():
        where += f" AND {SUBJECT_MATCH}"
        extra.append(q)
    after = request.GET.get("after", "")
    if after:
        stamp, _sep, last_id = after.rpartition("_")
        where += " AND (updated_at, id) < (%s, %s)"
        extra += [parse_datetime(stamp), int(last_id)]
    states = ["new", "open", "pending"]
    sql = INBOX_SQL.format(walks=" UNION ALL ".join([INBOX_WALK.format(where=where)] * 3))
    params = [value for state in states for value in (merchant_id, state, *extra)]
    rows = [_named(ticket) for ticket in Feedback.objects.raw(sql, params)]
    agents = _rows(AGENTS_SQL, [merchant_id])
    departments = _rows(DEPARTMENTS_SQL, [merchant_id])
    form = InboxFilterForm(request.GET or None, agents=agents, departments=departments)
    following = request.GET.copy()
    following.pop("after", None)
    first_query = following.urlencode()
    next_query = ""
    if len(rows) > 50:
        following["after"] = f"{rows[49].updated_at.isoformat()}_{rows[49].pk}"
        next_query = following.urlencode()
    rows_html = render_to_string(
        "feedback/partials/_inbox_rows.html", {"tickets": rows[:50]}, request=request,
        using="jinja2",
    )  # fmt: skip
    context = {
        "form": form,
        "filters": form.filters(),
        "tickets": rows[:50],
        "rows": mark_safe(rows_html),
        "next_query": next_query,
        "first_query": first_query,
        "is_first_page": not after,
        "query": request.GET.urlencode(),
        "bulk_form": BulkForm(agents=agents),
        "bulk_result": None,
        "views": [("mine", _("Mine")), ("unassigned", _("Unassigned")),
                  ("department", _("My departments")), ("all", _("All")),
                  ("breached", _("SLA breached"))],
    }  # fmt: skip
    return render(request, "feedback/inbox.html", context)


TICKET_SQL = """
SELECT f.*, c.first_name AS c_first_name, c.last_name AS c_last_name, c.email AS c_email,
  c.orders_count AS c_orders_count, c.total_spent AS c_total_spent,
  c.last_order_at AS c_last_order_at, c.erased_at AS c_erased_at,
  d.name AS d_name, s.user_id AS s_user_id, u.full_name AS u_full_name, u.email AS u_email,
  a.id AS a_id, a.available AS a_available, a.tier_id AS a_tier_id, {tier_name} AS t_name
FROM feedback_feedback f
LEFT JOIN customers_customer c ON c.id = f.customer_id
LEFT JOIN feedback_department d ON d.id = f.department_id
LEFT JOIN merchants_staffmember s ON s.id = f.assignee_id
LEFT JOIN merchants_user u ON u.id = s.user_id
LEFT JOIN loyalty_pointsaccount a ON a.customer_id = f.customer_id
LEFT JOIN loyalty_tier t ON t.id = a.tier_id
WHERE f.merchant_id = %s AND f.id = %s
"""
THREAD_SQL = """
SELECT m.*, u.full_name AS u_full_name, u.email AS u_email
FROM feedback_message m LEFT JOIN merchants_user u ON u.id = m.author_id
WHERE m.feedback_id = %s ORDER BY m.created_at, m.id
"""


@served_at(lambda merchant_id, pk: f"/feedback/{pk}/")
def bare_ticket(request: HttpRequest, merchant_id: int, pk: int) -> HttpResponse:
    """The ticket with what it names, its thread with authors and files, the customer with
    their tier and points, their five latest other tickets, and the choices of the action
    forms (agents, departments, canned replies)."""
    from django.http import Http404

    from feedback.forms import AssignForm, MergeForm, ReplyForm, TagForm, TriageForm
    from feedback.models import Attachment, CannedReply, Feedback, Message, State
    from feedback.states import next_states
    from feedback.views import STATE_ACTIONS
    from loyalty.models import PointsAccount, Tier
    from merchants.models import User

    tier_name = _text_sql("t.name", request.LANGUAGE_CODE, request.merchant.default_language)
    found = list(Feedback.objects.raw(TICKET_SQL.format(tier_name=tier_name), [merchant_id, pk]))
    if not found:
        raise Http404
    ticket = _named(found[0])
    ticket.merchant = request.merchant
    customer, account = ticket.customer, None
    if customer is not None:
        customer.orders_count, customer.total_spent = ticket.c_orders_count, ticket.c_total_spent
        customer.last_order_at, customer.erased_at = ticket.c_last_order_at, ticket.c_erased_at
        if ticket.a_id:
            account = PointsAccount(
                pk=ticket.a_id, customer_id=customer.pk, available=ticket.a_available,
                tier_id=ticket.a_tier_id,
            )  # fmt: skip
            # The name read in the page's language, shown as read (not a language column).
            account.tier = Tier(pk=ticket.a_tier_id) if ticket.a_tier_id else None
            if account.tier is not None:
                setattr(account.tier, f"name_{request.LANGUAGE_CODE}", ticket.t_name)
    if ticket.merged_into_id:
        ticket.merged_into = Feedback(pk=ticket.merged_into_id)
    if ticket.follows_id:
        ticket.follows = Feedback(pk=ticket.follows_id)
    thread = list(Message.objects.raw(THREAD_SQL, [pk]))
    files: dict[int, list] = {message.pk: [] for message in thread}
    if files:
        for attachment in Attachment.objects.raw(
            "SELECT * FROM feedback_attachment WHERE message_id = ANY(%s) ORDER BY id",
            [list(files)],
        ):
            files[attachment.message_id].append(attachment)
    for message in thread:
        message.author = (
            User(pk=message.author_id, full_name=message.u_full_name, email=message.u_email)
            if message.author_id else None
        )  # fmt: skip
        attachments = Attachment.objects.none()
        attachments._result_cache = files[message.pk]
        message._prefetched_objects_cache = {"attachments": attachments}
    previous = []
    if customer is not None:
        previous = list(Feedback.objects.raw(
            "SELECT id, subject, state, created_at FROM feedback_feedback "
            "WHERE customer_id = %s AND id <> %s ORDER BY created_at DESC, id DESC LIMIT 5",
            [customer.pk, pk]))  # fmt: skip
    agents = _rows(AGENTS_SQL, [merchant_id])
    departments = _rows(DEPARTMENTS_SQL, [merchant_id])
    canned = list(CannedReply.objects.raw(
        "SELECT * FROM feedback_cannedreply WHERE merchant_id = %s AND (department_id IS NULL "
        "OR department_id = %s) ORDER BY title, id",
        [merchant_id, ticket.department_id]))  # fmt: skip
    states = next_states(ticket.state)
    context = {
        "ticket": ticket,
        "thread": thread,
        "repliable": ticket.state not in (State.CLOSED, State.MERGED, State.SPAM),
        "drawn_at": int(now().timestamp()),
        "mergeable": State.MERGED in states,
        "state_actions": [(state, STATE_ACTIONS.get(state, state.label)) for state in states
                          if state != State.MERGED],
        "reply_form": ReplyForm(canned_replies=canned, initial={"body": ""}),
        "assign_form": AssignForm(agents=agents, initial={"assignee": ticket.assignee_id}),
        "triage_form": TriageForm(departments=departments, initial={
            "category": ticket.category, "department": ticket.department_id,
            "priority": ticket.priority}),
        "tag_form": TagForm(),
        "merge_form": MergeForm(),
        "action_error": None,
        "notice": None,
        "customer": customer,
        "account": account,
        "previous_tickets": previous,
    }  # fmt: skip
    return render(request, "feedback/ticket_detail.html", context)


urlpatterns = [
    *product_urlpatterns,
    path("bench/floor/<int:merchant_id>/rewards/", floor_rewards_page),
    path("bench/bare/<int:merchant_id>/rewards/", bare_rewards_page),
    path("bench/bare/<int:merchant_id>/customers/", bare_customer_list),
    path("bench/bare/<int:merchant_id>/customers/<int:pk>/", bare_customer_detail),
    path("bench/bare/<int:merchant_id>/orders/", bare_order_create),
    path("bench/bare/<int:merchant_id>/dashboard/", bare_dashboard),
    path("bench/bare/<int:merchant_id>/dashboard/loyalty/", bare_loyalty_figures),
    path("bench/bare/<int:merchant_id>/dashboard/feedback/", bare_inbox_figures),
    path("bench/floor/<int:merchant_id>/customers/", floor_customer_list),
    path("bench/bare/<int:merchant_id>/feedback/", bare_inbox),
    path("bench/bare/<int:merchant_id>/feedback/<int:pk>/", bare_ticket),
    path("bench/bare/<int:merchant_id>/codes/<str:code>/validate/", bare_code_validate),
    path("bench/bare/<int:merchant_id>/codes/<str:code>/redeem/", bare_code_redeem),
]
