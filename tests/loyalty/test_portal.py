"""The customer's rewards page, over the real views: what it shows, redeeming on it, the
referral invitation, its languages, and what a foreign id in a URL reaches."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.timezone import now

from customers.models import Customer
from customers.services import CustomerData, order_ingest
from customers.services.portal import storefront_link_make
from loyalty.models import (
    Membership,
    MembershipPlan,
    PointsAccount,
    PointsEntry,
    Program,
    Redemption,
    Referral,
    Tier,
)
from loyalty.services.ledger import account_for, account_locked, entry_write
from loyalty.services.memberships import membership_start
from loyalty.services.rewards import reward_redeem
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, RewardFactory, TierFactory
from tests.loyalty.helpers import ledger_sum
from tests.merchants.factories import MerchantFactory

pytestmark = pytest.mark.django_db
RANA = CustomerData(external_id="rana", email="rana@example.test", first_name="Rana")


def _text(response) -> str:
    # <bdi> isolates words inside a sentence: no gap where it opens or closes.
    page = re.sub(r"</?bdi[^>]*>", "", response.content.decode())
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _earn(account, points: int, key: str, **fields) -> None:
    with transaction.atomic():
        entry_write(
            account=account_locked(account=account),
            kind=PointsEntry.Kind.EARN,
            points=points,
            key=key,
            **{"expires_at": None, **fields},
        )


@pytest.fixture
def shop(merchant):
    merchant.name = "Saffron Tea"
    merchant.save()
    program = ProgramFactory(
        merchant=merchant, point_value=Decimal("0.01"), referrer_points=300, pending_days=14
    )
    silver = TierFactory(merchant=merchant, name="Silver", threshold=Decimal("100.00"),
                         multiplier=Decimal("1.25"), perks="Free gift wrapping")  # fmt: skip
    gold = TierFactory(merchant=merchant, name="Gold", threshold=Decimal("500.00"))
    return program, silver, gold


@pytest.fixture
def rana(shop, merchant):
    """Two orders worth 320.00 (Silver: 400 points pending), and 1,000 points that are
    hers, expiring in ten days."""
    order_ingest(merchant=merchant, data=order_data("A-100", customer=RANA, total="120.00"))
    order_ingest(merchant=merchant, data=order_data("A-101", customer=RANA, total="200.00"))
    customer = Customer.objects.get(merchant=merchant, external_id="rana")
    account = account_for(customer=customer)
    _earn(account, 1000, "welcome", note="Welcome gift", expires_at=now() + timedelta(days=10))
    return customer


@pytest.fixture
def signed_in(client, rana):
    assert client.get(storefront_link_make(customer=rana)).status_code == 302
    return client


def _home(merchant) -> str:
    return reverse("portal:home", args=[merchant.slug])


def test_the_page_shows_what_the_points_are_worth(signed_in, merchant, rana):
    reward_redeem(
        account=rana.points_account,
        reward=RewardFactory(merchant=merchant, points_cost=300),
        key="earlier",
    )
    text = _text(signed_in.get(_home(merchant)))

    assert "Saffron Tea" in text
    assert "Hello, Rana" in text
    assert "700 points Worth 7.00 USD in rewards" in text
    assert (
        "370 points on their way" in text
    )  # 120 + 200 at Silver, times 1.25, in the return window
    # The lot of 1,000 expires in ten days, less the 300 spent since (oldest first).
    assert "700 points expire on" in text
    assert "Your tier: Silver" in text
    assert "Spend 180.00 USD more to reach Gold." in text
    assert "1.25\u00d7 points on every order" in text
    assert "Free gift wrapping" in text


def test_the_progress_bar_says_how_far_to_the_next_tier(signed_in, merchant):
    page = signed_in.get(_home(merchant)).content.decode()
    bar = re.search(r'<progress[^>]*value="(\d+)"', page)
    assert bar
    assert bar.group(1) == "64"
    assert "Progress to Gold" in page


def test_pending_points_whose_window_ended_count_as_available(client, merchant, rana):
    # The hourly job hasn't run, but the page counts them as a redemption would.
    account = rana.points_account
    account.refresh_from_db()
    client.get(storefront_link_make(customer=rana))
    import time_machine

    with time_machine.travel(now() + timedelta(days=15)):
        client.get(storefront_link_make(customer=rana))
        text = _text(client.get(_home(merchant)))
    assert "1,370 points" in text  # 1,000 + the 370 from the orders
    assert "on their way" not in text


def test_rewards_say_what_she_can_have_now(signed_in, merchant, shop):
    _program, _silver, gold = shop
    RewardFactory(merchant=merchant, name="5 off", points_cost=500)
    RewardFactory(merchant=merchant, name="Teapot", points_cost=5000)
    gold_only = RewardFactory(merchant=merchant, name="Tasting day", points_cost=200)
    gold_only.tiers.add(gold)
    RewardFactory(merchant=merchant, name="Sold out mug", points_cost=100, stock=0)

    page = signed_in.get(_home(merchant)).content.decode()
    rows = {re.search(r'fw-semibold" dir="auto">([^<]+)<', row).group(1): _text_of(row)
            for row in re.findall(r'<li[^>]*data-testid="reward".*?</li>', page, re.S)}  # fmt: skip

    assert "Redeem" in rows["5 off"]
    assert "4,000 more points needed" in rows["Teapot"]
    assert "For other tiers or members" in rows["Tasting day"]
    assert "Out of stock" in rows["Sold out mug"]


def _text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _redeem_form(page: str, reward) -> dict:
    form = re.search(
        rf'action="(/r/[^"]+/rewards/{reward.pk}/redeem/)".*?name="state" value="(\d+)"', page, re.S
    )
    return {"url": form.group(1), "state": form.group(2)}


def test_redeeming_shows_the_code_and_a_double_press_spends_once(signed_in, merchant, rana):
    reward = RewardFactory(merchant=merchant, name="5 off", points_cost=500)
    form = _redeem_form(signed_in.get(_home(merchant)).content.decode(), reward)

    first = signed_in.post(form["url"], {"state": form["state"]}, HTTP_HX_REQUEST="true")
    second = signed_in.post(form["url"], {"state": form["state"]}, HTTP_HX_REQUEST="true")

    (redemption,) = Redemption.objects.filter(account__customer=rana)
    assert redemption.code in _text(first)
    assert redemption.code in _text(second)
    assert "Enter it at checkout" in _text(first)
    assert first["HX-Trigger"] == "points-changed"
    rana.points_account.refresh_from_db()
    assert rana.points_account.available == 500
    assert ledger_sum(rana.points_account) == 1370 - 500


def test_two_tabs_drawn_from_the_same_balance_spend_once(client, merchant, rana):
    reward = RewardFactory(merchant=merchant, points_cost=400)
    client.get(storefront_link_make(customer=rana))
    tab_one = _redeem_form(client.get(_home(merchant)).content.decode(), reward)
    tab_two = _redeem_form(client.get(_home(merchant)).content.decode(), reward)

    client.post(tab_one["url"], {"state": tab_one["state"]})
    client.post(tab_two["url"], {"state": tab_two["state"]})

    assert Redemption.objects.filter(account__customer=rana).count() == 1
    # Once the page shows the new balance, a second one is a new choice.
    again = _redeem_form(client.get(_home(merchant)).content.decode(), reward)
    assert again["state"] != tab_one["state"]
    client.post(again["url"], {"state": again["state"]})
    assert Redemption.objects.filter(account__customer=rana).count() == 2


def test_without_scripts_redeeming_comes_back_to_the_page_with_the_code(signed_in, merchant, rana):
    reward = RewardFactory(merchant=merchant, name="Free shipping", points_cost=100)
    form = _redeem_form(signed_in.get(_home(merchant)).content.decode(), reward)
    response = signed_in.post(form["url"], {"state": form["state"]})
    assert response.status_code == 302
    code = Redemption.objects.get(account__customer=rana).code
    text = _text(signed_in.get(_home(merchant)))
    assert f"Your code: {code}" in text  # said once, at the top
    assert f"Your codes {code} · Free shipping Ready to use" in text
    assert "Redeemed · Free shipping" in text  # in the history


def test_a_refused_redemption_names_why_and_spends_nothing(signed_in, merchant, rana):
    reward = RewardFactory(merchant=merchant, points_cost=900, per_customer_limit=1)
    form = _redeem_form(signed_in.get(_home(merchant)).content.decode(), reward)
    reward.is_active = False
    reward.save()
    response = signed_in.post(form["url"], {"state": form["state"]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "This reward is no longer offered." in _text(response)
    assert not Redemption.objects.exists()


def test_history_names_the_order_each_entry_came_from(signed_in, merchant):
    text = _text(signed_in.get(_home(merchant)))
    assert "Earned · order A-101" in text
    assert "Earned · order A-100" in text
    assert "Earned · Welcome gift" in text
    assert "on its way" in text


def test_memberships_show_plans_and_her_own(signed_in, merchant, rana):
    from loyalty.models import MembershipPlan

    plan = MembershipPlan.objects.create(
        merchant=merchant, name="Tea Club", price=Decimal("9.00"), currency="USD",
        period=MembershipPlan.Period.MONTH, trial_days=14, recurring_points=200,
    )  # fmt: skip
    text = _text(signed_in.get(_home(merchant)))
    assert "Tea Club 9.00 USD / Month" in text
    assert "14 days free to try" in text

    membership_start(customer=rana, plan=plan)
    text = _text(signed_in.get(_home(merchant)))
    assert "Tea Club · Trial" in text
    assert "Renews on" in text
    assert Membership.objects.get().customer == rana


def test_the_referral_link_brings_a_friend_their_welcome_gift(signed_in, client, merchant, shop):
    program, *_ = shop
    program.friend_reward = RewardFactory(merchant=merchant, name="10% off", points_cost=1)
    program.save()
    page = signed_in.get(_home(merchant)).content.decode()
    link = re.search(r'value="(https?://[^"]+/invite/[^"]+/)"', page).group(1)
    assert "You get 300 points when they order" in _text_of(page)

    path = re.sub(r"^https?://[^/]+", "", link)
    from django.test import Client

    friend = Client(REMOTE_ADDR="198.51.100.23")  # elsewhere than Rana signed in from
    assert "Rana invited you to Saffron Tea" in _text(friend.get(path))
    bad = friend.post(path, {"email": "nope"})
    assert bad.status_code == 400
    assert "Enter a valid email address" in _text(bad)
    welcome = friend.post(path, {"email": "sam@example.test", "first_name": "Sam"})
    referral = Referral.objects.get()
    assert referral.welcome.code in _text(welcome)
    assert "Sam Invited" in _text(signed_in.get(_home(merchant)))


def test_the_page_speaks_her_language_then_her_browsers(client, merchant, rana):
    client.get(storefront_link_make(customer=rana))
    page = client.get(_home(merchant), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert '<html lang="ru" dir="ltr">' in page

    rana.language = "fa"
    rana.save(update_fields=["language"])
    page = client.get(_home(merchant), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert '<html lang="fa" dir="rtl">' in page
    assert "bootstrap.rtl.min.css" in page

    client.post(reverse("portal:language", args=[merchant.slug]), {"language": "ar"})
    rana.refresh_from_db()
    assert rana.language == "ar"
    assert '<html lang="ar" dir="rtl">' in client.get(_home(merchant)).content.decode()


def test_her_language_stays_on_her_page(client, merchant, rana):
    """A worker answers the next request (an API call, a staff page) in whatever language
    the thread has active: her page must give back the one it found."""
    rana.language = "ru"
    rana.save(update_fields=["language"])
    client.get(storefront_link_make(customer=rana))
    with translation.override("en"):
        response = client.get(_home(merchant), HTTP_ACCEPT_LANGUAGE="en")
        assert translation.get_language() == "en"
    assert '<html lang="ru" dir="ltr">' in response.content.decode()
    assert response["Content-Language"] == "ru"


def test_numbers_and_money_follow_the_language(client, merchant, rana):
    rana.language = "ru"
    rana.save(update_fields=["language"])
    client.get(storefront_link_make(customer=rana))
    page = client.get(_home(merchant)).content.decode()
    assert "1\xa0000" in page or "1 000" in page  # the 1,000-point lot in the history


def test_the_balance_reads_in_her_plural_and_no_tier_promises_nothing(client, merchant, rana):
    PointsAccount.objects.filter(pk=rana.points_account.pk).update(tier=None)
    rana.language = "ru"
    rana.save(update_fields=["language"])
    client.get(storefront_link_make(customer=rana))
    text = _text(client.get(_home(merchant)))
    assert "1 000 баллов" in text
    assert "Что даёт ваш уровень" not in text
    assert "tier-perks" not in client.get(_home(merchant)).content.decode()


def test_no_program_says_so(client, other_merchant):
    customer = Customer.objects.create(merchant=other_merchant, external_id="z", first_name="Zed")
    client.get(storefront_link_make(customer=customer))
    text = _text(client.get(_home(other_merchant)))
    assert "This shop has no rewards program running right now." in text


def test_the_page_reads_the_same_number_of_queries_however_much_she_has(
    client, merchant, rana, shop, django_assert_num_queries
):
    _program, silver, gold = shop
    RewardFactory(merchant=merchant, points_cost=10, per_customer_limit=1).tiers.add(gold)
    client.get(storefront_link_make(customer=rana))
    with django_assert_num_queries(QUERIES + FEEDBACK_QUERIES + OFFERS_QUERIES + CATALOG_QUERIES):
        assert client.get(_home(merchant)).status_code == 200
    with django_assert_num_queries(QUERIES + FEEDBACK_QUERIES + OFFERS_QUERIES):
        assert client.get(_home(merchant)).status_code == 200
    # Much more of everything: rewards (some tier-only, some limited), codes, history,
    # referrals.
    for n in range(12):
        reward = RewardFactory(merchant=merchant, points_cost=10 + n, per_customer_limit=5)
        reward.tiers.add(silver if n % 2 else gold)
        if n % 2:
            reward_redeem(account=rana.points_account, reward=reward, key=f"k{n}")
    for n in range(30):
        _earn(rana.points_account, 5, f"more-{n}", expires_at=now() + timedelta(days=n + 1))
    for n in range(5):
        Referral.objects.create(
            merchant=merchant, referrer=rana,
            friend=Customer.objects.create(merchant=merchant, external_id=f"f{n}"),
        )  # fmt: skip
    # The new rewards moved the catalog on: the next page reads it, the one after doesn't.
    with django_assert_num_queries(QUERIES + FEEDBACK_QUERIES + OFFERS_QUERIES + CATALOG_QUERIES):
        assert client.get(_home(merchant)).status_code == 200
    with django_assert_num_queries(QUERIES + FEEDBACK_QUERIES + OFFERS_QUERIES):
        assert client.get(_home(merchant)).status_code == 200


@pytest.mark.needs_postgres
def test_the_page_reads_the_same_once_its_statements_are_prepared(signed_in, merchant, rana, shop):
    """psycopg prepares a statement a connection has run a few times (DATABASES OPTIONS
    prepare_threshold), with the parameters bound by the server: the page's statements,
    typed by PostgreSQL from their parameters, show what they showed before."""
    _program, _silver, gold = shop
    RewardFactory(merchant=merchant, points_cost=10, per_customer_limit=1).tiers.add(gold)
    reward_redeem(account=rana.points_account, reward=RewardFactory(merchant=merchant,
                  points_cost=100, per_customer_limit=2), key="k")  # fmt: skip
    Referral.objects.create(merchant=merchant, referrer=rana, friend=Customer.objects.create(
        merchant=merchant, external_id="f1", first_name="Omar"))  # fmt: skip

    def page() -> str:
        text = signed_in.get(_home(merchant)).content.decode()
        return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": "|nonce=")[^"]+', r"\1…", text)

    first = page()
    threshold = connection.connection.prepare_threshold
    for _ in range((threshold or 0) + 2):
        assert page() == first
    for text in ("Omar", "history-entry", "regulars-code"):
        assert text in first


# The session's customer and her shop; her account with its balances, live membership, the
# limited rewards she took and her tier basis value; her lists (history, lots expiring soon,
# codes, referrals).
QUERIES = 4
# The catalog when the cache hasn't got it: program, tiers, rewards with their tiers and
# plans, membership plans, and the earning rules orders read from it.
CATALOG_QUERIES = 7
# The feedback panel (feedback/portal.py): her latest tickets, and only when she has some,
# their public messages (tests/feedback/test_portal.py counts that). She has none here.
FEEDBACK_QUERIES = 1
# The offers panel (campaigns/portal.py): the shop's running promotions; with none, nothing
# more (tests/campaigns/test_offers_portal.py shows the panel itself).
OFFERS_QUERIES = 1


def test_a_reward_staff_change_shows_on_the_next_page(signed_in, merchant):
    reward = RewardFactory(merchant=merchant, name="Tea towel", points_cost=100)
    assert "Tea towel" in _text(signed_in.get(_home(merchant)))
    reward.name = "Linen tea towel"
    reward.save()
    assert "Linen tea towel" in _text(signed_in.get(_home(merchant)))
    reward.delete()
    assert "tea towel" not in _text(signed_in.get(_home(merchant))).lower()


# --- Another merchant's ids ------------------------------------------------------------


@pytest.fixture
def foreign(db):
    other = MerchantFactory()
    ProgramFactory(merchant=other)
    customer = Customer.objects.create(merchant=other, external_id="x", first_name="Xena")
    account = account_for(customer=customer)
    _earn(account, 5000, "x")
    reward = RewardFactory(merchant=other, points_cost=100)
    return other, customer, account, reward


def test_a_foreign_reward_id_is_not_found_and_spends_nothing(signed_in, merchant, rana, foreign):
    _other, _customer, foreign_account, foreign_reward = foreign
    response = signed_in.post(
        reverse("loyalty-portal:redeem", args=[merchant.slug, foreign_reward.pk]), {"state": "0"}
    )
    assert response.status_code == 404
    assert not Redemption.objects.exists()
    foreign_account.refresh_from_db()
    assert foreign_account.available == 5000


def test_a_foreign_referral_code_is_not_found(client, merchant, foreign):
    _other, _customer, foreign_account, _reward = foreign
    url = reverse("loyalty-portal:invite", args=[merchant.slug, foreign_account.referral_code])
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "a@example.test"}).status_code == 404
    assert not Referral.objects.exists()


def test_her_session_opens_nothing_at_another_shop(signed_in, rana, foreign):
    other, *_ = foreign
    value = signed_in.cookies["regulars_rewards"].value
    signed_in.cookies["regulars_rewards"] = value  # sent everywhere now
    for name in ("portal:home", "portal:sign-out"):
        response = signed_in.get(reverse(name, args=[other.slug]))
        assert response.status_code in (302, 405)
    panel = signed_in.get(reverse("portal:panel", args=[other.slug, "points"]))
    assert panel.status_code == 302
    assert b"Xena" not in panel.content


def test_an_unknown_panel_is_not_found(signed_in, merchant):
    assert signed_in.get(reverse("portal:panel", args=[merchant.slug, "nope"])).status_code == 404


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_redeem_posts_at_once_spend_once(merchant):
    """Two presses of the same button reaching two workers at the same moment: one code,
    one spend. Real threads, real transactions, real row locks."""
    from django.test import Client

    from tests.races import race

    ProgramFactory(merchant=merchant)
    order_ingest(merchant=merchant, data=order_data("A-1", customer=RANA, total="10.00"))
    rana = Customer.objects.get(merchant=merchant, external_id="rana")
    account = account_for(customer=rana)
    _earn(account, 1000, "seed")
    clients = [Client(), Client()]
    for seconds, client in enumerate(clients):
        # Each device opens its own link (the same link twice would be refused).
        link = storefront_link_make(customer=rana, at=now() - timedelta(seconds=seconds))
        assert client.get(link).status_code == 302
    answers: list = []
    for round_ in range(10):
        reward = RewardFactory(merchant=merchant, points_cost=90)
        form = _redeem_form(clients[0].get(_home(merchant)).content.decode(), reward)
        answers.clear()

        def press(index: int, form=form) -> None:
            answers.append(clients[index].post(form["url"], {"state": form["state"]},
                                               HTTP_HX_REQUEST="true"))  # fmt: skip

        assert race(press, 2) == []
        (redemption,) = Redemption.objects.filter(reward=reward)
        assert [redemption.code in _text(answer) for answer in answers] == [True, True], [
            (a.status_code, _text(a)[-400:]) for a in answers
        ]
        account.refresh_from_db()
        assert account.available == 1010 - 90 * (round_ + 1)  # 1,000 + 10 from the order
    assert ledger_sum(account) == 1000 + 10 - 900


def test_invitations_from_one_address_are_limited(client, merchant, rana, shop):
    from loyalty.portal import INVITES_PER_IP

    code = account_for(customer=rana).referral_code
    url = reverse("loyalty-portal:invite", args=[merchant.slug, code])
    for n in range(INVITES_PER_IP):
        assert client.post(url, {"email": f"friend{n}@example.test"}).status_code == 200
    refused = client.post(url, {"email": "one-more@example.test"})
    assert refused.status_code == 429
    assert "Too many invitations from here" in _text(refused)
    assert not Customer.objects.filter(email="one-more@example.test").exists()
    # Another address may still come.
    other = client.post(url, {"email": "elsewhere@example.test"}, REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200


def _attribute(page: str, name: str) -> str:
    """An attribute's value as the browser reads it."""
    return html.unescape(re.search(rf'{name}="([^"]*)"', page).group(1))


