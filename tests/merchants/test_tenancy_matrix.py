"""Every URL the product serves, walked from the URL resolver, against every role and a
foreign merchant. A new URL that declares no access rule, or takes ids the table below
can't build, fails here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now

from merchants.models import ApiKey, AuditEvent, Merchant, StaffMember, StoreConnection
from merchants.roles import ROLE_PERMISSIONS, Perm, Role
from tests.merchants.factories import MerchantFactory, StaffMemberFactory, UserFactory

PUBLIC = "public"
# /api/v1/ answers to API keys, not staff roles: tests/customers/test_api_access.py walks
# those routes against missing, revoked, under-scoped and foreign keys.
API_KEY = "api-key"
API_PUBLIC = {"api:openapi-json", "api:openapi-view", "api:api-root"}
# /r/<merchant>/ answers to a signed-in customer, not staff: the walk at the end of this
# file opens each of them with another merchant's ids and another merchant's session.
PORTAL = "portal"


@dataclass(frozen=True)
class Route:
    name: str
    callback: Callable
    has_kwargs: bool

    @property
    def access(self) -> str | Perm | None:
        if self.name.startswith("api:"):
            return PUBLIC if self.name in API_PUBLIC else API_KEY
        view_class = getattr(self.callback, "view_class", None)
        if getattr(self.callback, "portal", False):
            return PORTAL
        if getattr(self.callback, "public", False) or getattr(view_class, "public", False):
            return PUBLIC
        return getattr(self.callback, "permission", None) or getattr(view_class, "permission", None)


def _walk(patterns, namespace: str = "") -> list[Route]:
    routes: list[Route] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            routes += _walk(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            assert entry.name, f"URL pattern {entry.pattern} has no name"
            routes.append(
                Route(
                    name=f"{namespace}{entry.name}",
                    callback=entry.callback,
                    has_kwargs=bool(entry.pattern.regex.groupindex),
                )
            )
    return routes


ROUTES = _walk(get_resolver().url_patterns)
STAFF_ROUTES = [route for route in ROUTES if route.access not in (PUBLIC, API_KEY, PORTAL, None)]


def _a_support_member(merchant: Merchant) -> dict:
    return {"pk": StaffMemberFactory(merchant=merchant, role=Role.SUPPORT).pk}


# How to build the ids of each URL that takes some, for a given merchant. The foreign
# column of the matrix builds them for another merchant and expects a 404.
def _an_api_key(merchant: Merchant) -> dict:
    from merchants.api_keys import api_key_create

    return {"pk": api_key_create(merchant=merchant, name="k", scopes=["ingest"])[0].pk}


def _a_connection(merchant: Merchant) -> dict:
    from merchants.api_keys import store_connection_create

    return {"pk": store_connection_create(merchant=merchant, platform="shopify").pk}


def _an_import(merchant: Merchant) -> dict:
    from customers.models import ImportJob

    job = ImportJob.objects.create(merchant=merchant, kind="customers", original_name="x.csv")
    return {"pk": job.pk}


def _a_customer(merchant: Merchant) -> dict:
    from tests.customers.factories import CustomerFactory

    return {"pk": CustomerFactory(merchant=merchant).pk}


def _a_persona(merchant: Merchant) -> dict:
    from customers.models import Persona

    return {"pk": Persona.objects.create(merchant=merchant, name=f"P{Persona.objects.count()}").pk}


def _a_tier(merchant: Merchant) -> dict:
    from tests.loyalty.factories import TierFactory

    return {"pk": TierFactory(merchant=merchant).pk}


def _a_rule(merchant: Merchant) -> dict:
    from tests.loyalty.factories import EarningRuleFactory

    return {"pk": EarningRuleFactory(merchant=merchant).pk}


def _a_reward(merchant: Merchant) -> dict:
    from tests.loyalty.factories import RewardFactory

    return {"pk": RewardFactory(merchant=merchant).pk}


def _a_plan(merchant: Merchant) -> dict:
    from loyalty.models import MembershipPlan

    plan = MembershipPlan.objects.create(merchant=merchant, name="Club", price=5, currency="USD",
                                         period="month")  # fmt: skip
    return {"pk": plan.pk}


def _a_flagged_referral(merchant: Merchant) -> dict:
    from loyalty.models import Referral
    from tests.customers.factories import CustomerFactory

    referral = Referral.objects.create(
        merchant=merchant,
        referrer=CustomerFactory(merchant=merchant),
        friend=CustomerFactory(merchant=merchant),
        state=Referral.State.FLAGGED,
        flags=["same_email"],
    )
    return {"pk": referral.pk}


def _a_ticket(merchant: Merchant) -> dict:
    from tests.feedback.factories import FeedbackFactory

    return {"pk": FeedbackFactory(merchant=merchant).pk}


def _an_attachment(merchant: Merchant) -> dict:
    from feedback.services.intake import feedback_submit
    from feedback.services.thread import Upload

    ticket = feedback_submit(
        merchant=merchant, channel="email", kind="question", body="See file",
        sender_email="someone@example.test", uploads=[Upload("a.txt", "text/plain", b"a")],
    )  # fmt: skip
    return {"pk": ticket.messages.get().attachments.get().pk}


def _a_department(merchant: Merchant) -> dict:
    from tests.feedback.factories import DepartmentFactory

    return {"pk": DepartmentFactory(merchant=merchant).pk}


def _a_routing_rule(merchant: Merchant) -> dict:
    from tests.feedback.factories import RoutingRuleFactory

    return {"pk": RoutingRuleFactory(merchant=merchant).pk}


def _a_canned_reply(merchant: Merchant) -> dict:
    from tests.feedback.factories import CannedReplyFactory

    return {"pk": CannedReplyFactory(merchant=merchant).pk}


def _a_promotion(merchant: Merchant) -> dict:
    from tests.campaigns.factories import PromotionFactory

    return {"pk": PromotionFactory(merchant=merchant).pk}


def _a_batch(merchant: Merchant) -> dict:
    from campaigns.models import CodeBatch
    from tests.campaigns.factories import PromotionFactory

    promotion = PromotionFactory(merchant=merchant)
    batch = CodeBatch.objects.create(merchant=merchant, promotion=promotion, count=2, made=2,
                                     state="done")  # fmt: skip
    return {"pk": batch.pk}


def _a_template(merchant: Merchant) -> dict:
    from tests.campaigns.factories import TemplateFactory

    return {"pk": TemplateFactory(merchant=merchant).pk}


def _a_campaign(merchant: Merchant) -> dict:
    from campaigns.models import Campaign

    return {"pk": Campaign.objects.create(merchant=merchant, name="Back", kind="winback").pk}


URL_KWARGS: dict[str, Callable[[Merchant], dict]] = {
    "campaigns:campaign-detail": _a_campaign,
    "campaigns:campaign-update": _a_campaign,
    "campaigns:campaign-change": _a_campaign,
    "campaigns:campaign-export": _a_campaign,
    "campaigns:template-update": _a_template,
    "campaigns:template-test": _a_template,
    "campaigns:customer-panel": _a_customer,
    "campaigns:promotion-detail": _a_promotion,
    "campaigns:promotion-update": _a_promotion,
    "campaigns:batch-create": _a_promotion,
    "campaigns:shop-push": _a_promotion,
    "campaigns:batch-progress": _a_batch,
    "campaigns:batch-export": _a_batch,
    "feedback:ticket-detail": _a_ticket,
    "feedback:ticket-reply": _a_ticket,
    "feedback:ticket-state": _a_ticket,
    "feedback:ticket-assign": _a_ticket,
    "feedback:ticket-triage": _a_ticket,
    "feedback:ticket-tag": _a_ticket,
    "feedback:ticket-merge": _a_ticket,
    "feedback:ticket-review": _a_ticket,
    "feedback:ticket-canned": _a_ticket,
    "feedback:ticket-presence": _a_ticket,
    "feedback:attachment": _an_attachment,
    "feedback:department-update": _a_department,
    "feedback:rule-update": _a_routing_rule,
    "feedback:rule-move": _a_routing_rule,
    "feedback:canned-update": _a_canned_reply,
    "feedback:canned-delete": _a_canned_reply,
    "loyalty:tier-update": _a_tier,
    "loyalty:tier-delete": _a_tier,
    "loyalty:rule-update": _a_rule,
    "loyalty:reward-update": _a_reward,
    "loyalty:plan-update": _a_plan,
    "loyalty:referral-review": _a_flagged_referral,
    "loyalty:customer-panel": _a_customer,
    "feedback:customer-panel": _a_customer,
    "loyalty:customer-adjust": _a_customer,
    "loyalty:customer-tier": _a_customer,
    "customers:persona-detail": _a_persona,
    "customers:persona-update": _a_persona,
    "customers:persona-move": _a_persona,
    "customers:persona-delete": _a_persona,
    "customers:customer-detail": _a_customer,
    "customers:customer-update": _a_customer,
    "customers:customer-export": _a_customer,
    "customers:customer-erase": _a_customer,
    "customers:import-detail": _an_import,
    "customers:import-errors": _an_import,
    "customers:import-resume": _an_import,
    "customers:connection-deliveries": _a_connection,
    "merchants:connection-revoke": _a_connection,
    "merchants:apikey-revoke": _an_api_key,
    "merchants:staff-update": _a_support_member,
    "merchants:staff-remove": _a_support_member,
}
PUBLIC_URL_KWARGS: dict[str, dict] = {
    "password_reset_confirm": {"uidb64": "MQ", "token": "set-password"},
    # Webhooks authenticate by the platform's HMAC: tests/customers/test_webhooks.py.
    "hook-shopify": {"connection": "00000000-0000-4000-8000-000000000000"},
    "hook-woocommerce": {"connection": "00000000-0000-4000-8000-000000000000"},
    # Signed with the shop's inbound secret: tests/feedback/test_inbound.py.
    "hook-email": {"merchant_slug": "any-shop"},
}


def test_every_url_declares_who_may_open_it():
    undeclared = [route.name for route in ROUTES if route.access is None]
    assert undeclared == [], "Declare `permission` (merchants.access) or mark public"


def test_every_url_with_ids_has_a_way_to_build_them():
    missing = [
        route.name
        for route in ROUTES
        if route.has_kwargs
        and route.access not in (API_KEY, PORTAL)
        and route.name not in URL_KWARGS | PUBLIC_URL_KWARGS
    ]
    assert missing == [], "Add these to URL_KWARGS so the matrix covers them"


def test_matrix_covers_every_staff_url_and_role():
    # The parametrised tests below run one case per pair; this names the size.
    assert len(STAFF_ROUTES) * len(Role) == len(MATRIX)
    assert len(MATRIX) >= 40


MATRIX = [(route, role) for route in STAFF_ROUTES for role in Role]


def _url(route: Route, merchant: Merchant) -> str:
    kwargs = URL_KWARGS[route.name](merchant) if route.has_kwargs else {}
    return reverse(route.name, kwargs=kwargs)


@pytest.fixture
def foreign_marker(db):
    """Another merchant with names that must never appear on our merchant's pages."""
    other = MerchantFactory(name="Zebra Foreign Shop", slug="zebra-foreign")
    member = StaffMemberFactory(
        merchant=other, role=Role.OWNER, user=UserFactory(email="foreign-person@zebra.test")
    )
    AuditEvent.objects.create(
        merchant=other, actor_label="foreign-person@zebra.test", action="settings.changed"
    )
    return other, member


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("route", "role"), MATRIX, ids=[f"{route.name}-{role.value}" for route, role in MATRIX]
)
def test_staff_url_answers_each_role(client, route: Route, role: Role, foreign_marker):
    member = StaffMemberFactory(role=role)
    client.force_login(member.user)
    url = _url(route, member.merchant)
    allowed = role in ROLE_PERMISSIONS[route.access]

    response = client.get(url)

    if allowed:
        assert response.status_code in (200, 302, 405), response.status_code
        content = b"".join(response.streaming_content) if response.streaming else response.content
        body = content.decode()
        assert "Zebra Foreign Shop" not in body
        assert "foreign-person@zebra.test" not in body
    else:
        assert response.status_code == 403
        staff_before = (
            StaffMember.objects.count(),
            ApiKey.objects.filter(revoked_at=None).count()
            + StoreConnection.objects.filter(revoked_at=None).count(),
        )
        assert client.post(url).status_code == 403
        assert (
            StaffMember.objects.count(),
            ApiKey.objects.filter(revoked_at=None).count()
            + StoreConnection.objects.filter(revoked_at=None).count(),
        ) == staff_before
        assert AuditEvent.objects.filter(
            merchant=member.merchant,
            action=AuditEvent.Action.PERMISSION_DENIED,
            actor=member.user,
        ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("route", STAFF_ROUTES, ids=[route.name for route in STAFF_ROUTES])
def test_staff_url_sends_anonymous_visitors_to_sign_in(client, route: Route):
    response = client.get(_url(route, MerchantFactory()))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


FOREIGN_ROUTES = [route for route in STAFF_ROUTES if route.has_kwargs]
FOREIGN_MATRIX = [
    (route, role)
    for route in FOREIGN_ROUTES
    for role in Role
    if role in ROLE_PERMISSIONS[route.access]
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("route", "role"),
    FOREIGN_MATRIX,
    ids=[f"{route.name}-{role.value}" for route, role in FOREIGN_MATRIX],
)
def test_foreign_merchant_ids_are_not_found(client, route: Route, role: Role):
    member = StaffMemberFactory(role=role)
    client.force_login(member.user)
    foreign_url = _url(route, MerchantFactory())
    before = (
        StaffMember.objects.count(),
        ApiKey.objects.filter(revoked_at=None).count()
        + StoreConnection.objects.filter(revoked_at=None).count(),
    )

    assert client.get(foreign_url).status_code == 404
    assert client.post(foreign_url, {"m1-role": "owner"}).status_code == 404
    assert (
        StaffMember.objects.count(),
        ApiKey.objects.filter(revoked_at=None).count()
        + StoreConnection.objects.filter(revoked_at=None).count(),
    ) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route",
    [route for route in ROUTES if route.access == PUBLIC and route.name != "api:api-root"],
    ids=[route.name for route in ROUTES if route.access == PUBLIC and route.name != "api:api-root"],
)
def test_public_urls_open_without_signing_in(client, route: Route):
    response = client.get(reverse(route.name, kwargs=PUBLIC_URL_KWARGS.get(route.name, {})))
    # language-set and logout take POST only; the rest render. An ESP's tracking webhook
    # takes POST, or is not found when its signing key isn't set (tests/campaigns/
    # test_tracking.py signs them).
    allowed = (200, 302, 405, 404) if route.name.startswith("anymail:") else (200, 302, 405)
    assert response.status_code in allowed


