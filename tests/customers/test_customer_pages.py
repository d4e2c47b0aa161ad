from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils.timezone import now

from customers.models import Activity, Customer, Order
from customers.services import CustomerData, consent_set, order_ingest
from merchants.models import AuditEvent
from tests.customers.factories import CustomerFactory, order_data
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, merchant):
    member = StaffMemberFactory(merchant=merchant, role="owner")
    client.force_login(member.user)
    return member


def _page_ids(client, url):
    body = client.get(url).content.decode()
    ids = [int(pk) for pk in re.findall(r'href="/customers/(\d+)/"', body)]
    following = re.search(r'href="\?([^"]+)" rel="next"', body)
    return ids, following.group(1).replace("&amp;", "&") if following else None


def _walk(client, query):
    seen, url = [], f"/customers/?{query}"
    while url:
        ids, following = _page_ids(client, url)
        seen += ids
        url = f"/customers/?{following}" if following else None
    return seen


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("recent", lambda c: -c.pk),
        ("spent", lambda c: (-c.total_spent, -c.pk)),
        ("orders", lambda c: (-c.orders_count, -c.pk)),
        (
            "last_order",
            lambda c: (
                c.last_order_at is None,
                -(c.last_order_at.timestamp() if c.last_order_at else 0),
                -c.pk,
            ),
        ),
        ("name", lambda c: (c.first_name, c.last_name, c.pk)),
    ],
)
def test_every_customer_appears_once_across_pages_in_sort_order(client, staff, merchant, sort, key):
    start = now() - timedelta(days=300)
    for n in range(130):
        customer = CustomerFactory(merchant=merchant, first_name=f"N{n % 7}", last_name=f"L{n % 3}")
        # Ties on purpose: many customers share counts, totals and dates.
        Customer.objects.filter(pk=customer.pk).update(
            orders_count=n % 4,
            total_spent=Decimal(n % 5 * 10),
            last_order_at=None if n % 6 == 0 else start + timedelta(days=n % 9),
        )
    CustomerFactory()  # another merchant's

    seen = _walk(client, f"sort={sort}")

    expected = [c.pk for c in sorted(Customer.objects.filter(merchant=merchant), key=key)]
    assert seen == expected


def test_search_and_filters_narrow_the_list(client, staff, merchant):
    ada = CustomerFactory(
        merchant=merchant,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@math.test",
        external_id="x-1",
    )
    CustomerFactory(
        merchant=merchant, first_name="Alan", last_name="Turing", email="alan@math.test"
    )
    order_ingest(merchant=merchant, data=order_data("1", customer=CustomerData(external_id="x-1")))
    consent_set(customer=ada, granted=True, source="test")

    def names(query):
        return re.findall(
            r'data-testid="customer-table".*',
            client.get(f"/customers/?{query}").content.decode(),
            re.S,
        )[0]

    assert "Alan" not in names("q=ada@")
    assert "Ada" in names("q=ada@")
    CustomerFactory(merchant=merchant, first_name="Grace", email="grace@navy.test")
    by_domain = names("q=%40MATH.test")
    assert "Ada" in by_domain
    assert "Alan" in by_domain
    assert "Grace" not in by_domain
    assert "Alan" not in names("q=x-1")
    assert "Ada" in names("q=Ada+Love")
    assert "Alan" not in names("min_orders=1")
    assert "Ada" in names("min_orders=1")
    assert "Alan" not in names("consent=yes")
    assert "Ada" not in names("consent=no")
    assert "Ada" in names(f"last_order_from={now().date().isoformat()}")


def test_bad_filters_are_named_and_the_list_still_shows(client, staff):
    response = client.get("/customers/?min_orders=lots&last_order_from=yesterday")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Orders from: Enter a whole number." in body
    assert "Last order from: Enter a valid date." in body


def test_a_forged_cursor_is_ignored(client, staff, merchant):
    CustomerFactory(merchant=merchant)
    for cursor in ("not-json", "[1]", '["a", "b"]', "{}"):
        assert client.get(f"/customers/?sort=spent&after={cursor}").status_code == 200


def test_list_and_detail_pages_use_a_fixed_number_of_queries(
    client, staff, merchant, django_assert_max_num_queries
):
    def grow(n):
        for i in range(n):
            order_ingest(
                merchant=merchant,
                data=order_data(
                    f"{n}-{i}",
                    customer=CustomerData(external_id=f"c-{i % 5}", email=f"c{i % 5}@x.test"),
                ),
            )

    def count(url):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    from django.core.cache import cache

    from customers.personas import persona_save, segments_and_personas_refresh

    def counts():
        cache.clear()  # persona figures are counted on the first visit after a change
        return {
            url: count(url)
            for url in (
                "/customers/",
                "/customers/?q=c&sort=spent&segment=loyal&min_orders=1&consent=yes",
                f"/customers/{customer.pk}/",
                "/customers/personas/",
                f"/customers/personas/{persona.pk}/",
                "/customers/imports/",
            )
        }

    grow(5)
    persona = persona_save(
        merchant=merchant,
        name="Regular",
        description="",
        offers="",
        rules=[{"field": "orders", "op": "gte", "value": "1"}],
    )
    segments_and_personas_refresh(merchant=merchant)
    customer = Customer.objects.filter(merchant=merchant).first()
    client.get("/")  # the session's first touch writes it once; not part of the pages
    small = counts()
    grow(40)
    segments_and_personas_refresh(merchant=merchant)
    large = counts()
    assert small == large
    assert large["/customers/"] <= 7
    assert large[f"/customers/{customer.pk}/"] <= 9


