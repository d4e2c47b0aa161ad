"""A ticket's page: header, thread, the customer beside it, replies and notes, canned
replies, state buttons, triage, merge, reviews, two agents on one ticket, logging a call,
and another merchant's ids."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from feedback.models import Channel, Feedback, Kind, Message, Priority, ReviewState, State
from feedback.services.intake import feedback_submit
from feedback.services.thread import Upload
from feedback.services.tickets import note_add
from loyalty.models import PointsAccount
from loyalty.services.ledger import account_for
from tests.customers.factories import CustomerFactory
from tests.feedback.factories import (
    CannedReplyFactory,
    DepartmentFactory,
    FeedbackFactory,
    MessageFactory,
)
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.merchants.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def agent(merchant):
    return StaffMemberFactory(merchant=merchant, role="support", user__full_name="Maria Lopez")


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent.user)
    return client


@pytest.fixture
def customer(merchant):
    return CustomerFactory(
        merchant=merchant, email="ada@example.test", first_name="Ada", last_name="Byron"
    )


@pytest.fixture
def ticket(merchant, customer):
    return feedback_submit(
        merchant=merchant, customer=customer, channel=Channel.PORTAL, kind=Kind.QUESTION,
        subject="Late parcel", body="My parcel is a week late.",
    )  # fmt: skip


def _url(ticket, action: str = "") -> str:
    return f"/feedback/{ticket.pk}/" + (f"{action}/" if action else "")


def _thread(body: str) -> str:
    return re.search(r'data-testid="thread">(.*?)</ol>', body, re.S).group(1)


# --- The page -------------------------------------------------------------------------------


def test_the_page_shows_header_thread_and_customer(agent_client, merchant, customer, ticket, agent):
    ProgramFactory(merchant=merchant)
    gold = TierFactory(merchant=merchant, name="Gold")
    account = account_for(customer=customer)
    PointsAccount.objects.filter(pk=account.pk).update(tier=gold, available=340)
    type(customer).objects.filter(pk=customer.pk).update(orders_count=7, last_order_at=now())
    earlier = FeedbackFactory(
        merchant=merchant, customer=customer, subject="Wrong size", state=State.CLOSED,
        created_at=now() - timedelta(days=30),
    )  # fmt: skip
    note_add(feedback=ticket, member=agent, body="Checked with the courier.")
    Feedback.objects.filter(pk=ticket.pk).update(tags=["late"], rating=2)

    body = agent_client.get(_url(ticket)).content.decode()

    header = re.search(r'data-testid="ticket-header">(.*?)</header>', body, re.S).group(1)
    assert f"#{ticket.pk}" in header
    assert "Late parcel" in header
    assert 'data-state="new"' in header
    assert "Normal" in header
    assert "Rewards page" in header
    assert "Question" in header
    assert "★★☆☆☆" in header
    assert "late" in header
    thread = _thread(body)
    assert "My parcel is a week late." in thread
    assert 'data-kind="note"' in thread
    assert "Internal note" in thread
    assert "Checked with the courier." in thread
    sidebar = re.search(r'data-testid="customer-sidebar">(.*?)</aside>', body, re.S).group(1)
    assert "Ada Byron" in sidebar
    assert "ada@example.test" in sidebar
    assert "Gold" in sidebar
    assert ">340<" in sidebar
    assert ">7<" in sidebar
    assert f"#{earlier.pk}" in sidebar
    assert "Wrong size" in sidebar
    assert "Closed" in sidebar
    assert f"#{ticket.pk}</a>" not in sidebar


def test_state_buttons_are_the_moves_the_table_allows(agent_client, ticket):
    body = agent_client.get(_url(ticket)).content.decode()
    buttons = re.search(r'data-testid="state-buttons">(.*?)</form>', body, re.S).group(1)
    assert re.findall(r'name="to" value="(\w+)"', buttons) == [
        "open",
        "pending",
        "resolved",
        "spam",
    ]
    Feedback.objects.filter(pk=ticket.pk).update(state=State.RESOLVED)
    body = agent_client.get(_url(ticket)).content.decode()
    buttons = re.search(r'data-testid="state-buttons">(.*?)</form>', body, re.S).group(1)
    assert re.findall(r'name="to" value="(\w+)"', buttons) == ["open", "closed"]


def test_a_state_button_moves_the_ticket_and_a_refused_move_says_why(agent_client, ticket):
    response = agent_client.post(_url(ticket, "state"), {"to": "pending"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.state == State.PENDING

    response = agent_client.post(_url(ticket, "state"), {"to": "closed"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.startswith('<div id="ticket-work"')
    assert "A ticket that is pending can&#x27;t be moved to closed." in body
    ticket.refresh_from_db()
    assert ticket.state == State.PENDING


def test_the_page_reads_a_fixed_number_of_queries(
    agent_client, merchant, customer, ticket, agent, django_assert_num_queries
):
    ProgramFactory(merchant=merchant)
    account_for(customer=customer)
    department = DepartmentFactory(merchant=merchant)
    CannedReplyFactory(merchant=merchant)
    agent_client.get(_url(ticket))  # the session's first touch writes it once

    def count() -> int:
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert agent_client.get(_url(ticket)).status_code == 200
        return len(queries)

    small = count()
    # A long thread with files, more earlier tickets, colleagues, departments, replies.
    for n in range(20):
        message = MessageFactory(feedback=ticket, kind=Message.Kind.REPLY, author=agent.user)
        if n % 4 == 0:
            from feedback.services.thread import attachments_store

            attachments_store(message=message, uploads=[Upload(f"f{n}.txt", "text/plain", b"x")])
        FeedbackFactory(merchant=merchant, customer=customer)
        StaffMemberFactory(merchant=merchant, role="support")
        DepartmentFactory(merchant=merchant)
        CannedReplyFactory(merchant=merchant, department=department)
    # Session, user, memberships; the ticket; thread, files; agents, departments, canned
    # replies; the customer's points account and earlier tickets.
    with django_assert_num_queries(small):
        agent_client.get(_url(ticket))
    assert small <= 11, small


# --- Replies and notes ------------------------------------------------------------------------


def test_a_reply_is_emailed_to_the_customer_and_shown_on_the_page(
    agent_client, ticket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            _url(ticket, "reply"), {"body": "It ships today.", "submit": "reply"}
        )
    assert response.status_code == 302
    [email] = mail.outbox
    assert email.to == ["ada@example.test"]
    assert "It ships today." in email.body
    body = agent_client.get(_url(ticket)).content.decode()
    assert "It ships today." in _thread(body)
    assert 'data-kind="reply"' in _thread(body)
    ticket.refresh_from_db()
    assert ticket.state == State.OPEN
    assert ticket.first_response_at is not None


def test_reply_and_resolve_with_htmx_swaps_the_work_area(
    agent_client, ticket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            _url(ticket, "reply"), {"body": "Refunded.", "submit": "resolved"},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
    body = response.content.decode()
    assert body.startswith('<div id="ticket-work"')
    assert "<html" not in body
    assert "Reply sent." in body
    assert 'data-state="resolved"' in body
    assert "Refunded." in _thread(body)
    ticket.refresh_from_db()
    assert ticket.state == State.RESOLVED
    # The reply, then the CSAT survey.
    assert [m.to for m in mail.outbox] == [["ada@example.test"], ["ada@example.test"]]


def test_reply_and_set_pending(agent_client, ticket):
    agent_client.post(_url(ticket, "reply"), {"body": "Which size?", "submit": "pending"})
    ticket.refresh_from_db()
    assert ticket.state == State.PENDING


def test_an_internal_note_is_not_emailed(agent_client, ticket, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(_url(ticket, "reply"), {"body": "Courier says Monday.", "submit": "note"})
    assert mail.outbox == []
    note = Message.objects.get(feedback=ticket, body="Courier says Monday.")
    assert note.kind == Message.Kind.NOTE
    thread = _thread(agent_client.get(_url(ticket)).content.decode())
    assert "Internal note" in thread
    ticket.refresh_from_db()
    assert ticket.state == State.NEW


def test_an_empty_reply_is_refused_with_the_reason(agent_client, ticket):
    response = agent_client.post(_url(ticket, "reply"), {"body": "  ", "submit": "reply"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Message.objects.filter(feedback=ticket, kind=Message.Kind.REPLY).exists()


def test_a_closed_ticket_takes_notes_but_no_replies(agent_client, ticket):
    Feedback.objects.filter(pk=ticket.pk).update(state=State.CLOSED)
    body = agent_client.get(_url(ticket)).content.decode()
    assert 'value="note"' in body
    assert 'value="reply"' not in body
    response = agent_client.post(_url(ticket, "reply"), {"body": "Hi", "submit": "reply"})
    assert "it can&#x27;t be replied to" in response.content.decode()


def test_a_reply_with_a_file_shows_it_and_only_our_staff_can_download_it(
    agent_client, ticket, merchant
):
    upload = SimpleUploadedFile("label.pdf", b"%PDF-1.4 label", content_type="application/pdf")
    agent_client.post(
        _url(ticket, "reply"),
        {"body": "Here is the label.", "submit": "reply", "attachments": upload},
    )
    body = agent_client.get(_url(ticket)).content.decode()
    link = re.search(r'href="(/feedback/attachments/\d+/)" data-testid="attachment"', body)
    assert link is not None
    assert "label.pdf" in body
    response = agent_client.get(link.group(1))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 label"
    assert "attachment" in response["Content-Disposition"]
    stranger = Client()
    stranger.force_login(StaffMemberFactory(role="owner").user)
    assert stranger.get(link.group(1)).status_code == 404


def test_a_file_that_is_not_what_it_says_is_refused_naming_it(agent_client, ticket):
    upload = SimpleUploadedFile("photo.png", b"<script>", content_type="image/png")
    response = agent_client.post(
        _url(ticket, "reply"), {"body": "See photo", "submit": "reply", "attachments": upload}
    )
    assert "photo.png" in response.content.decode()
    assert not Message.objects.filter(feedback=ticket, kind=Message.Kind.REPLY).exists()


# --- Canned replies ---------------------------------------------------------------------------


def test_a_canned_reply_starts_in_the_customers_language(agent_client, merchant, ticket):
    """The agent reads the dashboard in English; the customer writes in Arabic: the reply
    starts from the Arabic text, and a reply not written in Arabic from the shop's default."""
    Feedback.objects.filter(pk=ticket.pk).update(language="ar")
    both = CannedReplyFactory(merchant=merchant, title_en="Delayed", title_ar="تأخير",
                              body_en="Sorry, {customer_name}.",
                              body_ar="نعتذر يا {customer_name}.")  # fmt: skip
    english = CannedReplyFactory(merchant=merchant, title_en="Refund",
                                 body_en="Your refund is on its way.")  # fmt: skip
    page = agent_client.get(_url(ticket)).content.decode()
    assert "Delayed" in page  # the titles in the agent's language

    def box(canned) -> str:
        return agent_client.get(_url(ticket, "canned"), {"canned": canned.pk},
                                HTTP_HX_REQUEST="true").content.decode()  # fmt: skip

    assert "نعتذر يا Ada." in box(both)
    assert "Your refund is on its way." in box(english)
    Feedback.objects.filter(pk=ticket.pk).update(language="ru")
    assert "Sorry, Ada." in box(both)


