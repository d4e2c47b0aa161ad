"""The one-order baseline: what a skilled engineer would write by hand for the whole job an
order does at a shop with a running program, in raw SQL and no validation: the customer
(created if new), the order, its lines, the customer's stats, the timeline entry, the
points it earns under the shop's rules (base rate on the net total, the best of the tier's
and the category's multipliers per line, the first-order bonus) written to the ledger as a
pending lot with the account's balance, and the tier upgrade the order's spend reaches,
with its history."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt

from loyalty.services.dates import months_after

# The shop's rules, tiers and program in one statement.
RULES_SQL = """
SELECT p.points_per_unit, p.pending_days, p.expiry_months,
  (SELECT json_agg(json_build_array(r.kind, r.category, r.sku, r.multiplier, r.points, r.id,
                                    r.name))
   FROM loyalty_earningrule r WHERE r.merchant_id = p.merchant_id AND r.is_active
     AND r.kind <> 'event'),
  (SELECT json_agg(json_build_array(t.id, t.threshold, t.multiplier, t.name)
                   ORDER BY t.threshold)
   FROM loyalty_tier t WHERE t.merchant_id = p.merchant_id)
FROM loyalty_program p WHERE p.merchant_id = %s AND p.is_active
"""
CUSTOMER_SQL = """
INSERT INTO customers_customer (merchant_id, external_id, email, first_name, last_name, phone,
  gender, city, country, language, acquisition_channel, tags, marketing_consent,
  marketing_consent_source, orders_count, total_spent, average_order_value,
  spent_last_365_days, segment, discount_order_share, express_order_share, main_channel,
  top_category, created_at, updated_at)
VALUES (%s, %s, %s, %s, '', '', '', '', '', '', '', '[]', false, '', 0, 0, 0, 0, '', 0, 0, '',
  '', %s, %s)
ON CONFLICT (merchant_id, external_id) WHERE external_id <> ''
DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id, orders_count
"""
ORDER_SQL = """
INSERT INTO customers_order (merchant_id, customer_id, source, external_id, placed_at, status,
  currency, subtotal, discount, shipping, tax, total, refunded_amount, channel,
  shipping_method, discount_codes, created_at)
VALUES (%s, %s, 'api', %s, %s, 'paid', %s, %s, 0, 0, 0, %s, 0, %s, '', '[]', %s) RETURNING id
"""
STATS_SQL = """
UPDATE customers_customer SET orders_count = orders_count + 1,
  total_spent = total_spent + %(total)s,
  average_order_value = round((total_spent + %(total)s) / (orders_count + 1), 2),
  first_order_at = least(first_order_at, %(placed)s),
  last_order_at = greatest(last_order_at, %(placed)s)
WHERE id = %(customer)s
"""
# The account, opened on the first order, and locked for this transaction either way.
ACCOUNT_SQL = """
INSERT INTO loyalty_pointsaccount (merchant_id, customer_id, available, pending,
  confirmed_through, referral_code, created_at, last_activity_at)
VALUES (%(merchant)s, %(customer)s, 0, 0, %(at)s, upper(substr(md5(random()::text), 1, 10)),
  %(at)s, %(at)s)
ON CONFLICT (customer_id) DO UPDATE SET last_activity_at = EXCLUDED.last_activity_at
RETURNING id, tier_id
"""
LEDGER_SQL = """
WITH lots AS (
  INSERT INTO loyalty_pointsentry (merchant_id, account_id, kind, points, available_at,
    expires_at, order_id, rule_id, note, idempotency_key, created_at)
  SELECT %(merchant)s, %(account)s, 'earn', points, %(available)s, %(expires)s, %(order)s,
    rule, note, key, %(at)s
  FROM unnest(%(points)s::int[], %(rules)s::bigint[], %(notes)s::text[], %(keys)s::text[])
    AS lot(points, rule, note, key)
  RETURNING id, points, note
), balance AS (
  UPDATE loyalty_pointsaccount SET pending = pending + (SELECT sum(points) FROM lots)
  WHERE id = %(account)s
)
INSERT INTO customers_activity (merchant_id, customer_id, kind, occurred_at, data)
SELECT %(merchant)s, %(customer)s, 'points.earned', %(at)s,
  jsonb_build_object('entry_id', id, 'points', points, 'pending', true, 'note', note,
                     'order_id', %(order)s)