def test_names_show_as_written_and_numbers_in_her_language(client, merchant, rana):
    """Every panel with the shop's and the customer's own words in it (markup in names,
    quotes in attributes), and its numbers, dates and plurals in English, Russian and
    Persian."""
    account = rana.points_account
    tea = RewardFactory(merchant=merchant, name='<b>Tea & "cups"</b>', points_cost=1500,
                        description="A <i>set</i> of two")  # fmt: skip
    RewardFactory(merchant=merchant, name="Gift card", points_cost=100, kind="points_for_amount",
                  max_units=20)  # fmt: skip
    RewardFactory(merchant=merchant, name="Sold out", points_cost=50, stock=0)
    reward_redeem(account=account, reward=RewardFactory(merchant=merchant, name="Mug & lid",
                  points_cost=100), key="mug")  # fmt: skip
    friend = Customer.objects.create(merchant=merchant, external_id="f")
    Referral.objects.create(merchant=merchant, referrer=rana, friend=friend)
    silver = Tier.objects.get(merchant=merchant, name="Silver")
    silver.name, silver.perks = '<i>Silver</i> & "co"', "Gift <b>wrap</b>\nand a card"
    silver.save()
    Tier.objects.filter(merchant=merchant, name="Gold").update(name="Gold's <best>")
    Program.objects.filter(merchant=merchant).update(friend_reward=tea)
    MembershipPlan.objects.create(
        merchant=merchant, name="<b>Club</b> & co", price=Decimal("1234.50"), currency="USD",
        period=MembershipPlan.Period.MONTH, recurring_points=1500,
        perks="Free <i>tea</i>\nevery week",
    )  # fmt: skip
    merchant.name = 'Saffron <Tea> & "Co"'
    merchant.save()
    client.get(storefront_link_make(customer=rana))

    page = client.get(_home(merchant)).content.decode()
    text = _text(client.get(_home(merchant)))

    for written in ("<b>Tea", "<i>set", "<i>Silver", "<b>wrap", "<b>Club", "<i>tea", "<Tea>",
                    "<best>"):  # fmt: skip
        assert written not in page
    assert '<b>Tea & "cups"</b> 1,500 points · A <i>set</i> of two 600 more points needed' in text
    assert "Gift card 100 points for each 1 USD Amount in USD Redeem" in text
    assert 'max="20"' in page
    assert "Sold out 50 points Out of stock" in text
    assert f'action="/r/{merchant.slug}/rewards/{tea.pk}/redeem/"' not in page  # not yet
    assert "Mug & lid Ready to use" in text
    assert "Redeemed · Mug & lid" in text  # the entry notes what it paid for
    assert "Earned · Welcome gift" in text
    assert "+1,000" in text
    assert "-100" in text
    assert "A friend Invited" in text
    assert page.count('name="csrfmiddlewaretoken"') >= 2  # sign-out and each redeem form
    assert 'Your tier: <i>Silver</i> & "co"' in text
    assert '<li dir="auto">Gift &lt;b&gt;wrap&lt;/b&gt;<br>and a card</li>' in page
    assert "1.25\u00d7 points on every order" in text
    assert "Worth 9.00 USD in rewards" in text
    assert "Spend 180.00 USD more to reach Gold's <best>." in text
    assert _attribute(page, "aria-label") == "Progress to Gold's <best>"
    assert "<b>Club</b> & co 1,234.50 USD / Month 1,500 points every period" in text
    assert '<li dir="auto">Free &lt;i&gt;tea&lt;/i&gt;<br>every week</li>' in page
    assert 'Your friends get <b>Tea & "cups"</b>. You get 300 points when they order.' in text
    assert _attribute(page, "data-share-title") == 'Saffron <Tea> & "Co"'
    assert re.search(r'value="http://testserver/r/[^"]+/invite/\w+/"', page)

    rana.language = "ru"
    rana.save(update_fields=["language"])
    text = _text(client.get(_home(merchant)))
    assert "1 500 баллов" in text  # a no-break space, which _text reads as a space
    assert "+1 000" in text
    assert "Ваши коды" in text
    assert "на сумму 9,00 USD" in text
    assert "Совершите покупки ещё на 180,00 USD" in text
    assert "Баллы \u00d71,25 за каждый заказ" in text
    assert "<b>Club</b> & co 1 234,50 USD / Месяц 1 500 баллов за каждый период" in text
    assert 'Ваш уровень: <i>Silver</i> & "co"' in text

    rana.language = "fa"
    rana.save(update_fields=["language"])
    page = client.get(_home(merchant)).content.decode()
    assert "<b>Tea" not in page
    # Persian groups thousands in Latin digits; the sign stays on the left.
    assert '<span class="fw-semibold text-nowrap text-success-emphasis"><bdi dir="ltr">+1,000' in (
        page
    )
    text = _text(client.get(_home(merchant)))
    assert '<html lang="fa" dir="rtl">' in page
    assert "1,234.50 USD / ماه 1,500 امتیاز در هر دوره" in text
    assert 'سطح شما: <i>Silver</i> & "co"' in text
    assert "180.00 USD" in text