def test_a_canned_reply_fills_the_box_with_its_placeholders(agent_client, merchant, ticket):
    shipping = DepartmentFactory(merchant=merchant)
    Feedback.objects.filter(pk=ticket.pk).update(department=shipping)
    canned = CannedReplyFactory(
        merchant=merchant, department=shipping,
        body="Hi {customer_name}, {ticket_number} is with {agent_name} at {merchant_name}. "
             "{unknown} {0} {customer_name.__class__} {",
    )  # fmt: skip
    general = CannedReplyFactory(merchant=merchant, title="General")
    elsewhere = CannedReplyFactory(
        merchant=merchant, department=DepartmentFactory(merchant=merchant)
    )

    page = agent_client.get(_url(ticket)).content.decode()
    assert canned.title in page
    assert general.title in page
    assert elsewhere.title not in page

    response = agent_client.get(
        _url(ticket, "canned"), {"canned": canned.pk}, HTTP_HX_REQUEST="true"
    )
    text = response.content.decode()
    assert text.startswith('<textarea class="form-control" name="body" id="reply-body"')
    assert (
        f"Hi Ada, #{ticket.pk} is with Maria Lopez at {merchant.name}. "
        "{unknown} {0} {customer_name.__class__} {" in text
    )
    # Another department's reply is no choice for this ticket.
    response = agent_client.get(
        _url(ticket, "canned"), {"canned": elsewhere.pk}, HTTP_HX_REQUEST="true"
    )
    assert "Maria" not in response.content.decode()
    # Without htmx: the page, with the box filled.
    response = agent_client.get(_url(ticket, "canned"), {"canned": canned.pk})
    assert response.status_code == 302
    page = agent_client.get(response.url).content.decode()
    assert f"Hi Ada, #{ticket.pk} is with Maria Lopez" in page


