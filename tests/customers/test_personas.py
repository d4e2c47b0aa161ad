from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils.timezone import now

from customers.metrics import audience_figures
from customers.models import Customer, Persona
from customers.personas import (
    persona_delete,
    persona_move,
    persona_save,
    rules_preview_count,
    rules_validate,
    segments_and_personas_refresh,
)
from customers.services import CustomerData, OrderData, OrderLineData, order_ingest
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db

BUSY = [
    {"field": "express_share", "op": "gte", "value": "50"},
    {"field": "aov", "op": "gte", "value": "80"},
]
BUDGET = [{"field": "discount_share", "op": "gte", "value": "50"}]


def _order(
    shop,
    number,
    who,
    *,
    total="100.00",
    codes=(),
    discount="0",
    shipping="Standard",
    channel="web",
    category="tea",
):
    return order_ingest(
        merchant=shop,
        data=OrderData(
            source="api",
            external_id=f"{who}-{number}",
            placed_at=now() - timedelta(days=number),
            total=Decimal(total),
            discount=Decimal(discount),
            currency="USD",
            customer=CustomerData(external_id=who),
            discount_codes=codes,
            shipping_method=shipping,
            channel=channel,
            lines=(OrderLineData(sku="X", category=category, price=Decimal(total)),),
        ),
    )


@pytest.fixture
def shop():
    shop = MerchantFactory(base_currency="USD")
    # Busy: pays for express delivery on the phone, spends well.
    for n in range(4):
        _order(
            shop,
            n + 1,
            "busy",
            total="120.00",
            shipping="Express 24h" if n < 3 else "Standard",
            channel="mobile",
            category="ready meals",
        )
    # Budget: waits for codes.
    for n in range(4):
        _order(
            shop,
            n + 1,
            "budget",
            total="30.00",
            codes=("SAVE10",) if n < 3 else (),
            category="pantry",
        )
    # Both: express and codes, big baskets.
    for n in range(2):
        _order(
            shop,
            n + 1,
            "both",
            total="150.00",
            codes=("VIP",),
            shipping="Next day",
            discount="15.00",
        )
    # Neither.
    _order(shop, 1, "plain", total="40.00")
    return shop


def _persona_of(shop, who):
    customer = Customer.objects.get(merchant=shop, external_id=who)
    return customer.persona.name if customer.persona else None


def test_behaviour_is_read_from_the_orders(shop):
    segments_and_personas_refresh(merchant=shop)
    busy = Customer.objects.get(external_id="busy")
    assert (busy.express_order_share, busy.discount_order_share) == (Decimal("0.75"), Decimal("0"))
    assert (busy.main_channel, busy.top_category) == ("mobile", "ready meals")
    budget = Customer.objects.get(external_id="budget")
    assert budget.discount_order_share == Decimal("0.75")
    both = Customer.objects.get(external_id="both")
    assert (both.discount_order_share, both.express_order_share) == (Decimal("1"), Decimal("1"))


def test_first_matching_persona_by_priority_wins_and_moving_changes_it(shop):
    segments_and_personas_refresh(merchant=shop)
    busy = persona_save(
        merchant=shop,
        name="Busy professional",
        description="Values convenience",
        offers="Free express",
        rules=BUSY,
    )
    budget = persona_save(
        merchant=shop,
        name="Budget shopper",
        description="Values discounts",
        offers="Codes",
        rules=BUDGET,
    )

    assert [_persona_of(shop, who) for who in ("busy", "budget", "both", "plain")] == [
        "Busy professional",
        "Budget shopper",
        "Busy professional",
        None,
    ]
    persona_move(persona=budget, direction="up")
    assert list(Persona.objects.filter(merchant=shop).values_list("name", flat=True)) == [
        "Budget shopper",
        "Busy professional",
    ]
    assert _persona_of(shop, "both") == "Budget shopper"
    persona_delete(persona=Persona.objects.get(pk=budget.pk))
    assert _persona_of(shop, "both") == "Busy professional"
    assert _persona_of(shop, "budget") is None
    assert busy.pk == Persona.objects.get().pk