@pytest.mark.parametrize(
    ("language", "points", "balance", "expiring"),
    [
        ("en", 1, "1 point", "1 point expires on March 24, 2026."),
        ("en", 2, "2 points", "2 points expire on March 24, 2026."),
        ("ru", 1, "1 балл", "1 балл сгорит 24 марта 2026"),
        ("ru", 2, "2 балла", "2 балла сгорят 24 марта 2026"),
        ("ru", 5, "5 баллов", "5 баллов сгорят 24 марта 2026"),
        ("ar", 2, "2 نقطتان", "تنتهي صلاحية 2 نقطتين في 24 مارس، 2026."),
        ("fa", 2, "2 امتیاز", "2 امتیاز در 24 مارس 2026 منقضی می‌شود."),
    ],
)
def test_plurals_and_dates_follow_her_language(client, merchant, language, points, balance,
                                               expiring):  # fmt: skip
    """The balance and what expires take the plural form their number needs (Russian has
    three, Arabic six), with the date in the language's own format."""
    import time_machine

    ProgramFactory(merchant=merchant)
    customer = Customer.objects.create(merchant=merchant, external_id="omar", language=language)
    with time_machine.travel(datetime(2026, 3, 14, 10, 30, tzinfo=UTC), tick=False):
        _earn(account_for(customer=customer), points, "few", expires_at=now() + timedelta(days=10))
        client.get(storefront_link_make(customer=customer))
        page = client.get(_home(merchant)).content.decode()
    points_panel = _text_of(re.search(r'<section[^>]*id="points".*?</section>', page, re.S)[0])
    assert balance in points_panel
    assert expiring in points_panel