# --- Assign, triage, tags, merge, reviews ---------------------------------------------------------


def test_assign_triage_and_tag(agent_client, merchant, ticket, agent):
    colleague = StaffMemberFactory(merchant=merchant, role="manager", user__full_name="Sam Reed")
    billing = DepartmentFactory(merchant=merchant, name="Billing")

    agent_client.post(_url(ticket, "assign"), {"assignee": colleague.pk})
    agent_client.post(
        _url(ticket, "triage"),
        {"category": "Delivery", "department": billing.pk, "priority": Priority.HIGH},
    )
    response = agent_client.post(_url(ticket, "tags"), {"tags": "Late, courier"},
                                 HTTP_HX_REQUEST="true")  # fmt: skip

    ticket.refresh_from_db()
    assert ticket.assignee == colleague
    assert (ticket.category, ticket.department, ticket.priority) == ("Delivery", billing, "high")
    assert ticket.tags == ["late", "courier"]
    body = response.content.decode()
    assert "Sam Reed assigned" not in body  # the line names who did it
    assert "Maria Lopez assigned the ticket to Sam Reed." in body
    assert "High" in body


def test_saving_triage_unchanged_writes_no_line(agent_client, ticket):
    agent_client.post(
        _url(ticket, "triage"), {"category": "", "department": "", "priority": "normal"}
    )
    assert not ticket.messages.filter(kind=Message.Kind.EVENT).exists()
    billing = DepartmentFactory(merchant=ticket.merchant, name="Billing")
    agent_client.post(_url(ticket, "triage"), {"department": billing.pk, "priority": "normal"})
    agent_client.post(_url(ticket, "triage"), {"department": "", "priority": "normal"})
    ticket.refresh_from_db()
    assert ticket.department is None
    assert ticket.messages.filter(kind=Message.Kind.EVENT).count() == 2


