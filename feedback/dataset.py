"""Scale data for benchmarks: N feedback tickets for one merchant's existing customers (and
about 5% unknown email senders), spread over two years, each with its conversation, its
resolution cycles, SLA breaches and CSAT surveys. Streamed to the database in chunks: COPY
on PostgreSQL, batched INSERTs elsewhere (customers.dataset.Table). Memory holds one chunk
of tickets, plus the merchant's customer ids (8 bytes each).

Each ticket is played forward from its creation (opened, answered, waiting on the
customer, resolved, reopened, closed by the nightly job) and stopped at the present, so
its state, due times, first response, resolution and messages agree with each other the
way the services would have left them. Due times use business hours roughly (a business
minute taken as 4.2 wall-clock minutes: 40 of 168 hours a week); the SLA clock's pauses
while pending are not replayed.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils.timezone import now

from customers.dataset import Table
from customers.models import Customer
from feedback.models import (
    Channel,
    CsatSurvey,
    Cycle,
    Department,
    Feedback,
    Kind,
    Message,
    Priority,
    SlaBreach,
    SlaPolicy,
    State,
    SupportSettings,
)
from merchants.models import Merchant, StaffMember, User
from merchants.roles import Role

CHUNK = 2000  # tickets whose customers are read in one query
SPAN = timedelta(days=730)
# A business minute in wall-clock minutes (40 working hours of a 168-hour week).
WALL_PER_BUSINESS_MINUTE = 4.2
CLOSE_AFTER = timedelta(days=7)

AGENTS = ["Sara Ahmadi", "Omar Haddad", "Anna Petrova", "James Carter", "Leila Karimi",
          "Youssef Nasser", "Dmitry Volkov", "Emily Brooks", "Reza Tehrani",
          "Olga Smirnova"]  # fmt: skip
# Two agents each; the first is the department's default assignee.
DEPARTMENTS = ["Orders & delivery", "Billing & refunds", "Product quality", "Loyalty & rewards",
               "Store experience"]  # fmt: skip
# (first response, resolution) in business minutes.
SLA_MINUTES = {Priority.LOW: (480, 2880), Priority.NORMAL: (240, 960),
               Priority.HIGH: (60, 480), Priority.URGENT: (30, 240)}  # fmt: skip
PRIORITIES = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]
PRIORITY_WEIGHTS = [15, 60, 20, 5]
# How much faster staff work a ticket of each priority.
PACE = {Priority.LOW: 1.6, Priority.NORMAL: 1.0, Priority.HIGH: 0.6, Priority.URGENT: 0.3}
LANGUAGES = ["en", "ar", "fa", "ru"]
LANGUAGE_WEIGHTS = [70, 10, 10, 10]
CHANNELS = [Channel.EMAIL, Channel.PORTAL, Channel.PHONE, Channel.API]
CHANNEL_WEIGHTS = [40, 35, 15, 10]
PRODUCTS = [("SKU-000", "Sencha"), ("SKU-001", "Assam"), ("SKU-002", "Espresso beans"),
            ("SKU-003", "Glass teapot"), ("SKU-004", "Gift box"), ("SKU-005", "Oat biscuits"),
            ("SKU-006", "Jasmine green tea"), ("SKU-007", "Colombian filter coffee")]  # fmt: skip
TAGS = [["vip"], ["repeat"], ["social-media"], ["courier"], ["vip", "repeat"]]

# The words of tickets, replies, notes and survey comments, in en/ar/fa/ru.
TEXTS = json.loads((Path(__file__).parent / "dataset_texts.json").read_text(encoding="utf-8"))
# Topics: category, department index, kinds and weight; their subjects and bodies (with
# {order} and {product} to fill in) are in TEXTS["topics"][category][language].
TOPICS: list[tuple[str, int, tuple[str, ...], int]] = [
    ("Late delivery", 0, (Kind.COMPLAINT, Kind.QUESTION), 20),
    ("Damaged item", 0, (Kind.COMPLAINT,), 10),
    ("Wrong item", 0, (Kind.COMPLAINT,), 5),
    ("Refund", 1, (Kind.QUESTION, Kind.COMPLAINT), 10),
    ("Double charge", 1, (Kind.COMPLAINT,), 4),
    ("Points missing", 3, (Kind.QUESTION, Kind.COMPLAINT), 8),
    ("Tier question", 3, (Kind.QUESTION,), 4),
    ("Taste", 2, (Kind.COMPLAINT,), 5),
    ("Praise", 4, (Kind.PRAISE,), 6),
    ("Website", 4, (Kind.SUGGESTION,), 4),
    ("Packaging", 2, (Kind.SUGGESTION,), 3),
]
TOPIC_WEIGHTS = [topic[3] for topic in TOPICS]
REVIEW_SHARE = 0.11
REVIEW_RATINGS = [5, 4, 3, 2, 1]
REVIEW_RATING_WEIGHTS = [45, 25, 12, 8, 10]


@dataclass(frozen=True)
class TicketsResult:
    tickets: int
    messages: int
    cycles: int
    breaches: int
    surveys: int
    seconds: float


@dataclass(frozen=True)
class _Agent:
    staff_id: int
    user_id: int
    name: str


@dataclass(frozen=True)
class _Team:
    departments: list[int]
    # Per department index, its agents; the first is the default assignee.
    agents: list[list[_Agent]]


def support_team_ready(*, merchant: Merchant) -> _Team:
    """Business hours, an SLA policy per priority, five departments and ten support agents
    (users created when absent), two per department. Kept if they exist already."""
    SupportSettings.objects.get_or_create(merchant=merchant, defaults={
        "working_days": [1, 2, 3, 4, 5], "day_starts": clock(9),
        "day_ends": clock(17)})  # fmt: skip
    for priority, (first, resolution) in SLA_MINUTES.items():
        SlaPolicy.objects.get_or_create(merchant=merchant, priority=priority, defaults={
            "first_response_minutes": first, "resolution_minutes": resolution})  # fmt: skip
    agents = []
    for n, name in enumerate(AGENTS):
        email = f"agent{n + 1}@{merchant.slug}.support.test"
        user = User.objects.filter(email=email).first() or User.objects.create_user(
            email=email, full_name=name
        )
        member, _created = StaffMember.objects.get_or_create(
            merchant=merchant, user=user, defaults={"role": Role.SUPPORT}
        )
        agents.append(_Agent(staff_id=member.pk, user_id=user.pk, name=name))
    departments, teams = [], []
    for n, name in enumerate(DEPARTMENTS):
        team = agents[2 * n : 2 * n + 2]
        department, _created = Department.objects.get_or_create(
            merchant=merchant, name=name, defaults={"default_assignee_id": team[0].staff_id}
        )
        department.members.add(*[agent.staff_id for agent in team])
        departments.append(department.pk)
        teams.append(team)
    return _Team(departments=departments, agents=teams)


def _customer_ids(merchant: Merchant) -> array:
    """Who writes in, busiest buyers first: tickets pick from the front more often."""
    ids = array("q")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM customers_customer WHERE merchant_id = %s "
            "ORDER BY orders_count DESC, id",
            [merchant.pk],
        )
        while rows := cursor.fetchmany(50_000):
            ids.extend(pk for (pk,) in rows)
    return ids


def _after(rng: random.Random, median_minutes: float, sigma: float = 1.0) -> timedelta:
    return timedelta(minutes=rng.lognormvariate(math.log(median_minutes), sigma))


def _wall(business_minutes: int) -> timedelta:
    return timedelta(minutes=business_minutes * WALL_PER_BUSINESS_MINUTE)


class _Writer:
    """Plays tickets forward and writes their rows."""

    def __init__(self, *, merchant: Merchant, team: _Team, rng: random.Random, end, cursor):
        self.merchant_id = merchant.pk
        self.team = team
        self.rng = rng
        self.end = end
        self.tickets = Table(Feedback, cursor)
        self.messages = Table(Message, cursor, explicit_ids=False)
        self.cycles = Table(Cycle, cursor, explicit_ids=False)
        self.breaches = Table(SlaBreach, cursor, explicit_ids=False)
        self.surveys = Table(CsatSurvey, cursor, explicit_ids=False)
        # Recent tickets a duplicate may be merged into: (id, customer id, sender email).
        self.recent: deque[tuple[int, int | None, str]] = deque(maxlen=500)

    def flush(self) -> None:
        for table in (self.tickets, self.messages, self.cycles, self.breaches, self.surveys):
            table.flush()

    def ticket(self, ticket_id: int, created: datetime, person: tuple | None) -> None:
        rng, end = self.rng, self.end
        language = rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0]
        sku, product = rng.choice(PRODUCTS)
        order = f"#{rng.randint(10_000, 999_999)}"
        rating = review_state = None
        if person is None:
            customer_id, sender_email = None, f"visitor{ticket_id}@mail.dataset.test"
            sender_name = rng.choice(["", "", "Alex Morgan", "Noor Saleh", "Ivan P."])
            name = sender_name.split(" ")[0] or TEXTS["customer_word"][language]
            channel = Channel.EMAIL
        else:
            customer_id, email, first_name = person
            sender_name, name = "", first_name or TEXTS["customer_word"][language]
            channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
            sender_email = email if channel == Channel.EMAIL else ""
        if person is not None and rng.random() < REVIEW_SHARE:
            kind, channel, category, department_index = Kind.REVIEW, Channel.REVIEW, "Review", 2
            rating = rng.choices(REVIEW_RATINGS, REVIEW_RATING_WEIGHTS)[0]
            band = "good" if rating >= 4 else "fair" if rating == 3 else "poor"
            subject, body = TEXTS["reviews"][band][language]
        else:
            category, department_index, kinds, _weight = rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
            kind = rng.choice(kinds)
            subject, body = rng.choice(TEXTS["topics"][category][language])
            if channel == Channel.PORTAL and rng.random() < 0.3:
                rating = rng.randint(1, 5)
        subject = subject.format(order=order, product=product)
        body = body.format(order=order, product=product)
        priority = rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
        if kind == Kind.COMPLAINT and priority == Priority.LOW:
            priority = Priority.NORMAL
        pace = PACE[priority]
        # Routing leaves one ticket in ten without a department: any agent may take it.
        routed = rng.random() < 0.9
        department = self.team.departments[department_index] if routed else None
        team = self.team.agents[department_index] if routed else rng.choice(self.team.agents)
        worker = rng.choice(team)
        assignee = worker if routed and rng.random() < 0.4 else None  # routed to a person
        first_due = created + _wall(SLA_MINUTES[priority][0])
        resolution_due = created + _wall(SLA_MINUTES[priority][1])

        messages: list[tuple] = []  # (at, kind, author user id or None, body)
        state, cycle, reopens = State.NEW, 1, 0
        cycles: list[list] = [[1, created, None, None]]  # number, started, resolved, by
        updated = created
        first_response = resolved = closed = paused = merged_into = None
        messages.append((created, Message.Kind.CUSTOMER, None, body))

        def touch(at: datetime) -> None:
            nonlocal assignee, updated
            assignee = assignee or worker
            updated = at

        # What happens to the ticket, in order; each step after the one before.
        story = rng.random()
        thankful = kind in (Kind.PRAISE, Kind.REVIEW, Kind.SUGGESTION)
        if story < 0.01:
            steps = ["spam"]
        elif story < 0.02 and self.recent and kind != Kind.REVIEW:
            steps = ["merge"]
        elif story < 0.024 and created < end - timedelta(days=30):
            # Forgotten: opened (and maybe asked) long ago, never finished.
            steps = ["open", "ask"] if rng.random() < 0.5 else ["open"]
        elif thankful or story < 0.50:
            steps = ["open+event", "note", "resolve", "close"] if story > 0.9 else (
                ["open", "resolve", "close"])  # fmt: skip
        elif story < 0.80:
            steps = ["open", "ask", "answer", "resolve", "close"] if rng.random() < 0.8 else (
                ["open", "ask", "give up", "close"])  # fmt: skip
        elif story < 0.86:
            steps = ["open", "resolve", "reopen", "resolve", "close"]
        else:
            steps = ["open+event", "note", "resolve", "close"]
        if merged_target := (rng.choice(self.recent) if steps == ["merge"] else None):
            # A duplicate, by email, of an earlier ticket from the same sender.
            customer_id, sender_email = merged_target[1], merged_target[2]
            channel = Channel.EMAIL
        email = channel == Channel.EMAIL
        at = created
        for step in steps:
            if step in ("open", "open+event"):
                at += _after(rng, 45 * pace)
            elif step in ("ask", "resolve") and messages[-1][1] != Message.Kind.CUSTOMER:
                at += _after(rng, 90 * pace)
            elif step in ("ask", "resolve"):
                at += _after(rng, 240 * pace)
            elif step == "note":
                at += _after(rng, 20 * pace)
            elif step in ("answer", "reopen"):
                at += _after(rng, 1440, 0.8)
            elif step == "give up":
                at += timedelta(days=4) + _after(rng, 120)
            elif step == "close":
                at = resolved + CLOSE_AFTER + _after(rng, 300, 0.5)
            else:  # spam, merge
                at += _after(rng, 60 * pace)
            if at > end:
                break
            agent = assignee or worker
            if step in ("open", "open+event"):
                state, updated = State.OPEN, at
                if step == "open+event" and assignee is None:
                    messages.append((at, Message.Kind.EVENT, agent.user_id,
                                     f"Assigned to {agent.name}."))  # fmt: skip
                    assignee = agent
                elif rng.random() < 0.5:
                    assignee = agent  # else it waits in the department's queue
            elif step == "note":
                messages.append((at, Message.Kind.NOTE, agent.user_id, rng.choice(TEXTS["notes"])))
                touch(at)
            elif step == "ask":
                messages.append((at, Message.Kind.REPLY, agent.user_id,
                                 TEXTS["ask"][language].format(name=name)))  # fmt: skip
                first_response = first_response or at
                state, paused = State.PENDING, at
                touch(at)
            elif step == "answer":
                messages.append((at, Message.Kind.CUSTOMER, None,
                                 TEXTS["answer"][language].format(order=order)))  # fmt: skip
                # Waiting on the customer stopped the resolution clock.
                resolution_due += at - paused
                state, paused, updated = State.OPEN, None, at
            elif step == "resolve":
                text = TEXTS["thanks" if thankful else "fixed"][language]
                messages.append((at, Message.Kind.REPLY, agent.user_id,
                                 text.format(name=name, agent=agent.name)))  # fmt: skip
                first_response = first_response or at
                state, resolved, paused = State.RESOLVED, at, None
                cycles[-1][2:] = [at, agent]
                touch(at)
            elif step == "give up":
                resolution_due += at - paused
                messages.append((at, Message.Kind.EVENT, agent.user_id,
                                 "Resolved: no answer from the customer."))  # fmt: skip
                state, resolved, paused = State.RESOLVED, at, None
                cycles[-1][2:] = [at, agent]
                touch(at)
            elif step == "reopen":
                messages.append((at, Message.Kind.CUSTOMER, None, TEXTS["again"][language]))
                state, resolved, cycle, reopens = State.OPEN, None, cycle + 1, reopens + 1
                cycles.append([cycle, at, None, None])
                resolution_due = at + _wall(SLA_MINUTES[priority][1])
                updated = at
            elif step == "close":
                state, closed, updated = State.CLOSED, at, at
            elif step == "spam":
                messages.append((at, Message.Kind.EVENT, worker.user_id, "Marked as spam."))
                state, updated = State.SPAM, at
                assignee = assignee if rng.random() < 0.4 else None
            else:  # merge
                messages.append((at, Message.Kind.EVENT, worker.user_id,
                                 f"Merged into #{merged_target[0]}."))  # fmt: skip
                state, merged_into, updated = State.MERGED, merged_target[0], at

        # SLA: a target missed while the ticket was being worked, found by the job within
        # minutes; the ticket shows the current cycle's first miss.
        breaches = []
        if state not in (State.SPAM, State.MERGED):
            if (first_response or end) > first_due:
                breaches.append((SlaBreach.Target.FIRST_RESPONSE, 1, first_due))
            for number, started, resolved_at, _by in cycles:
                due = (
                    resolution_due if number == cycle else started + _wall(SLA_MINUTES[priority][1])
                )
                if (resolved_at or (paused if number == cycle else None) or end) > due:
                    breaches.append((SlaBreach.Target.RESOLUTION, number, due))
        breached_at = None
        for target, number, due in breaches:
            found = due + timedelta(minutes=rng.randint(1, 15))
            if found > end:
                continue
            self.breaches.add({"merchant_id": self.merchant_id, "feedback_id": ticket_id,
                               "target": target, "cycle": number, "due_at": due,
                               "breached_at": found})  # fmt: skip
            if number == cycle:
                breached_at = min(breached_at or found, found)

        if kind == Kind.REVIEW:
            review_state = (
                "rejected" if rating <= 2 and rng.random() < 0.3
                else "approved" if resolved or closed else "pending"
            )  # fmt: skip
        self.tickets.add({
            "id": ticket_id, "merchant_id": self.merchant_id, "customer_id": customer_id,
            "sender_email": sender_email, "sender_name": sender_name, "channel": channel,
            "kind": kind, "rating": rating, "subject": subject, "body": body,
            "language": language,
            "external_id": f"review-{ticket_id}" if kind == Kind.REVIEW else "",
            "product_sku": sku if kind == Kind.REVIEW else "",
            "product_name": product if kind == Kind.REVIEW else "",
            "review_state": review_state or "", "category": category,
            "department_id": department, "priority": priority,
            "assignee_id": assignee.staff_id if assignee else None, "state": state,
            "tags": rng.choice(TAGS) if rng.random() < 0.1 else [],
            "created_at": created, "updated_at": updated,
            "first_response_due_at": first_due, "resolution_due_at": resolution_due,
            "sla_paused_at": paused, "breached_at": breached_at,
            "first_response_at": first_response,
            "resolved_at": resolved if state in (State.RESOLVED, State.CLOSED) else None,
            "closed_at": closed, "reopen_count": reopens, "cycle": cycle,
            "merged_into_id": merged_into,
            "points_awarded_at": resolved if review_state == "approved" and rating >= 4 else None,
        })  # fmt: skip
        for n, (at, message_kind, author, text) in enumerate(messages):
            self.messages.add({
                "merchant_id": self.merchant_id, "feedback_id": ticket_id, "kind": message_kind,
                "author_id": author, "body": text, "is_automatic": False,
                "email_message_id": f"<t{ticket_id}.m{n}@mail.dataset.test>"
                if email and message_kind in (Message.Kind.CUSTOMER, Message.Kind.REPLY) else "",
                "created_at": at,
            })  # fmt: skip
        reachable = bool(customer_id or sender_email)
        for number, started, resolved_at, by in cycles:
            self.cycles.add({"merchant_id": self.merchant_id, "feedback_id": ticket_id,
                             "number": number, "started_at": started, "resolved_at": resolved_at,
                             "resolved_by_id": by.staff_id if by else None})  # fmt: skip
            if resolved_at is None or not reachable or rng.random() >= 0.8:
                continue
            answered = resolved_at + _after(rng, 600)
            score, comment = None, ""
            if rng.random() < 0.35 and answered <= end:
                score = rng.choices(REVIEW_RATINGS, REVIEW_RATING_WEIGHTS)[0]
                if rng.random() < 0.3:
                    comment = TEXTS["csat_comments"][language][score <= 2]
            self.surveys.add({
                "merchant_id": self.merchant_id, "feedback_id": ticket_id, "cycle": number,
                "token_hash": hashlib.sha256(f"dataset:{ticket_id}:{number}".encode()).hexdigest(),
                "sent_at": resolved_at, "expires_at": resolved_at + timedelta(days=14),
                "answered_at": answered if score else None, "rating": score,
                "comment": comment,
                "agent_id": by.staff_id,
            })  # fmt: skip
        if state not in (State.SPAM, State.MERGED):
            self.recent.append((ticket_id, customer_id, sender_email))


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(top=models.Max("id"))["top"] or 0) + 1


def tickets_generate(
    *,
    merchant: Merchant,
    tickets: int,
    seed: int,
    on_progress: Callable[[str, int], None] | None = None,
) -> TicketsResult:
    """Adds `tickets` tickets for the merchant, ids in creation order, creation dates
    rising towards the present (more recent days hold more tickets)."""
    started = time.monotonic()
    rng = random.Random(seed)
    team = support_team_ready(merchant=merchant)
    customers = _customer_ids(merchant)
    end = now().replace(microsecond=0)
    start = end - SPAN
    with transaction.atomic(), connection.cursor() as cursor:
        writer = _Writer(merchant=merchant, team=team, rng=rng, end=end, cursor=cursor)
        ticket_id = _next_id(Feedback)
        for first in range(0, tickets, CHUNK):
            count = min(CHUNK, tickets - first)
            picks = [
                customers[min(len(customers) - 1, int(len(customers) * rng.random() ** 1.4))]
                if customers and rng.random() >= 0.05
                else None
                for _ in range(count)
            ]
            people = {
                pk: (pk, email, first_name)
                for pk, email, first_name in Customer.objects.filter(
                    pk__in={pk for pk in picks if pk is not None}
                ).values_list("pk", "email", "first_name")
            }
            for n, pk in enumerate(picks):
                # The n-th ticket's place in the span: position ** 0.8 puts more of them in
                # recent months, and keeps creation times rising with the id.
                share = ((first + n + rng.random()) / tickets) ** 0.8
                created = (start + SPAN * share).replace(microsecond=0)
                writer.ticket(ticket_id, created, people.get(pk))
                ticket_id += 1
            if on_progress and (first + count) % 50_000 < CHUNK:
                on_progress("tickets", first + count)
        writer.flush()
        for statement in connection.ops.sequence_reset_sql(no_style(), [Feedback]):
            cursor.execute(statement)
    if connection.vendor == "postgresql":
        # A million new rows and no statistics: the planner would take the inbox's tables
        # for empty ones.
        with connection.cursor() as cursor:
            for model in (Feedback, Message, Cycle, SlaBreach, CsatSurvey):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return TicketsResult(
        tickets=writer.tickets.written,
        messages=writer.messages.written,
        cycles=writer.cycles.written,
        breaches=writer.breaches.written,
        surveys=writer.surveys.written,
        seconds=time.monotonic() - started,
    )