# --- The rewards page ------------------------------------------------------------------
PORTAL_ROUTES = [route for route in ROUTES if route.access == PORTAL]


# The ids each rewards-page URL takes besides the merchant's slug. A new URL with ids
# not named here fails to reverse below.
PORTAL_IDS = {
    "portal:panel": ["name"],
    "portal:magic-link": ["token"],
    "loyalty-portal:redeem": ["pk"],
    "loyalty-portal:invite": ["code"],
    "campaigns-portal:code-get": ["pk"],
    "campaigns-portal:unsubscribe": ["token"],
    "feedback-portal:reply": ["pk"],
    "feedback-portal:csat": ["token"],
    "feedback-portal:review": ["token"],
}


def _portal_kwargs(route: Route, slug: str, foreign: dict) -> dict:
    """The merchant in the URL is ours; every other id is the foreign merchant's."""
    return {"merchant_slug": slug, **{
        k: foreign.get(f"{route.name}:{k}", foreign[k]) for k in PORTAL_IDS.get(route.name, [])
    }}  # fmt: skip


def test_the_walk_covers_every_rewards_page_url():
    assert {route.name for route in PORTAL_ROUTES} >= {
        "portal:home", "portal:panel", "portal:sign-in", "portal:magic-link",
        "portal:storefront-link", "portal:sign-out", "portal:language",
        "loyalty-portal:redeem", "loyalty-portal:invite",
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("route", PORTAL_ROUTES, ids=[route.name for route in PORTAL_ROUTES])
def test_rewards_page_urls_with_foreign_ids_reach_nothing(client, route: Route):
    """A customer of ours, signed in, puts the other merchant's ids (a reward, a referral
    code, a sign-in token) into our URLs, and then our ids into theirs with our session:
    nothing of theirs shows, nothing of anyone's changes."""
    from customers.models import Customer, PortalSignIn
    from customers.services.portal import magic_link_make, storefront_link_make
    from loyalty.models import PointsEntry, Redemption, Referral
    from loyalty.services.ledger import account_for
    from tests.loyalty.factories import ProgramFactory, RewardFactory

    ours, theirs = MerchantFactory(), MerchantFactory()
    for merchant in (ours, theirs):
        ProgramFactory(merchant=merchant)
    mine = Customer.objects.create(merchant=ours, external_id="me", first_name="Mina")
    them = Customer.objects.create(merchant=theirs, external_id="them", first_name="Theo")
    their_account = account_for(customer=them)
    their_token = magic_link_make(customer=them).rstrip("/").rsplit("/", 1)[1]
    foreign = {
        "pk": RewardFactory(merchant=theirs).pk,
        "code": their_account.referral_code,
        "token": their_token,
        "name": "points",
    }
    # Their customer's ticket: our customer can neither read nor answer it.
    from feedback.models import Channel, Kind
    from feedback.services.intake import feedback_submit

    their_ticket = feedback_submit(
        merchant=theirs, customer=them, channel=Channel.PORTAL, kind=Kind.QUESTION,
        subject="Theo asks", body="Hello",
    )  # fmt: skip
    foreign["feedback-portal:reply:pk"] = their_ticket.pk
    from tests.campaigns.factories import PromotionFactory

    foreign["campaigns-portal:code-get:pk"] = PromotionFactory(merchant=theirs).pk
    # Their customer's unsubscribe link, tried under our shop's address.
    from campaigns.services.messages import unsubscribe_token
    from campaigns.services.sending import message_queue
    from tests.campaigns.factories import TemplateFactory

    theirs_sent = message_queue(customer=them, template=TemplateFactory(merchant=theirs),
                                key="tenancy")  # fmt: skip
    foreign["campaigns-portal:unsubscribe:token"] = unsubscribe_token(theirs_sent)
    # A review link of theirs, for one of their orders.
    from customers.models import Order
    from feedback.services.reviews import review_link_make

    their_order = Order.objects.create(merchant=theirs, customer=them, external_id="T-1",
                                       placed_at=now(), total=10, subtotal=10,
                                       currency="USD")  # fmt: skip
    review = review_link_make(them, {"order_id": their_order.pk})
    foreign["feedback-portal:review:token"] = review.rstrip("/").rsplit("/", 1)[1]
    assert client.get(storefront_link_make(customer=mine)).status_code == 302
    counts = (Redemption.objects.count(), Referral.objects.count(), PointsEntry.objects.count())

    for method in ("get", "post"):
        url = reverse(route.name, kwargs=_portal_kwargs(route, ours.slug, foreign))
        response = getattr(client, method)(url, {"state": "0", "email": "x@example.test"})
        assert b"Theo" not in response.content
        assert response.status_code in (200, 302, 400, 404, 405, 410, 403)
        posted = ("loyalty-portal:redeem", "loyalty-portal:invite", "campaigns-portal:code-get")
        if route.name in posted and method == "post":
            assert response.status_code == 404
        if route.name == "portal:magic-link":
            assert response.status_code == 410  # their token is no link of ours
        if route.name == "portal:magic-link":
            continue  # their link at their address is theirs to use
        # Our session at their address: signed out there.
        theirs_url = reverse(route.name, kwargs=_portal_kwargs(route, theirs.slug, foreign))
        client.cookies["regulars_rewards"] = client.cookies["regulars_rewards"].value
        response = getattr(client, method)(theirs_url, {"state": "0"})
        assert b"Mina" not in response.content
        if route.name in ("portal:home", "portal:panel", "loyalty-portal:redeem"):
            assert response.status_code == 302
    assert (Redemption.objects.count(), Referral.objects.count()) == counts[:2]
    assert their_ticket.messages.count() == 1
    assert PortalSignIn.objects.get(customer=them).used_at is None