def test_a_note_with_files_is_refused(agent_client, ticket):
    upload = SimpleUploadedFile("a.txt", b"hello", content_type="text/plain")
    response = agent_client.post(
        _url(ticket, "reply"), {"body": "See file", "submit": "note", "attachments": upload}
    )
    assert "a note keeps text only" in response.content.decode()
    assert not ticket.messages.filter(kind=Message.Kind.NOTE).exists()


def test_another_merchants_staff_or_department_is_refused(agent_client, ticket):
    stranger = StaffMemberFactory(role="support")
    foreign_department = DepartmentFactory()
    response = agent_client.post(_url(ticket, "assign"), {"assignee": stranger.pk})
    assert "Select a valid choice" in response.content.decode()
    response = agent_client.post(
        _url(ticket, "triage"), {"department": foreign_department.pk, "priority": "low"}
    )
    assert "Select a valid choice" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert ticket.department is None
    assert ticket.priority == "normal"


def test_merge_moves_the_messages_and_both_tickets_say_so(agent_client, merchant, customer, ticket):
    target = feedback_submit(
        merchant=merchant, customer=customer, channel=Channel.EMAIL, kind=Kind.QUESTION,
        subject="Parcel", body="Where is it?",
    )  # fmt: skip

    response = agent_client.post(_url(ticket, "merge"), {"target": f"#{target.pk}"})

    assert response.status_code == 302
    assert response.url == f"/feedback/{target.pk}/"
    target_page = _thread(agent_client.get(_url(target)).content.decode())
    assert "My parcel is a week late." in target_page
    assert f"merged ticket #{ticket.pk} (Late parcel) into this one" in target_page
    source_page = agent_client.get(_url(ticket)).content.decode()
    assert f"merged this ticket into #{target.pk}" in _thread(source_page)
    assert "My parcel is a week late." not in _thread(source_page)
    ticket.refresh_from_db()
    assert ticket.state == State.MERGED
    assert ticket.merged_into == target


def test_merge_refuses_itself_and_another_merchants_ticket(agent_client, ticket):
    foreign = FeedbackFactory()
    for target in (ticket.pk, foreign.pk, 999999):
        response = agent_client.post(
            _url(ticket, "merge"), {"target": str(target)}, HTTP_HX_REQUEST="true"
        )
        body = response.content.decode()
        assert "merged into itself" in body or "No such ticket." in body
    ticket.refresh_from_db()
    assert ticket.state == State.NEW