def test_a_catalog_read_before_a_change_and_stored_after_it_is_not_shown(
    signed_in, merchant, django_assert_num_queries
):
    """A page that read the catalog just before staff changed it may store its copy after
    the change: the copy carries the version it was read under, so the next page reads the
    rows afresh instead of showing the stale copy."""
    from django.core.cache import cache

    from loyalty.selectors import catalog_of

    reward = RewardFactory(merchant=merchant, name="Tea towel", points_cost=100)
    stale = catalog_of(merchant=merchant)  # read, as the slow page did
    key = f"loyalty-catalog-4:{merchant.pk}"
    version, _copy = cache.get(key)
    reward.name = "Linen tea towel"
    reward.save()  # the version moves on
    cache.set(key, (version, stale))  # the slow page stores what it read
    assert "Linen tea towel" in _text(signed_in.get(_home(merchant)))
    # And keeps the fresh copy.
    with django_assert_num_queries(QUERIES + FEEDBACK_QUERIES + OFFERS_QUERIES):
        assert "Linen tea towel" in _text(signed_in.get(_home(merchant)))


def test_the_distance_to_the_next_tier_reads_as_money(signed_in, merchant, rana):
    # 320.00 spent plus 61.52: 118.48 short of Gold (500), on every database.
    order_ingest(merchant=merchant, data=order_data("A-102", customer=RANA, total="61.52"))
    assert "Spend 118.48 USD more to reach Gold." in _text(signed_in.get(_home(merchant)))


