"""Emails to the shop's support address, as the mail provider posts them to
/hooks/email/<shop>/: signed with the shop's inbound secret over the raw body, received
once however often they are posted, and threaded onto the ticket they answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request

import pytest
from django.core import mail
from django.urls import reverse

from feedback import inbound
from feedback.models import Attachment, Channel, Feedback, Message, State
from feedback.services.hours import support_settings_of
from feedback.services.intake import feedback_submit
from feedback.services.tickets import feedback_transition, staff_reply
from tests.customers.factories import CustomerFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _email(**fields) -> dict:
    return {
        "from": "Ada Lovelace <Ada@Example.test>",
        "subject": "Missing parcel",
        "text": "My order 1042 never came.",
        "message_id": "<first@mail.example.test>",
        "in_reply_to": "",
        "references": [],
        "attachments": [],
    } | fields


def _written() -> tuple[int, int, int]:
    return Feedback.objects.count(), Message.objects.count(), Attachment.objects.count()


@pytest.fixture
def shop(db):
    return MerchantFactory(name="Saffron Tea")


@pytest.fixture
def ada(shop):
    return CustomerFactory(merchant=shop, email="ada@example.test", first_name="Ada")


@pytest.fixture
def agent(shop):
    return StaffMemberFactory(merchant=shop, role="support")


@pytest.fixture
def deliver(client, shop):
    """Posts as the mail provider does: JSON, signed with the shop's secret."""
    url = reverse("hook-email", args=[shop.slug])
    secret = support_settings_of(merchant=shop).inbound_secret

    def send(payload=None, *, raw: bytes | None = None, signature: str | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        return client.post(
            url,
            body,
            content_type="application/json",
            HTTP_X_REGULARS_SIGNATURE=_sign(secret, body) if signature is None else signature,
        )

    return send


# --- Who may post ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature",
    ["", "0" * 64, "not hex at all", "ф" * 64, "é" * 64],
    ids=["missing", "wrong", "garbage", "cyrillic", "latin-1"],
)
def test_a_bad_signature_is_401_and_writes_nothing(deliver, signature):
    response = deliver(_email(), signature=signature)
    assert response.status_code == 401
    assert response.json()["field"] == "X-Regulars-Signature"
    assert _written() == (0, 0, 0)


@pytest.mark.django_db
def test_a_body_changed_after_signing_is_refused(client, shop):
    secret = support_settings_of(merchant=shop).inbound_secret
    signed = json.dumps(_email()).encode()
    tampered = json.dumps(_email(text="Send the refund to my other card.")).encode()
    response = client.post(reverse("hook-email", args=[shop.slug]), tampered,
                           content_type="application/json",
                           HTTP_X_REGULARS_SIGNATURE=_sign(secret, signed))  # fmt: skip
    assert response.status_code == 401
    assert _written() == (0, 0, 0)


@pytest.mark.django_db
def test_another_shops_secret_cannot_write_here(client, shop):
    other = MerchantFactory()
    body = json.dumps(_email()).encode()
    theirs = _sign(support_settings_of(merchant=other).inbound_secret, body)
    response = client.post(reverse("hook-email", args=[shop.slug]), body,
                           content_type="application/json",
                           HTTP_X_REGULARS_SIGNATURE=theirs)  # fmt: skip
    assert response.status_code == 401
    assert client.get(reverse("hook-email", args=[shop.slug])).status_code == 405
    assert client.post(reverse("hook-email", args=["no-such-shop"]), body,
                       content_type="application/json").status_code == 404  # fmt: skip
    assert _written() == (0, 0, 0)