def test_a_review_is_approved_from_its_page(agent_client, merchant, customer):
    review = feedback_submit(
        merchant=merchant, customer=customer, channel=Channel.REVIEW, kind=Kind.REVIEW,
        rating=5, body="Lovely tea", product_name="Sencha",
    )  # fmt: skip
    page = agent_client.get(_url(review)).content.decode()
    assert 'data-testid="review-form"' in page
    assert "Waiting for approval" in page
    response = agent_client.post(_url(review, "review"), {"decision": "approve"},
                                 HTTP_HX_REQUEST="true")  # fmt: skip
    assert "Review approved." in response.content.decode()
    review.refresh_from_db()
    assert review.review_state == ReviewState.APPROVED


# --- Two agents on one ticket ---------------------------------------------------------------------


def test_an_agent_sees_a_colleague_replying_but_never_themself(merchant, ticket, agent):
    colleague = StaffMemberFactory(merchant=merchant, role="support", user__full_name="Sam Reed")
    maria, sam = Client(), Client()
    maria.force_login(agent.user)
    sam.force_login(colleague.user)
    url = _url(ticket, "presence")

    assert "replying" not in maria.get(url, HTTP_HX_REQUEST="true").content.decode()
    seen_by_sam = sam.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Maria Lopez is replying…" in seen_by_sam
    assert "Sam Reed" not in seen_by_sam
    seen_by_maria = maria.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Sam Reed is replying…" in seen_by_maria
    assert "Maria Lopez" not in seen_by_maria
    # The page polls every 10 seconds while the reply box is open.
    page = maria.get(_url(ticket)).content.decode()
    assert re.search(rf'hx-get="{url}\?since=\d+" hx-trigger="load, every 10s"', page)


def test_presence_stops_polling_on_a_page_left_alone(agent_client, ticket, settings):
    """A poll is a request and would keep the session alive: after most of the idle
    timeout with nothing but polls, the server tells htmx to stop (HTTP 286)."""
    settings.STAFF_IDLE_TIMEOUT_SECONDS = 30 * 60
    url = _url(ticket, "presence")
    drawn = int(now().timestamp())
    assert agent_client.get(url, {"since": drawn - 60}).status_code == 200
    assert agent_client.get(url, {"since": drawn - 25 * 60}).status_code == 286


def test_presence_fades_after_thirty_seconds_and_clears_on_reply(merchant, ticket, agent):
    import time_machine

    colleague = StaffMemberFactory(merchant=merchant, role="support", user__full_name="Sam Reed")
    maria, sam = Client(), Client()
    maria.force_login(agent.user)
    sam.force_login(colleague.user)
    url = _url(ticket, "presence")
    start = now()
    with time_machine.travel(start, tick=False):
        maria.get(url)
    with time_machine.travel(start + timedelta(seconds=20), tick=False):
        assert "Maria Lopez is replying" in sam.get(url).content.decode()
    with time_machine.travel(start + timedelta(seconds=31), tick=False):
        assert "Maria Lopez" not in sam.get(url).content.decode()
        maria.get(url)
        maria.post(_url(ticket, "reply"), {"body": "Done", "submit": "note"})
        assert "Maria Lopez" not in sam.get(url).content.decode()


# --- Logging a call -------------------------------------------------------------------------------


def test_logging_a_call_from_a_known_customer(agent_client, merchant, customer, agent):
    response = agent_client.post("/feedback/new/", {
        "customer_lookup": "ADA@example.test", "kind": Kind.COMPLAINT,
        "subject": "Rude courier", "body": "Called about the courier.", "priority": "urgent",
    })  # fmt: skip
    ticket = Feedback.objects.get(merchant=merchant, subject="Rude courier")
    assert response.status_code == 302
    assert response.url == f"/feedback/{ticket.pk}/"
    assert ticket.channel == Channel.PHONE
    assert ticket.customer == customer
    assert ticket.priority == Priority.URGENT
    page = agent_client.get(response.url).content.decode()
    assert "Called about the courier." in page
    assert "Logged by Maria Lopez from a call or a visit." in page