def test_the_360_page_shows_profile_stats_orders_lines_and_timeline(client, staff, merchant):
    order_ingest(
        merchant=merchant,
        data=order_data(
            "A-1",
            total="42.00",
            customer=CustomerData(external_id="k", email="kim@x.test", first_name="Kim"),
        ),
    )
    customer = Customer.objects.get(external_id="k")

    body = client.get(f"/customers/{customer.pk}/").content.decode()

    assert "Kim" in body
    assert "42.00 USD" in body
    assert "TEA-1" in body
    assert "Green tea" in body
    assert "Order placed · 42.00 USD" in body
    assert "Profile created" in body


def test_staff_edit_a_profile_and_it_shows_on_the_timeline(client, staff, merchant):
    customer = CustomerFactory(merchant=merchant, first_name="Kim", email="kim@x.test")
    response = client.post(
        f"/customers/{customer.pk}/edit/",
        {
            "first_name": "Kimberly",
            "last_name": customer.last_name,
            "email": "KIM@x.test",
            "gender": "",
            "marketing_consent": "on",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.first_name, customer.email, customer.marketing_consent) == (
        "Kimberly",
        "kim@x.test",
        True,
    )
    update = Activity.objects.get(customer=customer, kind="profile.updated")
    assert update.data["fields"] == ["first_name"]
    assert update.data["by"] == staff.user.email


def test_a_bad_edit_is_named_and_saves_nothing(client, staff, merchant):
    customer = CustomerFactory(merchant=merchant, first_name="Kim")
    response = client.post(
        f"/customers/{customer.pk}/edit/",
        {"first_name": "X", "email": "nope", "birth_date": "31/31/2000"},
    )
    body = response.content.decode()
    assert "Enter a valid email address." in body
    assert "Enter a valid date." in body
    customer.refresh_from_db()
    assert customer.first_name == "Kim"


def test_export_gives_everything_held_and_is_audited(client, staff, merchant):
    order_ingest(
        merchant=merchant,
        data=order_data("E-1", customer=CustomerData(external_id="e", email="eve@x.test")),
    )
    customer = Customer.objects.get(external_id="e")

    response = client.get(f"/customers/{customer.pk}/export/")

    assert response["Content-Disposition"] == f'attachment; filename="customer-{customer.pk}.json"'
    data = json.loads(response.content)
    assert data["profile"]["email"] == "eve@x.test"
    assert data["orders"][0]["external_id"] == "E-1"
    assert data["orders"][0]["lines"][0]["sku"] == "TEA-1"
    assert sorted(a["kind"] for a in data["timeline"]) == ["order.placed", "profile.created"]
    assert AuditEvent.objects.filter(
        action="customer.exported", actor=staff.user, object_id=str(customer.pk)
    ).exists()


def test_erase_leaves_a_tombstone_keeps_the_books_and_is_audited(client, staff, merchant):
    order_ingest(
        merchant=merchant,
        data=order_data(
            "Z-1",
            total="30.00",
            customer=CustomerData(external_id="z", email="zed@x.test", first_name="Zed"),
        ),
    )
    customer = Customer.objects.get(external_id="z")

    client.post(f"/customers/{customer.pk}/erase/")

    customer.refresh_from_db()
    assert customer.erased_at is not None
    assert (customer.email, customer.first_name, customer.external_id) == ("", "", "")
    assert Order.objects.get(external_id="Z-1").total == Decimal("30.00")
    assert customer.total_spent == Decimal("30.00")
    audit = AuditEvent.objects.get(action="customer.erased")
    assert "zed" not in json.dumps([audit.object_repr, audit.before, audit.after])
    assert "zed@x.test" not in client.get(f"/customers/{customer.pk}/").content.decode()
    # The shop sending the same person again starts a new profile, not the erased one.
    order_ingest(
        merchant=merchant,
        data=order_data("Z-2", customer=CustomerData(external_id="z", email="zed@x.test")),
    )
    assert Customer.objects.filter(external_id="z", erased_at__isnull=True).count() == 1


def test_support_can_read_but_not_export_or_edit(client, merchant):
    member = StaffMemberFactory(merchant=merchant, role="support")
    client.force_login(member.user)
    customer = CustomerFactory(merchant=merchant)
    body = client.get(f"/customers/{customer.pk}/").content.decode()
    assert "Export data" not in body
    assert "Edit profile" not in body
    assert client.get(f"/customers/{customer.pk}/export/").status_code == 403


def test_the_list_filters_by_persona_and_refuses_another_merchants(client, staff, merchant):
    from customers.models import Persona

    mine = Persona.objects.create(merchant=merchant, name="Regulars")
    theirs = Persona.objects.create(merchant=CustomerFactory().merchant, name="Theirs")
    CustomerFactory(merchant=merchant, first_name="Ines", persona=mine)
    CustomerFactory(merchant=merchant, first_name="Otto")

    body = client.get(f"/customers/?persona={mine.pk}").content.decode()
    assert "Ines" in body
    assert "Otto" not in body
    refused = client.get(f"/customers/?persona={theirs.pk}").content.decode()
    assert "Persona: Select a valid choice." in refused
    assert "Theirs" not in refused


@pytest.mark.needs_postgres
@pytest.mark.parametrize(
    ("q", "indexes"),
    [
        ("Ada", {"customer_search_first_name", "customer_search_last_name"}),
        ("ada@ex", {"customer_search_email"}),
    ],
)
def test_searches_are_answered_from_indexes_on_postgresql(merchant, q, indexes):
    """At a million customers a search that reads the whole table takes seconds: the plan
    must be able to answer it from the search indexes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers.selectors import CustomerFilters, customer_list

    CustomerFactory(merchant=merchant, first_name="Ada", email="ada@example.test")
    Customer.objects.bulk_create(
        Customer(merchant=merchant, first_name=f"N{n}", last_name=f"L{n}", email=f"{n}@x.test")
        for n in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    with CaptureQueriesContext(connection) as captured:
        assert len(customer_list(merchant=merchant, filters=CustomerFilters(q=q))) == 1
    with connection.cursor() as cursor:
        # Tiny test tables are cheapest to scan; forbid it, and the pkey walk, to see
        # whether the indexes can answer at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {captured.captured_queries[-1]['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert all(name in plan for name in indexes), plan


def test_links_and_choices_carry_plain_ids_however_large(client, staff, merchant):
    from customers.models import Persona

    CustomerFactory(merchant=merchant, pk=12345, first_name="Big", last_name="Id")
    Persona.objects.create(merchant=merchant, pk=4321, name="Large")
    body = client.get("/customers/").content.decode()
    # Numbers are shown with thousand separators; ids in addresses and values never are.
    assert 'href="/customers/12345/"' in body
    assert 'value="4321"' in body
    assert client.get("/customers/12345/").status_code == 200


def _row(body: str, pk: int) -> str:
    return re.search(rf'<tr>\s*<td><a href="/customers/{pk}/">.*?</tr>', body, re.S).group(0)


def test_list_rows_escape_what_customers_typed_and_format_for_the_language(client, staff, merchant):
    from datetime import UTC, datetime
    from html import unescape

    from customers.models import Persona
    from merchants.models import User

    persona = Persona.objects.create(merchant=merchant, name="<i>Busy</i> & 'quick'")
    # 23:30 UTC on 9 July is past midnight in London, the shop's time zone.
    typed = CustomerFactory(
        merchant=merchant, first_name="<script>alert(1)</script>", last_name="&",
        email="x@example.test", external_id='"><b>', orders_count=1234,
        total_spent=Decimal("12345.50"), average_order_value=Decimal("10004.46"),
        last_order_at=datetime(2026, 7, 9, 23, 30, tzinfo=UTC), segment="cant_lose_them",
        persona=persona, marketing_consent=True,
    )  # fmt: skip
    quiet = CustomerFactory(merchant=merchant, first_name="", last_name="", email="",
                            external_id="only-an-id")  # fmt: skip
    body = client.get("/customers/").content.decode()
    row = _row(body, typed.pk)
    assert "<script>" not in body
    assert '"><b>' not in body
    assert "<i>Busy" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in row
    assert 'x@example.test · "><b>' in unescape(row)
    assert ">1,234<" in row
    assert "12,345.50 USD" in row
    assert "10,004.46 USD" in row
    assert ">07/10/2026<" in row
    assert "Can't Lose Them" in unescape(row)
    assert "<i>Busy</i> & 'quick'" in unescape(row)
    assert ">Given<" in row
    row = _row(body, quiet.pk)
    assert '">only-an-id</a>' in row
    assert row.count(">—<") == 6  # no last order, segment, persona, points, tier; no consent
    assert ">Not given<" in row

    User.objects.filter(pk=staff.user.pk).update(language="ru")
    client.post("/language/", {"language": "ru", "next": "/"})
    body = client.get("/customers/").content.decode()
    row = _row(body, typed.pk)
    assert ">1\xa0234<" in row
    assert "12\xa0345,50 USD" in row
    assert ">10.07.2026<" in row
    assert ">Нельзя потерять<" in row
    assert ">Дано<" in row
    assert ">Не указан<" in _row(body, quiet.pk)  # noqa: RUF001
