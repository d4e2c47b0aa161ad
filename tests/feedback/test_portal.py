"""Feedback on the customer's rewards page, over the real views: writing in (with htmx and
without scripts), errors next to the field, the customer's own tickets with their public
thread only, replying, the staff reply by email, and the CSAT link."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from customers.services.portal import storefront_link_make
from feedback.models import Attachment, Channel, CsatSurvey, Feedback, Kind, Message, State
from feedback.services.intake import customer_reply, feedback_submit
from feedback.services.tickets import feedback_transition, note_add, staff_reply
from tests.customers.factories import CustomerFactory
from tests.feedback.factories import RoutingRuleFactory
from tests.merchants.factories import MerchantFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HUGE_PDF = b"%PDF-" + b"0" * (5 * 1024 * 1024)


def _text(response_or_html) -> str:
    content = getattr(response_or_html, "content", response_or_html)
    if isinstance(content, bytes):
        content = content.decode()
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", content)).split())


@pytest.fixture
def rana(merchant):
    merchant.name = "Saffron Tea"
    merchant.save()
    return CustomerFactory(
        merchant=merchant, external_id="rana", email="rana@example.test", first_name="Rana"
    )


@pytest.fixture
def signed_in(client, rana):
    assert client.get(storefront_link_make(customer=rana)).status_code == 302
    return client


@pytest.fixture
def agent(merchant):
    return StaffMemberFactory(merchant=merchant, role="support", user__full_name="Maria Lopez")


def _home(merchant) -> str:
    return reverse("portal:home", args=[merchant.slug])


def _submit_url(merchant) -> str:
    return reverse("feedback-portal:submit", args=[merchant.slug])


def _reply_url(merchant, ticket) -> str:
    return reverse("feedback-portal:reply", args=[merchant.slug, ticket.pk])


def _ticket(merchant, customer, **kwargs) -> Feedback:
    values = {"channel": Channel.PORTAL, "kind": Kind.QUESTION, "subject": "Late parcel",
              "body": "My parcel is a week late."} | kwargs  # fmt: skip
    return feedback_submit(merchant=merchant, customer=customer, **values)


def _written() -> tuple[int, int, int]:
    return Feedback.objects.count(), Message.objects.count(), Attachment.objects.count()


# --- Writing in -----------------------------------------------------------------------


def test_the_rewards_page_has_the_feedback_form(signed_in, merchant):
    page = signed_in.get(_home(merchant)).content.decode()
    assert 'data-testid="feedback-panel"' in page
    assert f'hx-post="{_submit_url(merchant)}"' in page
    assert 'enctype="multipart/form-data"' in page
    for kind in ("Complaint", "Question", "Suggestion", "Praise"):
        assert f">{kind}</option>" in page
    assert "Your messages to us" not in page  # nothing written yet


def test_the_form_carries_this_visitors_csrf_token_and_this_shops_address(merchant, rana):
    """Most customers get the blank form's fields from the cache: the form must still
    carry their own CSRF token and their own shop's address."""
    other_shop = MerchantFactory()
    visits = [(rana, 0), (CustomerFactory(merchant=other_shop), 0), (rana, 5)]
    for customer, seconds_ago in visits:
        browser = Client(enforce_csrf_checks=True)
        link = storefront_link_make(customer=customer, at=now() - timedelta(seconds=seconds_ago))
        assert browser.get(link).status_code == 302
        page = browser.get(_home(customer.merchant)).content.decode()
        form = re.search(
            r'data-testid="feedback-form".*?name="csrfmiddlewaretoken" value="([^"]+)"', page, re.S
        )
        assert f'action="{_submit_url(customer.merchant)}"' in page
        response = browser.post(
            _submit_url(customer.merchant),
            {"kind": "question", "body": "Hi", "csrfmiddlewaretoken": form.group(1)},
        )
        assert response.status_code == 302
    assert Feedback.objects.filter(merchant=other_shop).count() == 1
    assert Feedback.objects.filter(merchant=merchant).count() == 2