def test_logging_a_call_from_someone_unknown_and_by_external_id(agent_client, merchant, customer):
    agent_client.post("/feedback/new/", {
        "caller_name": "Walk-in Wendy", "caller_email": "wendy@example.test",
        "kind": Kind.QUESTION, "body": "Do you sell gift cards?",
    })  # fmt: skip
    walk_in = Feedback.objects.get(merchant=merchant, sender_name="Walk-in Wendy")
    assert walk_in.customer is None
    assert walk_in.sender_email == "wendy@example.test"
    agent_client.post("/feedback/new/", {
        "customer_lookup": customer.external_id, "kind": Kind.PRAISE, "body": "Great shop",
    })  # fmt: skip
    assert Feedback.objects.get(merchant=merchant, body="Great shop").customer == customer


def test_logging_a_call_names_what_is_missing(agent_client, merchant):
    foreign = CustomerFactory(email="them@example.test")
    response = agent_client.post("/feedback/new/", {"kind": "question", "body": "Hi"})
    assert "Say who called" in response.content.decode()
    response = agent_client.post("/feedback/new/", {
        "customer_lookup": foreign.email, "kind": "question", "body": "Hi",
    })  # fmt: skip
    assert "No customer with that email or external id" in response.content.decode()
    assert not Feedback.objects.filter(merchant=merchant).exists()


# --- Another merchant's ids -----------------------------------------------------------------

TICKET_ACTIONS = {
    "": {},
    "reply": {"body": "x", "submit": "reply"},
    "state": {"to": "open"},
    "assign": {"assignee": ""},
    "triage": {"priority": "high"},
    "tags": {"tags": "x"},
    "merge": {"target": "1"},
    "review": {"decision": "approve"},
    "canned": {},
    "presence": {},
}


def test_another_merchants_ticket_is_not_found_on_any_page(agent_client, other_merchant):
    foreign = feedback_submit(
        merchant=other_merchant, channel=Channel.EMAIL, kind=Kind.REVIEW, rating=4,
        sender_email="x@example.test", body="Nice", subject="Theirs",
        uploads=[Upload("a.txt", "text/plain", b"secret")],
    )  # fmt: skip
    for action, data in TICKET_ACTIONS.items():
        url = _url(foreign, action)
        assert agent_client.get(url).status_code == 404, url
        assert agent_client.post(url, data).status_code == 404, url
        assert agent_client.post(url, data, HTTP_HX_REQUEST="true").status_code == 404, url
    attachment = foreign.messages.get().attachments.get()
    assert agent_client.get(f"/feedback/attachments/{attachment.pk}/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.state == State.NEW
    assert foreign.review_state == ReviewState.PENDING
    assert foreign.messages.count() == 1


def test_the_customer_360_page_lists_their_feedback_and_only_theirs(
    agent_client, merchant, customer, ticket
):
    other = CustomerFactory(merchant=merchant)
    feedback_submit(merchant=merchant, customer=other, channel="portal", kind="question",
                    subject="Someone else's question", body="Hi")  # fmt: skip
    page = agent_client.get(reverse("customers:customer-detail", args=[customer.pk]))
    assert reverse("feedback:customer-panel", args=[customer.pk]) in page.content.decode()
    panel = agent_client.get(reverse("feedback:customer-panel", args=[customer.pk]))
    html = panel.content.decode()
    assert ticket.subject in html
    assert f"#{ticket.pk}" in html
    assert "Someone else" not in html


def test_event_lines_are_worded_in_the_readers_language(client, merchant, ticket, agent):
    """The lines are stored as a kind and values: an agent reading in Arabic sees Arabic,
    one reading in English sees English, whoever wrote them."""
    from django.conf import settings

    from feedback.services.tickets import feedback_assign

    feedback_assign(feedback=ticket, assignee=agent, member=agent)
    line = Message.objects.get(feedback=ticket, kind=Message.Kind.EVENT, event="assigned")
    assert (line.body, line.values) == ("", {"agent": "Maria Lopez", "assignee": "Maria Lopez"})
    reader = StaffMemberFactory(merchant=merchant, role="support", user__language="ar")
    client.force_login(reader.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ar"
    arabic = _thread(client.get(_url(ticket)).content.decode())
    assert "أسند Maria Lopez التذكرة إلى Maria Lopez." in arabic
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = _thread(client.get(_url(ticket)).content.decode())
    assert "Maria Lopez assigned the ticket to Maria Lopez." in english