# --- Bad bodies -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (_email(**{"from": None}), "from"),
        (_email(**{"from": "nobody"}), "from"),
        (_email(message_id=""), "message_id"),
        (_email(message_id=None), "message_id"),
        (_email(subject=["a"]), "subject"),
        (_email(text="", subject=""), "text"),
        (_email(references="<a@b> <c@d>", in_reply_to=7), "in_reply_to"),
        (_email(attachments={"name": "x"}), "attachments"),
        (_email(attachments=[{"name": "a.png", "content_type": "image/png",
                              "content_base64": "%%%"}]), "attachments[0].content_base64"),
        (_email(attachments=[{"name": "a.png", "content_type": "image/png"}]),
         "attachments[0].content_base64"),
    ],
)  # fmt: skip
def test_a_bad_body_is_400_naming_the_field_and_writes_nothing(deliver, payload, field):
    response = deliver(raw=payload) if isinstance(payload, bytes) else deliver(payload)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert _written() == (0, 0, 0)


@pytest.mark.django_db
def test_a_disallowed_attachment_is_refused_naming_the_file(deliver):
    exe = {"name": "invoice.exe", "content_type": "application/x-msdownload",
           "content_base64": base64.b64encode(b"MZ\x90").decode()}  # fmt: skip
    response = deliver(_email(attachments=[exe]))
    assert response.status_code == 400
    assert response.json()["field"] == "attachments"
    assert "invoice.exe" in response.json()["detail"]
    assert _written() == (0, 0, 0)


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413_unread(deliver, monkeypatch):
    monkeypatch.setattr(inbound, "BODY_MAX_BYTES", 1000)
    response = deliver(_email(text="x" * 2000))
    assert response.status_code == 413
    assert _written() == (0, 0, 0)


# --- Receiving ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_email_is_a_new_ticket_from_the_customer_with_that_address(deliver, ada):
    photo = {"name": "box.png", "content_type": "image/png",
             "content_base64": base64.b64encode(PNG).decode()}  # fmt: skip
    response = deliver(_email(attachments=[photo]))

    assert response.status_code == 200
    ticket = Feedback.objects.get()
    assert response.json() == {"ticket": ticket.pk, "state": "new"}
    assert (ticket.channel, ticket.customer, ticket.subject) == (
        Channel.EMAIL, ada, "Missing parcel"
    )  # fmt: skip
    (message,) = ticket.messages.all()
    assert (message.body, message.email_message_id) == (
        "My order 1042 never came.", "<first@mail.example.test>"
    )  # fmt: skip
    (attachment,) = Attachment.objects.all()
    assert (attachment.name, attachment.size) == ("box.png", len(PNG))
    assert attachment.file.read() == PNG


@pytest.mark.django_db
def test_an_unknown_sender_keeps_their_name_and_address(deliver):
    deliver(_email(**{"from": "Sam Walker <sam@elsewhere.test>"}))
    ticket = Feedback.objects.get()
    assert ticket.customer is None
    assert (ticket.sender_email, ticket.sender_name) == ("sam@elsewhere.test", "Sam Walker")


@pytest.mark.django_db
def test_an_html_only_email_keeps_its_words(deliver):
    deliver(_email(text="", html="<p>Where is <b>my</b> order?</p>"))
    assert Message.objects.get().body == "Where is my order?"


@pytest.mark.django_db
def test_the_same_email_posted_twice_makes_one_message(deliver, ada):
    first = deliver(_email())
    again = deliver(_email())
    assert first.status_code == again.status_code == 200
    assert first.json()["ticket"] == again.json()["ticket"]
    assert _written() == (1, 1, 0)


@pytest.fixture
def answered(shop, ada, agent, django_capture_on_commit_callbacks):
    """A ticket from the rewards page that staff answered by email: the ticket and the
    Message-ID the customer's mail program will answer to."""
    ticket = feedback_submit(
        merchant=shop, customer=ada, channel=Channel.PORTAL, kind="question",
        subject="Late parcel", body="Where is it?",
    )  # fmt: skip
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        staff_reply(feedback=ticket, member=agent, body="Which address?", then=State.PENDING)
    (sent,) = mail.outbox
    return ticket, sent.extra_headers["Message-ID"]