def test_a_submit_makes_a_routed_ticket_and_the_panel_thanks_and_lists_it(
    signed_in, merchant, rana, settings
):
    RoutingRuleFactory(merchant=merchant, kind=Kind.COMPLAINT, category="Delivery",
                       priority="high")  # fmt: skip
    response = signed_in.post(
        _submit_url(merchant),
        {"kind": "complaint", "rating": "2", "subject": "Broken teapot",
         "body": "The lid arrived\nin pieces.",
         "attachments": [SimpleUploadedFile("lid.png", PNG, content_type="image/png")]},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip

    assert response.status_code == 200
    text = _text(response)
    assert "Thank you: we've received your message" in text
    (ticket,) = Feedback.objects.filter(merchant=merchant)
    assert (ticket.customer, ticket.channel, ticket.kind, ticket.rating) == (
        rana, Channel.PORTAL, Kind.COMPLAINT, 2
    )  # fmt: skip
    assert ticket.language == "en"
    assert (ticket.category, ticket.priority) == ("Delivery", "high")  # by the routing rule
    assert [a.name for a in Attachment.objects.filter(message__feedback=ticket)] == ["lid.png"]
    # The swapped panel lists it, with the customer's words, as received.
    assert "Broken teapot Received" in text
    assert "The lid arrived<br>in pieces." in response.content.decode()
    assert not response.content.decode().lstrip().startswith("<!doctype")


def test_without_scripts_a_submit_goes_back_to_the_page_with_the_thank_you(signed_in, merchant):
    response = signed_in.post(
        _submit_url(merchant), {"kind": "question", "body": "Do you ship to Oman?"}
    )
    assert response.status_code == 302
    assert response.url == _home(merchant) + "#feedback"
    page = _text(signed_in.get(response.url))
    assert "Thank you: we've received your message" in page
    assert "Do you ship to Oman? Received" in page  # no subject: the message's start
    assert Feedback.objects.get().subject == "Do you ship to Oman?"


def test_the_page_in_russian_files_the_ticket_in_russian(client, merchant, rana):
    rana.language = "ru"
    rana.save(update_fields=["language"])
    client.get(storefront_link_make(customer=rana))
    client.post(_submit_url(merchant), {"kind": "praise", "body": "Спасибо!"})
    assert Feedback.objects.get().language == "ru"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "question", "body": ""}, "body", "Write a message."),
        ({"kind": "rant", "body": "Hello"}, "kind", "Select a valid choice."),
        ({"kind": "question", "body": "Hello", "rating": "9"}, "rating", "Select a valid choice."),
        ({"kind": "question", "body": "Hello", "subject": "x" * 201}, "subject", "at most 200"),
    ],
)
def test_errors_show_next_to_the_field_and_write_nothing(signed_in, merchant, data, field, message):
    before = _written()
    data = {"subject": "Keep me", **data}
    page = signed_in.post(_submit_url(merchant), data)
    assert page.status_code == 400
    error = re.search(rf'data-error-for="{field}">([^<]*)<', page.content.decode())
    assert error, page.content.decode()
    assert message in html.unescape(error.group(1))
    assert "Thank you" not in _text(page)
    assert _written() == before
    # Without scripts the whole page comes back, with what she typed still in the form.
    assert "Hello, Rana" in _text(page)
    if field != "subject":
        assert 'value="Keep me"' in page.content.decode()

    # With htmx the panel swaps in place: 200, since htmx swaps nothing on an error status.
    panel = signed_in.post(_submit_url(merchant), data, HTTP_HX_REQUEST="true")
    assert panel.status_code == 200
    assert f'data-error-for="{field}"' in panel.content.decode()
    assert _written() == before


def test_the_blank_form_is_the_languages_and_never_a_form_sent_back(merchant, rana):
    """A Russian page doesn't get the English labels, and a form that came back with her
    errors and words is hers only: the next page draws it blank."""
    english, russian = Client(), Client()
    assert english.get(storefront_link_make(customer=rana)).status_code == 302
    other = CustomerFactory(merchant=merchant, external_id="olga", language="ru")
    assert russian.get(storefront_link_make(customer=other)).status_code == 302

    assert "What is it about?" in _text(english.get(_home(merchant)))
    text = _text(russian.get(_home(merchant)))
    assert "What is it about?" not in text
    assert "Отправить" in text
    sent_back = english.post(
        _submit_url(merchant), {"kind": "question", "body": "", "subject": "Private words"}
    )
    assert 'data-error-for="body"' in sent_back.content.decode()
    page = english.get(_home(merchant)).content.decode()
    assert "Private words" not in page
    assert 'data-error-for="body"' not in page
    assert 'name="body"' in page