def test_rules_name_the_part_that_is_wrong():
    cases = [
        ([{"field": "shoe_size", "op": "gte", "value": "9"}], "rules[0].field"),
        ([{"field": "aov", "op": "is", "value": "9"}], "rules[0].op"),
        ([BUSY[0], {"field": "aov", "op": "gte", "value": "lots"}], "rules[1].value"),
        ([{"field": "segment", "op": "eq", "value": "vip"}], "rules[0].value"),
        ([{"field": "city", "op": "eq", "value": " "}], "rules[0].value"),
    ]
    for rules, where in cases:
        with pytest.raises(ValidationError) as error:
            rules_validate(rules)
        assert list(error.value.message_dict) == [where]


def test_two_personas_cannot_share_a_name(shop):
    persona_save(merchant=shop, name="Regulars", description="", offers="", rules=[])
    with pytest.raises(ValidationError) as error:
        persona_save(merchant=shop, name="Regulars", description="", offers="", rules=BUDGET)
    assert "name" in error.value.message_dict


def test_preview_counts_matching_customers_of_this_merchant_only(shop):
    segments_and_personas_refresh(merchant=shop)
    other = MerchantFactory(base_currency="USD")
    _order(other, 1, "budget", total="30.00", codes=("X",))
    segments_and_personas_refresh(merchant=other)
    assert rules_preview_count(merchant=shop, rules=BUDGET) == 2
    assert rules_preview_count(merchant=shop, rules=[]) == 4


@pytest.mark.parametrize(
    ("born", "older_than_30", "exactly_30"),
    [
        (date(1996, 3, 1), True, True),  # 30th birthday today
        (date(1996, 3, 2), False, False),  # turns 30 tomorrow
        (date(1995, 3, 2), True, True),  # 31 tomorrow, 30 today
        (date(1996, 2, 29), True, True),  # leap-day birthday, counted from 28/29 Feb
    ],
)
def test_age_rules_turn_on_the_birthday(born, older_than_30, exactly_30):
    shop = MerchantFactory()
    CustomerFactory(merchant=shop, birth_date=born)
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        gte = rules_preview_count(
            merchant=shop, rules=[{"field": "age", "op": "gte", "value": "30"}]
        )
        eq = rules_preview_count(merchant=shop, rules=[{"field": "age", "op": "eq", "value": "30"}])
    assert (gte, eq) == (int(older_than_30), int(exactly_30))


def test_persona_figures_follow_the_one_definition(shop):
    segments_and_personas_refresh(merchant=shop)
    busy = persona_save(merchant=shop, name="Busy", description="", offers="", rules=BUSY)
    figures = audience_figures(Customer.objects.filter(merchant=shop), group_by="persona")

    mine = figures[busy.pk]
    # busy: 4 x 120 = 480; both: 2 x 150 = 300; 780 of the store's 780 + 120 + 40 = 940
    assert (mine.size, mine.buyers, mine.revenue) == (2, 2, Decimal("780.00"))
    assert mine.revenue_share == Decimal("0.8298")
    assert mine.repeat_rate == Decimal("1.0000")
    assert mine.aov == Decimal("130.00")  # 780 / 6 orders
    assert mine.clv == Decimal("390.00")  # 780 / 2 buyers
    rest = figures[None]
    assert (rest.size, rest.revenue) == (2, Decimal("160.00"))