@pytest.mark.django_db
def test_a_reply_threads_by_in_reply_to_onto_its_ticket(deliver, answered):
    ticket, message_id = answered
    response = deliver(_email(subject="Re: Late parcel", text="12 Tea Street.",
                              message_id="<answer@mail.example.test>",
                              in_reply_to=message_id, references=[message_id]))  # fmt: skip

    assert response.json()["ticket"] == ticket.pk
    ticket.refresh_from_db()
    assert ticket.state == State.OPEN  # she answered: back to the agents
    assert list(ticket.messages.filter(kind__in=["customer", "reply"]).values_list(
        "kind", "body")) == [("customer", "Where is it?"), ("reply", "Which address?"),
                             ("customer", "12 Tea Street.")]  # fmt: skip
    assert Feedback.objects.count() == 1


@pytest.mark.django_db
def test_a_reply_threads_by_references_when_in_reply_to_is_unknown(deliver, answered):
    ticket, message_id = answered
    response = deliver(_email(message_id="<answer2@mail.example.test>",
                              in_reply_to="<lost@elsewhere.test>",
                              references=f"<older@x.test> {message_id}"))  # fmt: skip
    assert response.json()["ticket"] == ticket.pk
    assert Feedback.objects.count() == 1


@pytest.mark.django_db
def test_a_reply_to_a_resolved_ticket_reopens_it(deliver, answered, agent):
    ticket, message_id = answered
    feedback_transition(feedback=ticket, to=State.RESOLVED, member=agent)

    deliver(_email(message_id="<again@mail.example.test>", in_reply_to=message_id,
                   text="Still not here."))  # fmt: skip

    ticket.refresh_from_db()
    assert (ticket.state, ticket.cycle, ticket.reopen_count) == (State.OPEN, 2, 1)
    assert Feedback.objects.count() == 1


@pytest.mark.django_db
def test_a_reply_to_a_closed_ticket_starts_a_new_one_linked_to_it(deliver, answered, agent):
    ticket, message_id = answered
    feedback_transition(feedback=ticket, to=State.RESOLVED, member=agent)
    feedback_transition(feedback=ticket, to=State.CLOSED, member=agent)

    response = deliver(_email(message_id="<later@mail.example.test>", in_reply_to=message_id,
                              text="It broke again."))  # fmt: skip

    newer = Feedback.objects.get(pk=response.json()["ticket"])
    assert newer.pk != ticket.pk
    assert newer.follows == ticket
    assert newer.state == State.NEW
    ticket.refresh_from_db()
    assert ticket.state == State.CLOSED
    assert newer.messages.get(kind="customer").body == "It broke again."


@pytest.mark.django_db
def test_a_reply_never_threads_onto_another_shops_ticket(client, answered):
    _ticket, message_id = answered
    other = MerchantFactory()
    body = json.dumps(_email(message_id="<x@mail.example.test>", in_reply_to=message_id)).encode()
    response = client.post(
        reverse("hook-email", args=[other.slug]), body, content_type="application/json",
        HTTP_X_REGULARS_SIGNATURE=_sign(support_settings_of(merchant=other).inbound_secret, body),
    )  # fmt: skip
    theirs = Feedback.objects.get(pk=response.json()["ticket"])
    assert theirs.merchant == other
    assert theirs.follows is None
    assert theirs.customer is None


# --- Over real HTTP -----------------------------------------------------------------------


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.django_db(transaction=True)
def test_over_http_the_same_email_twice_is_one_ticket_and_a_bad_signature_none(live_server):
    shop = MerchantFactory()
    secret = support_settings_of(merchant=shop).inbound_secret
    url = f"{live_server.url}/hooks/email/{shop.slug}/"
    photo = {"name": "box.png", "content_type": "image/png",
             "content_base64": base64.b64encode(PNG).decode()}  # fmt: skip
    body = json.dumps(_email(attachments=[photo])).encode()

    assert _post(url, body, {"X-Regulars-Signature": "0" * 64})[0] == 401
    assert _written() == (0, 0, 0)
    first = _post(url, body, {"X-Regulars-Signature": _sign(secret, body)})
    again = _post(url, body, {"X-Regulars-Signature": _sign(secret, body).upper()})

    assert first[0] == again[0] == 200
    assert first[1]["ticket"] == again[1]["ticket"]
    assert _written() == (1, 1, 1)