@pytest.mark.parametrize(
    ("upload", "words"),
    [
        (SimpleUploadedFile("setup.exe", b"MZ\x90\x00", content_type="application/x-msdownload"),
         "setup.exe: only images"),
        (SimpleUploadedFile("photo.png", b"<html><script>", content_type="image/png"),
         "photo.png is not the kind of file its type says."),
        (SimpleUploadedFile("huge.pdf", HUGE_PDF, content_type="application/pdf"),
         "huge.pdf is larger than 5 MB."),
    ],
    ids=["type", "disguised", "size"],
)  # fmt: skip
def test_a_bad_attachment_is_refused_naming_the_file(signed_in, merchant, upload, words):
    good = SimpleUploadedFile("receipt.txt", b"Order 1042", content_type="text/plain")
    response = signed_in.post(
        _submit_url(merchant),
        {"kind": "complaint", "body": "See attached", "attachments": [good, upload]},
        HTTP_HX_REQUEST="true",
    )
    error = re.search(r'data-error-for="attachments">([^<]*)<', response.content.decode())
    assert error
    assert words in html.unescape(error.group(1))
    assert _written() == (0, 0, 0)


def test_more_than_five_attachments_are_refused(signed_in, merchant):
    files = [SimpleUploadedFile(f"p{n}.png", PNG, content_type="image/png") for n in range(6)]
    response = signed_in.post(
        _submit_url(merchant), {"kind": "question", "body": "Photos", "attachments": files}
    )
    assert "Attach at most 5 files." in _text(response)
    assert _written() == (0, 0, 0)


def test_signed_out_visitors_cannot_write_in(client, merchant):
    response = client.post(_submit_url(merchant), {"kind": "question", "body": "Hi"})
    assert response.status_code == 302
    assert response.url == reverse("portal:sign-in", args=[merchant.slug])
    assert not Feedback.objects.exists()


# --- Her tickets and their threads ------------------------------------------------------


def test_her_tickets_show_newest_first_with_states_in_her_words(signed_in, merchant, rana, agent):
    states = {
        "Just sent": None,
        "Being looked at": State.OPEN,
        "Asked her something": State.PENDING,
        "Sorted out": State.RESOLVED,
        "Long done": State.CLOSED,
    }
    for n, (subject, state) in enumerate(reversed(states.items())):
        ticket = _ticket(merchant, rana, subject=subject, at=now() - timedelta(hours=10 - n))
        path = {
            State.OPEN: [State.OPEN],
            State.PENDING: [State.PENDING],
            State.RESOLVED: [State.RESOLVED],
            State.CLOSED: [State.RESOLVED, State.CLOSED],
        }.get(state, [])
        for step in path:
            feedback_transition(feedback=ticket, to=step, member=agent)
    # Someone else's ticket with the same shop is not hers to see.
    _ticket(merchant, CustomerFactory(merchant=merchant), subject="Not hers")

    text = _text(signed_in.get(_home(merchant)))

    shown = re.findall(
        r"(Just sent|Being looked at|Asked her something|Sorted out|Long done) "
        r"(Received|We're on it|Waiting for you|Resolved|Closed)",
        text,
    )
    assert shown == [
        ("Just sent", "Received"),
        ("Being looked at", "We're on it"),
        ("Asked her something", "Waiting for you"),
        ("Sorted out", "Resolved"),
        ("Long done", "Closed"),
    ]
    assert "Not hers" not in text


def test_only_the_ten_latest_tickets_show(signed_in, merchant, rana):
    for n in range(12):
        _ticket(merchant, rana, subject=f"Ticket number {n:02d}", at=now() - timedelta(hours=n))
    text = _text(signed_in.get(_home(merchant)))
    assert "Ticket number 00" in text
    assert "Ticket number 09" in text
    assert "Ticket number 10" not in text


def test_the_thread_shows_replies_but_never_notes_or_events(signed_in, merchant, rana, agent):
    ticket = _ticket(merchant, rana)
    note_add(feedback=ticket, member=agent, body="INTERNAL: she is a reseller, be careful")
    staff_reply(feedback=ticket, member=agent, body="It left our shop today.", then="pending")

    page = signed_in.get(_home(merchant)).content.decode()
    text = _text(page)

    assert "My parcel is a week late." in text
    assert "Saffron Tea ·" in text  # the reply, signed by the shop
    assert "It left our shop today." in text
    assert "INTERNAL" not in text
    assert "Maria Lopez" not in text  # events name the agent: none of them show
    assert "→" not in text
    assert "Late parcel Waiting for you" in text