def test_spending_asks_first_and_too_few_points_reads_as_a_number(signed_in, merchant, rana):
    RewardFactory(merchant=merchant, name="Teapot", points_cost=100)
    text = _text(signed_in.get(_home(merchant)))
    assert "Redeem Spend your points on Teapot? Yes, redeem" in text
    from loyalty.services.ledger import account_locked, entry_write

    with transaction.atomic():
        account = account_locked(account=rana.points_account)
        account.available = 24394  # as if she had that many: the refusal's number
        with pytest.raises(ValidationError) as refused:
            entry_write(account=account, kind="redeem", points=-30000, key="big")
    assert "Not enough points: 24,394 available." in refused.value.messages


@pytest.mark.parametrize(
    ("language", "expiring", "earned_on"),
    [
        ("en", "2 points expire on Farvardin 4, 1405.", "12/23/1404"),
        ("ru", "2 балла сгорят 4 фарвардина 1405", "23.12.1404"),
        ("ar", "تنتهي صلاحية 2 نقطتين في 4 فروردين، 1405.", "23‏/12‏/1404"),
        ("fa", "2 امتیاز در 4 فروردین 1405 منقضی می‌شود.", "1404/12/23"),
    ],
)
def test_a_shop_on_the_solar_hijri_calendar_dates_the_page_in_it(client, merchant, language,
                                                                 expiring, earned_on):  # fmt: skip
    """A merchant that keeps the Persian calendar shows it on every date of the page (the
    expiry sentence and the history's short dates), in the reader's language and format:
    March 24, 2026 is 4 Farvardin 1405, March 14 the 23rd of Esfand 1404."""
    import time_machine

    merchant.calendar = "solar_hijri"
    merchant.save(update_fields=["calendar"])
    ProgramFactory(merchant=merchant)
    customer = Customer.objects.create(merchant=merchant, external_id="omar", language=language)
    with time_machine.travel(datetime(2026, 3, 14, 10, 30, tzinfo=UTC), tick=False):
        _earn(account_for(customer=customer), 2, "few", expires_at=now() + timedelta(days=10))
        client.get(storefront_link_make(customer=customer))
        page = client.get(_home(merchant)).content.decode()
    points_panel = _text_of(re.search(r'<section[^>]*id="points".*?</section>', page, re.S)[0])
    assert expiring in points_panel
    history = _text_of(re.search(r'<section[^>]*id="history".*?</section>', page, re.S)[0])
    assert earned_on in history
    assert "2026" not in points_panel + history
