"""/api/v1/feedback and /api/v1/reviews: feedback from the shop's own site or app, reviews
sent once however often they are resent, and a ticket's state and public conversation."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from feedback.models import Channel, Feedback, Kind, Message, ReviewState, State
from feedback.services.tickets import note_add, staff_reply
from merchants.api_keys import api_key_create
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, merchant, scopes=("ingest", "read")) -> None:
        _key, self.raw = api_key_create(merchant=merchant, name="Storefront", scopes=list(scopes))
        self.client = Client()

    def post(self, path: str, body, **headers):
        return self.client.post(
            f"/api/v1{path}",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.raw}",
            **headers,
        )

    def get(self, path: str):
        return self.client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {self.raw}")


@pytest.fixture
def api(merchant):
    return Api(merchant)


@pytest.fixture
def ada(merchant):
    return CustomerFactory(merchant=merchant, external_id="c-1", email="ada@example.test")


def _written() -> tuple[int, int]:
    return Feedback.objects.count(), Message.objects.count()


def test_feedback_from_a_customer_by_external_id(api, ada):
    response = api.post(
        "/feedback",
        {"customer": {"external_id": "c-1"}, "kind": "complaint", "rating": 2,
         "subject": "Cold tea", "body": "It arrived cold.", "language": "ru"},
    )  # fmt: skip
    assert response.status_code == 201
    body = response.json()
    ticket = Feedback.objects.get()
    assert body == {"id": ticket.pk, "state": "new", "kind": "complaint",
                    "subject": "Cold tea", "created": True}  # fmt: skip
    assert (ticket.customer, ticket.channel, ticket.rating, ticket.language) == (
        ada, Channel.API, 2, "ru"
    )  # fmt: skip


def test_feedback_by_email_finds_the_customer_or_keeps_the_sender(api, ada):
    known = api.post("/feedback", {"customer": {"email": "ADA@example.test"},
                                   "kind": "question", "body": "Open on Sunday?"})  # fmt: skip
    unknown = api.post("/feedback", {"customer": {"email": "walk.in@example.test", "name": "Sam"},
                                     "kind": "praise", "body": "Lovely shop"})  # fmt: skip
    assert (known.status_code, unknown.status_code) == (201, 201)
    assert Feedback.objects.get(pk=known.json()["id"]).customer == ada
    stranger = Feedback.objects.get(pk=unknown.json()["id"])
    assert stranger.customer is None
    assert (stranger.sender_email, stranger.sender_name) == ("walk.in@example.test", "Sam")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "rant"}, "kind"),
        ({"kind": "review"}, "kind"),  # reviews go to /reviews
        ({"rating": 6}, "rating"),
        ({"body": ""}, "body"),
        ({"subject": "x" * 201}, "subject"),
        ({"customer": {}}, "customer"),
        ({"customer": {"email": "not-an-address"}}, "customer.email"),
        ({"customer": {"external_id": "nobody"}}, "customer.external_id"),
    ],
)
def test_a_bad_feedback_body_is_400_naming_the_field_and_writes_nothing(api, ada, change, field):
    body = {"customer": {"external_id": "c-1"}, "kind": "question", "body": "Hello"} | change
    response = api.post("/feedback", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert _written() == (0, 0)


def test_not_json_is_400(api):
    response = api.client.post("/api/v1/feedback", "{", content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {api.raw}")  # fmt: skip
    assert response.status_code == 400
    assert _written() == (0, 0)


REVIEW = {
    "id": "rev-77",
    "customer": {"external_id": "c-1"},
    "product_sku": "TEA-1",
    "product_name": "Green tea",
    "rating": 5,
    "body": "Best sencha I've had.",
}


def test_a_review_sent_again_returns_the_same_ticket_and_creates_nothing(api, ada):
    first = api.post("/reviews", REVIEW)
    assert first.status_code == 201
    assert first.json()["created"] is True
    ticket = Feedback.objects.get()
    assert (ticket.kind, ticket.channel, ticket.external_id, ticket.product_sku) == (
        Kind.REVIEW, Channel.REVIEW, "rev-77", "TEA-1"
    )  # fmt: skip
    assert ticket.review_state == ReviewState.PENDING
    written = _written()

    again = api.post("/reviews", REVIEW | {"body": "Edited on the shop's side"})

    assert again.status_code == 200
    assert again.json() == first.json() | {"created": False}
    assert _written() == written


def test_the_same_review_id_at_another_shop_is_another_review(api, ada):
    other = MerchantFactory()
    CustomerFactory(merchant=other, external_id="c-1")
    assert api.post("/reviews", REVIEW).status_code == 201
    assert Api(other).post("/reviews", REVIEW).status_code == 201
    assert Feedback.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rating": None}, "rating"),
        ({"rating": 0}, "rating"),
        ({"id": ""}, "id"),
        ({"product_sku": "x" * 101}, "product_sku"),
    ],
)
def test_a_bad_review_is_400_naming_the_field(api, ada, change, field):
    response = api.post("/reviews", REVIEW | change)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert _written() == (0, 0)


def test_a_ticket_reads_with_its_public_messages_only(api, merchant, ada):
    ticket_id = api.post("/feedback", {"customer": {"external_id": "c-1"}, "kind": "question",
                                       "body": "Where is my order?"}).json()["id"]  # fmt: skip
    agent = StaffMemberFactory(merchant=merchant, role="support")
    ticket = Feedback.objects.get(pk=ticket_id)
    note_add(feedback=ticket, member=agent, body="INTERNAL: check the courier")
    staff_reply(feedback=ticket, member=agent, body="It ships tomorrow.", then=State.PENDING)

    response = api.get(f"/feedback/{ticket_id}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["state"], body["customer_external_id"]) == (ticket_id, "pending",
                                                                          "c-1")  # fmt: skip
    assert [(m["kind"], m["body"]) for m in body["messages"]] == [
        ("customer", "Where is my order?"),
        ("reply", "It ships tomorrow."),
    ]
    assert "INTERNAL" not in response.content.decode()


def test_another_shops_ticket_is_not_found(api, ada):
    other = MerchantFactory()
    theirs = Api(other).post(
        "/feedback", {"customer": {"email": "x@example.test"}, "kind": "question", "body": "Hi"}
    )
    assert theirs.status_code == 201
    response = api.get(f"/feedback/{theirs.json()['id']}")
    assert response.status_code == 404
    assert "Hi" not in response.content.decode()
    assert api.get("/feedback/999999").status_code == 404


def test_scopes_ingest_to_send_and_read_to_read(merchant, ada):
    reader, sender = Api(merchant, scopes=["read"]), Api(merchant, scopes=["ingest"])
    body = {"customer": {"external_id": "c-1"}, "kind": "question", "body": "Hello"}
    assert reader.post("/feedback", body).status_code == 403
    assert reader.post("/reviews", REVIEW).status_code == 403
    created = sender.post("/feedback", body)
    assert created.status_code == 201
    assert sender.get(f"/feedback/{created.json()['id']}").status_code == 403
    assert reader.get(f"/feedback/{created.json()['id']}").status_code == 200
    assert Client().post("/api/v1/feedback", body, content_type="application/json").status_code == (
        401
    )
    assert _written() == (1, 1)


def test_an_idempotency_key_replays_the_first_answer(api, ada):
    body = {"customer": {"external_id": "c-1"}, "kind": "question", "body": "Hello"}
    first = api.post("/feedback", body, HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/feedback", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Feedback.objects.count() == 1


def test_the_endpoints_are_in_the_api_docs(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/feedback", "/api/v1/reviews", "/api/v1/feedback/{feedback_id}"} <= set(paths)


def test_a_nul_in_the_message_is_a_400_naming_the_field_and_writes_nothing(api, ada):
    response = api.post("/feedback", {"customer": {"external_id": "c-1"}, "kind": "question",
                                      "body": "Open\x00 on Sunday?"})  # fmt: skip
    assert response.status_code == 400
    assert response.json()["errors"]["body"] == ["Must not contain a NUL character."]
    assert _written() == (0, 0)
