"""The product's URLs plus the baselines the benchmarks compare with, served by the same
server behind the same middleware."""

from __future__ import annotations

import json
from html import escape

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urlpatterns
from customers.forms import CustomerFilterForm
from customers.models import Activity, ConsentRecord, Customer, Order, OrderLine, Persona


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
  c.persona_id, p.name AS persona_name
FROM customers_customer c
LEFT JOIN customers_persona p ON p.id = c.persona_id
WHERE c.merchant_id = %s AND c.erased_at IS NULL{where}
ORDER BY {order} LIMIT 51
"""


def _with_persona(customer: Customer) -> Customer:
    if customer.persona_id:
        customer.persona = Persona(pk=customer.persona_id, name=customer.persona_name)
    return customer


def bare_customer_list(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """The first page, newest first or by spend (?sort=spent); ?q= for names starting with it
    and ?segment= for one segment, as the list filters."""
    where, params = "", [merchant_id]
    if q := request.GET.get("q", "").upper():
        where += " AND (upper(c.first_name::text) LIKE %s OR upper(c.last_name::text) LIKE %s)"
        params += [f"{q}%", f"{q}%"]
    if segment := request.GET.get("segment", ""):
        where += " AND c.segment = %s"
        params.append(segment)
    order = "c.total_spent DESC, c.id DESC" if request.GET.get("sort") == "spent" else "c.id DESC"
    sql = LIST_SQL.format(where=where, order=order)
    rows = [_with_persona(c) for c in Customer.objects.raw(sql, params)]
    context = {
        "form": CustomerFilterForm(None, merchant=request.merchant),
        "customers": rows[:50],
        "next_query": f"after=%5B{rows[-1].pk}%5D" if len(rows) > 50 else "",
        "first_query": "",
        "is_first_page": True,
    }
    return render(request, "customers/customer_list.html", context)


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


@csrf_exempt
def bare_order_create(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """One order, its lines, its timeline entry and the customer's stats in five statements;
    the customer is the one with the sent external id, created if new."""
    body = json.loads(request.body)
    stamp = now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customer (merchant_id, external_id, email, first_name, "
            "last_name, phone, gender, city, country, language, acquisition_channel, tags, "
            "marketing_consent, marketing_consent_source, orders_count, total_spent, "
            "average_order_value, spent_last_365_days, segment, discount_order_share, "
            "express_order_share, main_channel, top_category, created_at, updated_at) "
            "VALUES (%s, %s, %s, '', '', '', '', '', '', '', '', '[]', false, '', 0, 0, 0, 0, "
            "'', 0, 0, '', '', %s, %s) ON CONFLICT (merchant_id, external_id) "
            "WHERE external_id <> '' DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id",
            [
                merchant_id,
                body["customer"]["external_id"],
                body["customer"].get("email", ""),
                stamp,
                stamp,
            ],
        )
        (customer_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO customers_order (merchant_id, customer_id, source, external_id, "
            "placed_at, status, currency, subtotal, discount, shipping, tax, total, "
            "refunded_amount, channel, shipping_method, discount_codes, created_at) VALUES "
            "(%s, %s, 'api', %s, %s, 'paid', %s, %s, 0, 0, 0, %s, 0, '', '', '[]', %s) "
            "RETURNING id",
            [
                merchant_id,
                customer_id,
                body["external_id"],
                body["placed_at"],
                body["currency"],
                body["total"],
                body["total"],
                stamp,
            ],
        )
        (order_id,) = cursor.fetchone()
        cursor.executemany(
            "INSERT INTO customers_orderline (merchant_id, order_id, sku, name, category, "
            "quantity, price) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                [
                    merchant_id,
                    order_id,
                    line["sku"],
                    line["name"],
                    line.get("category", ""),
                    line["quantity"],
                    line["price"],
                ]
                for line in body["lines"]
            ],
        )
        cursor.execute(
            "UPDATE customers_customer SET orders_count = orders_count + 1, "
            "total_spent = total_spent + %s, "
            "average_order_value = round((total_spent + %s) / (orders_count + 1), 2), "
            "first_order_at = least(first_order_at, %s), "
            "last_order_at = greatest(last_order_at, %s) WHERE id = %s",
            [body["total"], body["total"], body["placed_at"], body["placed_at"], customer_id],
        )
        cursor.execute(
            "INSERT INTO customers_activity (merchant_id, customer_id, kind, occurred_at, data) "
            "VALUES (%s, %s, 'order.placed', %s, %s)",
            [merchant_id, customer_id, body["placed_at"], json.dumps({"order_id": order_id})],
        )
    return JsonResponse({"id": order_id}, status=201)


# The rewards page's bare view: the signed-in customer from the same cookie, the same rows
# by raw SQL (one statement per part, no ORM query building, no selectors, no panel
# registry), rendered by the same templates.


def _one(model, sql: str, params: list):
    rows = list(model.objects.raw(sql, params))
    return rows[0] if rows else None


def bare_rewards_page(request: HttpRequest, merchant_id: int) -> HttpResponse:
    from datetime import timedelta
    from decimal import Decimal

    from django.core import signing
    from django.template.loader import render_to_string
    from django.utils.safestring import mark_safe

    from customers.portal import COOKIE, SALT
    from loyalty.models import (
        Membership,
        MembershipPlan,
        PointsAccount,
        PointsEntry,
        Program,
        Redemption,
        Referral,
        Reward,
        Tier,
    )
    from loyalty.portal_markup import membership_html, points_html, referrals_html
    from loyalty.selectors import RewardOffer, RewardsPage

    session = signing.loads(request.COOKIES[COOKIE], salt=SALT)
    at = now()
    customer = _one(Customer, "SELECT * FROM customers_customer WHERE id = %s AND merchant_id = %s",
                    [session["c"], merchant_id])  # fmt: skip
    merchant = request.merchant = customer.merchant
    program = _one(Program, "SELECT * FROM loyalty_program WHERE merchant_id = %s", [merchant_id])
    tiers = list(Tier.objects.raw(
        "SELECT * FROM loyalty_tier WHERE merchant_id = %s ORDER BY threshold",
        [merchant_id]))  # fmt: skip
    by_id = {t.pk: t for t in tiers}
    account = _one(PointsAccount, "SELECT * FROM loyalty_pointsaccount WHERE customer_id = %s",
                   [customer.pk])  # fmt: skip
    account.tier = by_id.get(account.tier_id)
    page = RewardsPage(program=program, account=account, tiers=tiers)
    matured, due, spent = _rows(
        "SELECT sum(points) FILTER (WHERE available_at > %s AND available_at <= %s), "
        "sum(points) FILTER (WHERE expires_at <= %s AND available_at <= %s), "
        "sum(points) FILTER (WHERE expires_at IS NULL AND points < 0) "
        "FROM loyalty_pointsentry WHERE account_id = %s",
        [account.confirmed_through, at, at, at, account.pk],
    )[0]
    page.available = account.available + (matured or 0)
    page.pending = account.pending - (matured or 0)
    held = (due or 0) + (spent or 0)
    for expires_at, points in _rows(
        "SELECT expires_at, points FROM loyalty_pointsentry WHERE account_id = %s AND "
        "expires_at > %s AND expires_at <= %s AND available_at <= %s ORDER BY expires_at",
        [account.pk, at, at + timedelta(days=30), at],
    ):
        held += points
        if held > 0:
            page.expiring_points, page.expiring_on = min(held, page.available), expires_at
            break
    page.worth = (Decimal(max(page.available, 0)) * program.point_value).quantize(Decimal("0.01"))
    page.history = list(PointsEntry.objects.raw(
        "SELECT * FROM loyalty_pointsentry WHERE account_id = %s "
        "ORDER BY created_at DESC, id DESC LIMIT 20", [account.pk]))  # fmt: skip
    orders = {o.pk: o for o in Order.objects.raw(
        "SELECT * FROM customers_order WHERE id = ANY(%s)",
        [[e.order_id for e in page.history if e.order_id]])}  # fmt: skip
    for entry in page.history:
        entry.order_number = orders[entry.order_id].external_id if entry.order_id else None
    page.ledger_state = page.history[0].pk if page.history else 0
    rewards = {r.pk: r for r in Reward.objects.raw(
        "SELECT * FROM loyalty_reward WHERE merchant_id = %s AND is_active "
        "ORDER BY points_cost, id", [merchant_id])}  # fmt: skip
    page.codes = list(Redemption.objects.raw(
        "SELECT * FROM loyalty_redemption WHERE account_id = %s "
        "ORDER BY created_at DESC, id DESC LIMIT 10", [account.pk]))  # fmt: skip
    for code in page.codes:
        code.reward_name = rewards[code.reward_id].name if code.reward_id in rewards else ""
    page.referrals = list(Referral.objects.raw(
        "SELECT r.*, c.first_name AS friend_first_name FROM loyalty_referral r "
        "JOIN customers_customer c ON c.id = r.friend_id WHERE r.referrer_id = %s "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT 10", [customer.pk]))  # fmt: skip
    (value,) = _rows(
        "SELECT coalesce(sum(total - refunded_amount), 0) FROM customers_order "
        "WHERE customer_id = %s AND placed_at <= %s AND placed_at >= %s AND status <> 'cancelled'",
        [customer.pk, at, at - timedelta(days=365)],
    )[0]
    page.basis_value = value
    current = account.tier.threshold if account.tier else None
    above = [t for t in tiers if current is None or t.threshold > current]
    page.next_tier = next((t for t in above if t.threshold > value), above[0] if above else None)
    if page.next_tier:
        page.to_next_tier = max(page.next_tier.threshold - value, 0)
        page.progress_percent = min(int(value * 100 / page.next_tier.threshold), 100)
    plans = {p.pk: p for p in MembershipPlan.objects.raw(
        "SELECT * FROM loyalty_membershipplan WHERE merchant_id = %s ORDER BY price, id",
        [merchant_id])}  # fmt: skip
    page.plans = [p for p in plans.values() if p.is_active]
    page.membership = _one(Membership,
        "SELECT * FROM loyalty_membership WHERE customer_id = %s AND state <> 'expired' "
        "ORDER BY started_at DESC LIMIT 1", [customer.pk])  # fmt: skip
    if page.membership:
        page.membership.plan = plans[page.membership.plan_id]
    limits = dict(_rows(
        "SELECT reward_id, array_agg(tier_id) FROM loyalty_reward_tiers t JOIN loyalty_reward r "
        "ON r.id = t.reward_id WHERE r.merchant_id = %s GROUP BY reward_id",
        [merchant_id]))  # fmt: skip
    taken = dict(_rows(
        "SELECT reward_id, count(*) FROM loyalty_redemption WHERE account_id = %s "
        "AND state <> 'cancelled' GROUP BY reward_id", [account.pk]))  # fmt: skip
    for reward in rewards.values():
        open_to = reward.pk not in limits or account.tier_id in limits[reward.pk]
        left = None
        if reward.per_customer_limit is not None:
            left = max(reward.per_customer_limit - taken.get(reward.pk, 0), 0)
        page.offers.append(RewardOffer(
            reward=reward, open_to_customer=open_to, left_for_customer=left,
            affordable=open_to and page.available >= reward.points_cost and left != 0
            and reward.stock != 0, short=max(reward.points_cost - page.available, 0)))  # fmt: skip
    link = request.build_absolute_uri(f"/r/{merchant.slug}/invite/{account.referral_code}/")
    context = {"page": page, "merchant": merchant, "customer": customer, "now": at, "link": link}
    # The points, membership and invitation panels are written in Python (portal_markup).
    panels = [
        points_html(page, merchant),
        render_to_string("loyalty/portal/_rewards.html", context, request=request),
        membership_html(page, merchant),
        referrals_html(page, merchant, link),
        render_to_string("loyalty/portal/_history.html", context, request=request),
    ]
    return render(request, "portal/home.html",
                  {**context, "panels": [mark_safe(html) for html in panels]})  # fmt: skip


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


def bare_inbox(request: HttpRequest, merchant_id: int) -> HttpResponse:
    """The first page of unfinished tickets, ?view=all (the default) or ?view=unassigned,
    ?q= for words of the subject, ?after=<updated_at>_<id> for the next pages."""
    from django.utils.dateparse import parse_datetime
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
    context = {
        "form": form,
        "filters": form.filters(),
        "tickets": rows[:50],
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
  a.id AS a_id, a.available AS a_available, a.tier_id AS a_tier_id, t.name AS t_name
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

    found = list(Feedback.objects.raw(TICKET_SQL, [merchant_id, pk]))
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
            account.tier = (
                Tier(pk=ticket.a_tier_id, name=ticket.t_name) if ticket.a_tier_id else None
            )
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
    path("bench/floor/<int:merchant_id>/customers/", floor_customer_list),
    path("bench/bare/<int:merchant_id>/feedback/", bare_inbox),
    path("bench/bare/<int:merchant_id>/feedback/<int:pk>/", bare_ticket),
]
