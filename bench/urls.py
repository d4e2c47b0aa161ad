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


urlpatterns = [
    *product_urlpatterns,
    path("bench/bare/<int:merchant_id>/customers/", bare_customer_list),
    path("bench/bare/<int:merchant_id>/customers/<int:pk>/", bare_customer_detail),
    path("bench/bare/<int:merchant_id>/orders/", bare_order_create),
    path("bench/floor/<int:merchant_id>/customers/", floor_customer_list),
]