def test_a_reply_on_the_page_reopens_the_conversation(signed_in, merchant, rana, agent):
    ticket = _ticket(merchant, rana)
    staff_reply(feedback=ticket, member=agent, body="Which address?", then="pending")

    response = signed_in.post(
        _reply_url(merchant, ticket), {"body": "12 Tea Street."}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.state == State.OPEN
    assert list(ticket.messages.filter(kind="customer").values_list("body", flat=True)) == [
        "My parcel is a week late.",
        "12 Tea Street.",
    ]
    text = _text(response)
    assert "Your reply is sent." in text
    assert "Late parcel We're on it" in text
    assert text.index("Which address?") < text.index("12 Tea Street.")


def test_a_reply_without_scripts_redirects_and_an_empty_one_names_the_field(
    signed_in, merchant, rana
):
    ticket = _ticket(merchant, rana)
    response = signed_in.post(_reply_url(merchant, ticket), {"body": "Any news?"})
    assert response.status_code == 302
    assert "Your reply is sent." in _text(signed_in.get(response.url))

    before = _written()
    page = signed_in.post(_reply_url(merchant, ticket), {"body": "  "})
    assert page.status_code == 400
    assert re.search(r'data-error-for="body">Write a message\.<', page.content.decode())
    assert _written() == before


def test_a_reply_to_a_closed_ticket_starts_a_new_one_that_follows_it(
    signed_in, merchant, rana, agent
):
    ticket = _ticket(merchant, rana)
    feedback_transition(feedback=ticket, to=State.RESOLVED, member=agent)
    feedback_transition(feedback=ticket, to=State.CLOSED, member=agent)

    signed_in.post(_reply_url(merchant, ticket), {"body": "It broke again."})

    newer = Feedback.objects.exclude(pk=ticket.pk).get()
    assert newer.follows == ticket
    assert newer.subject == "Re: Late parcel"
    assert "Re: Late parcel Received" in _text(signed_in.get(_home(merchant)))


def test_another_customers_ticket_cannot_be_replied_to(signed_in, merchant, rana):
    theirs = _ticket(merchant, CustomerFactory(merchant=merchant))
    other_shop = MerchantFactory()
    foreign = _ticket(other_shop, CustomerFactory(merchant=other_shop))
    before = _written()

    for ticket in (theirs, foreign):
        assert signed_in.post(_reply_url(merchant, ticket), {"body": "Mine?"}).status_code == 404
    assert _written() == before


def test_the_panel_reads_a_fixed_number_of_queries(
    signed_in, merchant, rana, agent, django_assert_num_queries
):
    panel = reverse("portal:panel", args=[merchant.slug, "feedback"])
    # The customer's session (her row and her shop's: 2), then her tickets with their
    # public messages (1), however many there are.
    with django_assert_num_queries(2 + 1):
        assert signed_in.get(panel).status_code == 200
    ticket = _ticket(merchant, rana)
    with django_assert_num_queries(2 + 1):
        signed_in.get(panel)
    for n in range(9):
        more = _ticket(merchant, rana, subject=f"More {n}")
        staff_reply(feedback=more, member=agent, body=f"Answer {n}")
        customer_reply(feedback=more, body=f"Thanks {n}")
    staff_reply(feedback=ticket, member=agent, body="On its way")
    with django_assert_num_queries(2 + 1):
        text = _text(signed_in.get(panel))
    assert "Answer 8" in text
    assert "On its way" in text


def test_a_ticket_without_a_public_message_is_listed_once_and_its_thread_in_order(
    signed_in, merchant, rana, agent
):
    """The panel joins each ticket to its public thread: a ticket with only a note shows
    once with no message, and a thread reads oldest first, with no notes."""
    quiet = _ticket(merchant, rana, subject="Only a note")
    Message.objects.filter(feedback=quiet).delete()
    note_add(feedback=quiet, member=agent, body="Internal: check the courier")
    talk = _ticket(merchant, rana, subject="Talk", body="First words")
    staff_reply(feedback=talk, member=agent, body="Second words")
    customer_reply(feedback=talk, body="Third words")
    page = signed_in.get(reverse("portal:panel", args=[merchant.slug, "feedback"]))
    tickets = page.content.decode().split('data-testid="feedback-ticket"')[1:]
    assert len(tickets) == 2
    talk_html, quiet_html = tickets  # the latest first
    assert "Only a note" in quiet_html
    assert 'data-testid="feedback-message"' not in quiet_html
    assert "check the courier" not in page.content.decode()
    words = re.findall(r"(First|Second|Third) words", talk_html)
    assert words == ["First", "Second", "Third"]


# --- The staff reply by email -----------------------------------------------------------


def test_a_staff_reply_is_emailed_threaded_with_a_link_to_the_page(
    merchant, rana, agent, django_capture_on_commit_callbacks
):
    rana.language = "ru"
    rana.save(update_fields=["language"])
    ticket = _ticket(merchant, rana)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        reply = staff_reply(feedback=ticket, member=agent, body="It left our shop today.")

    (email,) = mail.outbox
    assert email.to == ["rana@example.test"]
    assert email.extra_headers["Message-ID"] == reply.email_message_id
    assert email.body.startswith("Здравствуйте, Rana!")  # in her language
    assert "It left our shop today." in email.body
    assert f"#{ticket.pk}" in email.body
    assert "Late parcel" in email.subject
    assert f"/r/{merchant.slug}/" in email.body
    assert "Saffron Tea" in email.from_email


def test_a_reply_to_a_sender_without_a_customer_has_no_page_link(
    merchant, agent, django_capture_on_commit_callbacks
):
    ticket = feedback_submit(merchant=merchant, channel=Channel.EMAIL, kind=Kind.QUESTION,
                             subject="Opening hours", body="When are you open?",
                             sender_email="walk.in@example.test", sender_name="Sam")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        staff_reply(feedback=ticket, member=agent, body="Nine to five.")
    (email,) = mail.outbox
    assert email.to == ["walk.in@example.test"]
    assert email.body.startswith("Hello Sam,")
    assert "/r/" not in email.body
    assert "Reply to this email to answer." in email.body


# --- CSAT -------------------------------------------------------------------------------


@pytest.fixture
def csat_link(merchant, rana, agent, django_capture_on_commit_callbacks):
    ticket = _ticket(merchant, rana)
    staff_reply(feedback=ticket, member=agent, body="Refunded.")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        feedback_transition(feedback=ticket, to=State.RESOLVED, member=agent)
    (email,) = mail.outbox
    assert email.to == ["rana@example.test"]
    assert "How did we do?" in email.subject
    assert "14 days" in email.body
    return urlparse(re.search(r"https?://\S+/feedback/csat/\S+/", email.body).group(0)).path


def test_the_csat_link_rates_once_without_signing_in(client, csat_link):
    page = client.get(csat_link)
    assert page.status_code == 200
    assert "Late parcel" in _text(page)
    assert 'name="rating"' in page.content.decode()

    thanks = client.post(csat_link, {"rating": "4", "comment": "Quick, thanks"})
    assert thanks.status_code == 200
    assert "Thank you for your answer" in _text(thanks)
    survey = CsatSurvey.objects.get()
    assert (survey.rating, survey.comment) == (4, "Quick, thanks")
    assert survey.answered_at is not None

    again = client.post(csat_link, {"rating": "1"})
    assert again.status_code == 410
    assert "answered already" in _text(again)
    assert CsatSurvey.objects.get().rating == 4
    assert "answered already" in _text(client.get(csat_link))


def test_a_csat_answer_without_a_rating_names_it(client, csat_link):
    page = client.post(csat_link, {"comment": "meh"})
    assert page.status_code == 400
    assert "Choose a rating from 1 to 5." in _text(page)
    assert CsatSurvey.objects.get().answered_at is None


def test_the_csat_link_expires_after_fourteen_days(client, csat_link):
    with time_machine.travel(now() + timedelta(days=14, minutes=1)):
        page = client.get(csat_link)
        assert page.status_code == 410
        assert "This link has expired." in _text(page)
        assert client.post(csat_link, {"rating": "5"}).status_code == 410
    assert CsatSurvey.objects.get().answered_at is None


def test_an_unknown_csat_link_says_so(client, merchant, csat_link):
    page = client.get(reverse("feedback-portal:csat", args=[merchant.slug, "not-a-token"]))
    assert page.status_code == 410
    assert "This link is not valid." in _text(page)
    # Another shop's address with this shop's token: not theirs either.
    elsewhere = csat_link.replace(f"/r/{merchant.slug}/", f"/r/{MerchantFactory().slug}/")
    assert client.post(elsewhere, {"rating": "5"}).status_code == 410
    assert CsatSurvey.objects.get().answered_at is None