@pytest.mark.django_db(transaction=True)
def test_persona_figures_are_counted_once_and_again_after_each_reassignment(shop):
    """Pages read the figures from the cache; a reassignment makes the next read count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers.selectors import persona_figures

    segments_and_personas_refresh(merchant=shop)
    busy = persona_save(merchant=shop, name="Busy", description="", offers="", rules=BUSY)
    figures, first_counted = persona_figures(merchant=shop)
    assert figures[busy.pk].size == 2
    with CaptureQueriesContext(connection) as queries:
        again, counted = persona_figures(merchant=shop)
    assert (len(queries), counted, again[busy.pk].size) == (0, first_counted, 2)

    persona_save(merchant=shop, name="Busy", description="", offers="", rules=[], persona=busy)
    figures, counted = persona_figures(merchant=shop)
    assert counted > first_counted
    assert figures[busy.pk].size == 4


def _formset(rules, extra=None):
    data = {"rules-TOTAL_FORMS": str(len(rules)), "rules-INITIAL_FORMS": "0"}
    for index, rule in enumerate(rules):
        for key, value in rule.items():
            data[f"rules-{index}-{key}"] = value
    return data | (extra or {})


@pytest.fixture
def marketer(client, shop):
    from tests.merchants.factories import StaffMemberFactory

    member = StaffMemberFactory(merchant=shop, role="marketer")
    client.force_login(member.user)
    return member


def test_a_marketer_builds_a_persona_with_a_live_count_and_saves_it(client, shop, marketer):
    segments_and_personas_refresh(merchant=shop)
    preview = client.post("/customers/personas/preview/", _formset(BUDGET), HTTP_HX_REQUEST="true")
    assert "2 customers match these rules." in preview.content.decode()
    narrower = client.post(
        "/customers/personas/preview/",
        _formset([*BUDGET, {"field": "aov", "op": "gte", "value": "100"}]),
        HTTP_HX_REQUEST="true",
    )
    assert "1 customer matches these rules." in narrower.content.decode()
    more_rows = client.post("/customers/personas/preview/", _formset(BUDGET, {"add_rule": "1"}))
    assert more_rows.content.decode().count('data-testid="rule-row"') == 2

    response = client.post(
        "/customers/personas/new/",
        {"name": "Budget shopper", "description": "Waits for a code", "offers": "10% codes"}
        | _formset(BUDGET),
    )

    persona = Persona.objects.get(merchant=shop)
    assert response.url == f"/customers/personas/{persona.pk}/"
    assert persona.rules == [{"field": "discount_share", "op": "gte", "value": "50"}]
    assert persona.customers.count() == 2
    page = client.get("/customers/personas/").content.decode()
    assert "Budget shopper" in page


def test_a_bad_rule_is_named_on_the_form_and_nothing_is_saved(client, shop, marketer):
    response = client.post(
        "/customers/personas/new/",
        {"name": "Odd", "description": "", "offers": ""}
        | _formset([{"field": "aov", "op": "gte", "value": "a lot"}]),
    )
    assert "Enter a number." in response.content.decode()
    assert not Persona.objects.exists()


def test_choice_fields_offer_their_values_and_comparisons(client, shop, marketer):
    body = client.post(
        "/customers/personas/preview/",
        _formset([{"field": "segment", "op": "eq", "value": "champions"}]),
    ).content.decode()
    assert '<option value="champions" selected>Champions</option>' in body
    assert '<option value="gte"' not in body  # "at least" means nothing for a segment


def test_moving_a_persona_reassigns_customers(client, shop, marketer):
    segments_and_personas_refresh(merchant=shop)
    persona_save(merchant=shop, name="Busy", description="", offers="", rules=BUSY)
    budget = persona_save(merchant=shop, name="Budget", description="", offers="", rules=BUDGET)
    client.post(f"/customers/personas/{budget.pk}/move/", {"direction": "up"})
    assert _persona_of(shop, "both") == "Budget"


def test_the_count_alone_can_be_refreshed(client, shop, marketer):
    segments_and_personas_refresh(merchant=shop)
    body = client.post(
        "/customers/personas/preview/?count_only=1", _formset(BUDGET)
    ).content.decode()
    assert body.lstrip().startswith('<p id="persona-count"')
    assert "2 customers match these rules." in body
    assert "rule-row" not in body


def test_the_rule_builder_shows_no_developer_notes(client, shop, marketer):
    page = client.get("/customers/personas/new/").content.decode()
    assert "{#" not in page
    assert "Never swapped itself" not in page