FROM lots
"""
# The tier the last twelve months' spend reaches, if higher than the one held, with its
# history; nothing when it isn't.
UPGRADE_SQL = """
WITH reached AS (
  SELECT t.id, t.name FROM loyalty_tier t
  WHERE t.merchant_id = %(merchant)s AND t.threshold <= (
    SELECT COALESCE(sum(total - refunded_amount), 0) FROM customers_order
    WHERE customer_id = %(customer)s AND status <> 'cancelled' AND placed_at >= %(start)s
      AND placed_at <= %(at)s)
  ORDER BY t.threshold DESC LIMIT 1
), moved AS (
  UPDATE loyalty_pointsaccount a SET tier_id = reached.id, tier_since = %(at)s FROM reached
  WHERE a.id = %(account)s AND a.tier_id IS DISTINCT FROM reached.id
    AND COALESCE((SELECT threshold FROM loyalty_tier WHERE id = a.tier_id), -1)
        < (SELECT threshold FROM loyalty_tier WHERE id = reached.id)
  RETURNING a.id, reached.id AS to_tier, reached.name AS to_name
), history AS (
  INSERT INTO loyalty_tierchange (merchant_id, account_id, from_tier_id, to_tier_id, reason,
    note, created_at)
  SELECT %(merchant)s, id, %(from_tier)s::bigint, to_tier, 'upgrade', '', %(at)s FROM moved
)
INSERT INTO customers_activity (merchant_id, customer_id, kind, occurred_at, data)
SELECT %(merchant)s, %(customer)s, 'tier.changed', %(at)s,
  jsonb_build_object('from', %(from_name)s::text, 'to', to_name, 'reason', 'upgrade') FROM moved
"""


def _points(rules: list, tiers: list, tier_id, per_unit: Decimal, lines: list, total: Decimal):
    """The lot's points and what made them, with the first-order bonus rules."""
    tier_multiplier = next((Decimal(str(t[2])) for t in tiers if t[0] == tier_id), Decimal(1))
    gross = sum(Decimal(line["price"]) * line["quantity"] for line in lines)
    raw = Decimal(0)
    for line in lines:
        best = max(
            [tier_multiplier]
            + [Decimal(str(r[3])) for r in rules if r[0] == "category_multiplier"
               and (r[1] == line.get("category") or (r[2] and r[2] == line["sku"]))]
        )  # fmt: skip
        raw += total * Decimal(line["price"]) * line["quantity"] / gross * per_unit * best
    return int(raw.quantize(Decimal(1), rounding=ROUND_FLOOR))


@csrf_exempt
def bare_order_create(request: HttpRequest, merchant_id: int) -> HttpResponse:
    body = json.loads(request.body)
    at = now()
    total = Decimal(body["total"])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RULES_SQL, [merchant_id])
        per_unit, pending_days, expiry_months, rules, tiers = cursor.fetchone()
        rules, tiers = rules or [], tiers or []
        person = body["customer"]
        cursor.execute(CUSTOMER_SQL, [merchant_id, person["external_id"], person.get("email", ""),
                                      person.get("first_name", ""), at, at])  # fmt: skip
        customer_id, orders_before = cursor.fetchone()
        cursor.execute(ORDER_SQL, [merchant_id, customer_id, body["external_id"],
                                   body["placed_at"], body["currency"], body["subtotal"],
                                   body["total"], body.get("channel", ""), at])  # fmt: skip
        (order_id,) = cursor.fetchone()
        cursor.executemany(
            "INSERT INTO customers_orderline (merchant_id, order_id, sku, name, category, "
            "quantity, price) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [[merchant_id, order_id, line["sku"], line["name"], line.get("category", ""),
              line["quantity"], line["price"]] for line in body["lines"]],
        )  # fmt: skip
        cursor.execute(STATS_SQL, {"total": body["total"], "placed": body["placed_at"],
                                   "customer": customer_id})  # fmt: skip
        cursor.execute(
            "INSERT INTO customers_activity (merchant_id, customer_id, kind, occurred_at, data) "
            "VALUES (%s, %s, 'order.placed', %s, %s)",
            [merchant_id, customer_id, body["placed_at"], json.dumps({"order_id": order_id})],
        )
        cursor.execute(ACCOUNT_SQL, {"merchant": merchant_id, "customer": customer_id, "at": at})
        account_id, tier_id = cursor.fetchone()
        points = _points(rules, tiers, tier_id, per_unit, body["lines"], total)
        lots = [(points, None, "", f"order:{order_id}:earn")] if points > 0 else []
        if orders_before == 0:
            lots += [(r[4], r[5], r[6], f"first-order:{account_id}:rule:{r[5]}")
                     for r in rules if r[0] == "first_order"]  # fmt: skip
        available = at + timedelta(days=pending_days)
        if lots:
            cursor.execute(LEDGER_SQL, {
                "merchant": merchant_id, "account": account_id, "customer": customer_id,
                "order": order_id, "at": at, "available": available,
                "expires": months_after(available, expiry_months),
                "points": [lot[0] for lot in lots], "rules": [lot[1] for lot in lots],
                "notes": [lot[2] for lot in lots], "keys": [lot[3] for lot in lots],
            })  # fmt: skip
        held = next((t for t in tiers if t[0] == tier_id), None)
        cursor.execute(UPGRADE_SQL, {
            "merchant": merchant_id, "customer": customer_id, "account": account_id, "at": at,
            "start": months_after(at, -12), "from_tier": tier_id,
            "from_name": held[3] if held else "",
        })  # fmt: skip
    return JsonResponse({"id": order_id}, status=201)
