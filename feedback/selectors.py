"""Reads of the feedback inbox, always scoped by merchant: the inbox list (keyset pages on
the model's indexes), a ticket with its thread and the customer beside it, canned replies
and the configuration lists (docs/business-rules.md §8)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Count, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404
from django.utils import translation

from customers.mail import LANGUAGE_CODES
from customers.models import Customer
from feedback.models import (
    Attachment,
    CannedReply,
    Department,
    Feedback,
    Message,
    RoutingRule,
    SlaPolicy,
    State,
)
from merchants.content import content_override
from merchants.models import Merchant, StaffMember
from merchants.roles import ROLE_PERMISSIONS, Perm

PAGE_SIZE = 50
VIEWS = ("mine", "unassigned", "department", "all", "breached")
# A fixed order, so the SQL is the same on every request.
UNFINISHED_STATES = [State.NEW, State.OPEN, State.PENDING]
BREACHED_STATES = [State.NEW, State.OPEN]
# What an inbox row shows: the ticket and the three rows it names, in one query, and only
# the columns the row prints (a ticket's body and a customer's profile are long).
ROW_RELATED = ("customer", "department", "assignee__user")
ROW_FIELDS = (
    "merchant_id", "subject", "tags", "sender_email", "sender_name", "channel", "state",
    "priority", "updated_at", "first_response_at", "first_response_due_at",
    "resolution_due_at", "breached_at", "customer__first_name", "customer__last_name",
    "customer__email", "department__name", "assignee__user__full_name", "assignee__user__email",
)  # fmt: skip
TICKET_NUMBER = re.compile(r"^#?\s*(\d{1,18})$")


@dataclass(frozen=True)
class InboxFilters:
    view: str = "all"
    # "" means unfinished (new, open, pending); otherwise one state.
    state: str = ""
    channel: str = ""
    kind: str = ""
    priority: str = ""
    department_id: int | None = None
    assignee_id: int | None = None
    tag: str = ""
    q: str = ""


def agents_of(*, merchant: Merchant) -> QuerySet[StaffMember]:
    """The staff who work the inbox: who a ticket can be assigned to."""
    roles = [str(role) for role in ROLE_PERMISSIONS[Perm.FEEDBACK_WORK]]
    return (
        StaffMember.objects.filter(merchant=merchant, role__in=sorted(roles))
        .select_related("user")
        .order_by("user__full_name", "user__email", "pk")
    )


def staff_of(*, merchant: Merchant) -> QuerySet[StaffMember]:
    return (
        StaffMember.objects.filter(merchant=merchant)
        .select_related("user")
        .order_by("user__full_name", "user__email", "pk")
    )


def member_department_ids(*, member: StaffMember) -> list[int]:
    return list(
        Department.objects.filter(merchant_id=member.merchant_id, members=member)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def ticket_number(q: str) -> int | None:
    """`#123` or `123`: the ticket with that number."""
    found = TICKET_NUMBER.match(q.strip())
    return int(found.group(1)) if found else None


def _subject_matches(
    tickets: QuerySet[Feedback], q: str, vendor: str | None = None
) -> QuerySet[Feedback]:
    """Words of the subject, all of them. On PostgreSQL the full-text expression is the
    one the fb_subject_search GIN index is built on (migration ticket_search), so the
    planner can use it; SQLite has no such index and matches each word anywhere in the
    subject (so "tea" finds "teapot" there too, which the word search doesn't). `vendor`
    lets a test run the SQLite path on PostgreSQL and compare."""
    if (vendor or connection.vendor) == "postgresql":
        return tickets.filter(
            RawSQL(
                'to_tsvector(\'simple\', "feedback_feedback"."subject")'
                " @@ plainto_tsquery('simple', %s)",
                (q,),
                output_field=BooleanField(),
            )
        )
    for word in q.split():
        tickets = tickets.filter(subject__icontains=word)
    return tickets


def _searched(tickets: QuerySet[Feedback], q: str) -> QuerySet[Feedback]:
    q = q.strip()
    if not q:
        return tickets
    if "@" in q:
        return tickets.filter(sender_email__startswith=q.lower())
    return _subject_matches(tickets, q)


def _tagged(tickets: QuerySet[Feedback], tag: str) -> QuerySet[Feedback]:
    if connection.vendor == "postgresql":
        return tickets.filter(tags__contains=[tag])
    # SQLite can't test JSON containment with a lookup; json_each reads the list.
    return tickets.filter(
        RawSQL(
            'EXISTS (SELECT 1 FROM json_each("feedback_feedback"."tags") WHERE value = %s)',
            (tag,),
            output_field=BooleanField(),
        )
    )


def _in_view(tickets: QuerySet[Feedback], *, view: str, member: StaffMember) -> QuerySet[Feedback]:
    if view == "mine":
        return tickets.filter(assignee=member)
    if view == "unassigned":
        return tickets.filter(assignee__isnull=True)
    if view == "department":
        return tickets.filter(department_id__in=member_department_ids(member=member))
    if view == "breached":
        return tickets.filter(breached_at__isnull=False)
    return tickets


def _states(filters: InboxFilters) -> list[str]:
    if filters.view == "breached":
        if filters.state:
            return [filters.state] if filters.state in BREACHED_STATES else []
        return list(BREACHED_STATES)
    return [filters.state] if filters.state else list(UNFINISHED_STATES)


def inbox_page(
    *,
    merchant: Merchant,
    member: StaffMember,
    filters: InboxFilters,
    after: tuple[datetime, int] | None = None,
) -> list[Feedback]:
    """One page of the inbox, PAGE_SIZE + 1 rows (the extra one says there is a next
    page), newest activity first. `after` is the (updated_at, id) of the last row of the
    previous page: a keyset, so page 1,000 costs what page 1 does, and nothing is counted.

    The order (updated_at DESC, id DESC) is the one of the fb_recent, fb_state,
    fb_assignee and fb_department indexes, so a page is a short walk down one of them.

    A ticket number goes straight to that ticket's row, whatever the view and state."""
    number = ticket_number(filters.q)
    if number is not None:
        if after is not None:
            return []
        return _rows(Feedback.objects.filter(merchant=merchant, pk=number), merchant)
    tickets = Feedback.objects.filter(merchant=merchant)
    tickets = _in_view(tickets, view=filters.view, member=member)
    if filters.channel:
        tickets = tickets.filter(channel=filters.channel)
    if filters.kind:
        tickets = tickets.filter(kind=filters.kind)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.department_id is not None:
        tickets = tickets.filter(department_id=filters.department_id)
    if filters.assignee_id is not None:
        tickets = tickets.filter(assignee_id=filters.assignee_id)
    if filters.tag:
        tickets = _tagged(tickets, filters.tag)
    tickets = _searched(tickets, filters.q)
    if after is not None:
        updated_at, pk = after
        # The first condition bounds the index range; the second breaks ties on id.
        tickets = tickets.filter(
            Q(updated_at__lte=updated_at) & (Q(updated_at__lt=updated_at) | Q(id__lt=pk))
        )
    states = _states(filters)
    if not states:
        return []
    ordering = ("-updated_at", "-id")
    if len(states) > 1 and connection.features.supports_slicing_ordering_in_compound:
        # One walk down fb_state per state, each stopping after a page, then merged: an
        # IN over several states would have to read and sort every unfinished ticket.
        walks = [
            tickets.filter(state=state)
            .order_by(*ordering)
            .values_list("updated_at", "id")[: PAGE_SIZE + 1]
            for state in states
        ]
        merged = walks[0].union(*walks[1:], all=True).order_by(*ordering)[: PAGE_SIZE + 1]
        ids = [pk for _updated, pk in merged]
        rows = {
            ticket.pk: ticket
            for ticket in _rows(Feedback.objects.filter(merchant=merchant, pk__in=ids), merchant)
        }
        return [rows[pk] for pk in ids if pk in rows]
    tickets = (
        tickets.filter(state__in=states) if len(states) > 1 else tickets.filter(state=states[0])
    )
    return _rows(tickets.order_by(*ordering)[: PAGE_SIZE + 1], merchant)


def _rows(tickets: QuerySet[Feedback], merchant: Merchant) -> list[Feedback]:
    rows = list(tickets.select_related(*ROW_RELATED).only(*ROW_FIELDS))
    for ticket in rows:
        ticket.merchant = merchant
    return rows


# --- One ticket -----------------------------------------------------------------------------


def ticket_get(*, merchant: Merchant, pk: int) -> Feedback:
    """A ticket of this merchant with what its header names; a foreign id is a 404."""
    ticket = get_object_or_404(
        # Only what the page names: each table more in the join cost more to plan than the
        # whole query takes to run. The merchant is the one asked with.
        Feedback.objects.filter(merchant=merchant).select_related(
            "customer", "department", "assignee__user"
        ),
        pk=pk,
    )
    ticket.merchant = merchant
    return ticket


def ticket_get_plain(*, merchant: Merchant, pk: int) -> Feedback:
    """The ticket row alone, for actions that hand it to a service (which re-reads it
    under a lock anyway)."""
    return get_object_or_404(Feedback.objects.filter(merchant=merchant), pk=pk)


def ticket_find(*, merchant: Merchant, pk: int) -> Feedback | None:
    return Feedback.objects.filter(merchant=merchant, pk=pk).first()


def ticket_thread(*, feedback: Feedback) -> list[Message]:
    """Every message, note and event of the ticket in order, with authors and files:
    three queries however long the thread."""
    return list(
        Message.objects.filter(merchant_id=feedback.merchant_id, feedback=feedback)
        .select_related("author")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("pk")))
        .order_by("created_at", "pk")
    )


def customer_tickets(*, customer: Customer, exclude: Feedback | None = None, limit: int = 5):
    """The customer's latest tickets (on the fb_customer index)."""
    tickets = Feedback.objects.filter(merchant_id=customer.merchant_id, customer=customer).order_by(
        "-created_at", "-id"
    )
    if exclude is not None:
        tickets = tickets.exclude(pk=exclude.pk)
    return list(tickets.only("id", "subject", "state", "created_at")[:limit])


def attachment_get(*, merchant: Merchant, pk: int) -> Attachment:
    return get_object_or_404(Attachment.objects.filter(merchant=merchant), pk=pk)


# --- Canned replies ---------------------------------------------------------------------------

PLACEHOLDERS = ("customer_name", "ticket_number", "agent_name", "merchant_name")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def canned_replies_for(*, feedback: Feedback) -> list[CannedReply]:
    """The replies of the ticket's department and the ones for every department."""
    mine = Q(department__isnull=True)
    if feedback.department_id is not None:
        mine |= Q(department_id=feedback.department_id)
    return list(
        CannedReply.objects.filter(mine, merchant_id=feedback.merchant_id).order_by("title", "pk")
    )


def canned_reply_get(*, merchant: Merchant, pk: int) -> CannedReply:
    return get_object_or_404(
        CannedReply.objects.filter(merchant=merchant).select_related("department"), pk=pk
    )


def placeholders_fill(text: str, values: dict[str, str]) -> str:
    """`{name}` replaced by its value; anything else left as written. What str.format_map
    with a forgiving mapping means to do, without its traps: a stray brace in a merchant's
    text doesn't raise, and `{customer_name.__class__}` isn't evaluated."""
    return _PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), text)


def ticket_language(feedback: Feedback) -> str:
    """The language the ticket's customer reads: the ticket's, else the customer's, else the
    shop's default."""
    if feedback.language in LANGUAGE_CODES:
        return feedback.language
    if feedback.customer is not None and feedback.customer.language in LANGUAGE_CODES:
        return feedback.customer.language
    return feedback.merchant.default_language


def canned_reply_render(*, canned: CannedReply, feedback: Feedback, member: StaffMember) -> str:
    """The reply's text in the customer's language (the shop's default where the merchant
    hasn't written it in theirs), its placeholders filled."""
    customer = feedback.customer
    customer_name = ""
    if customer is not None:
        customer_name = customer.first_name or customer.full_name
    values = {
        "customer_name": customer_name or feedback.sender_name or feedback.sender_email,
        "ticket_number": feedback.number,
        "agent_name": member.user.full_name or member.user.email,
        "merchant_name": feedback.merchant.name,
    }
    with translation.override(ticket_language(feedback)), content_override(feedback.merchant):
        body = canned.body
    return placeholders_fill(body, values)


# --- Configuration ------------------------------------------------------------------------------


def department_list(*, merchant: Merchant) -> QuerySet[Department]:
    return (
        Department.objects.filter(merchant=merchant)
        .select_related("default_assignee__user")
        .prefetch_related(
            Prefetch("members", queryset=StaffMember.objects.select_related("user").order_by("pk"))
        )
        .order_by("name", "pk")
    )


def department_get(*, merchant: Merchant, pk: int) -> Department:
    return get_object_or_404(Department.objects.filter(merchant=merchant), pk=pk)


def rule_list(*, merchant: Merchant) -> QuerySet[RoutingRule]:
    return (
        RoutingRule.objects.filter(merchant=merchant)
        .select_related("tier", "department", "assignee__user")
        .order_by("position", "pk")
    )


def rule_get(*, merchant: Merchant, pk: int) -> RoutingRule:
    return get_object_or_404(RoutingRule.objects.filter(merchant=merchant), pk=pk)


def canned_list(*, merchant: Merchant) -> QuerySet[CannedReply]:
    return (
        CannedReply.objects.filter(merchant=merchant)
        .select_related("department")
        .order_by("title", "pk")
    )


def sla_policies_of(*, merchant: Merchant) -> dict[str, SlaPolicy]:
    return {policy.priority: policy for policy in SlaPolicy.objects.filter(merchant=merchant)}


def inbox_figures(*, merchant: Merchant, member: StaffMember) -> dict[str, int]:
    """What waits in the inbox, for the dashboard: one pass over the unfinished tickets (on
    fb_state), however many tickets are done."""
    return Feedback.objects.filter(merchant=merchant, state__in=UNFINISHED_STATES).aggregate(
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
        mine=Count("pk", filter=Q(assignee=member)),
        breached=Count("pk", filter=Q(breached_at__isnull=False, state__in=BREACHED_STATES)),
        pending=Count("pk", filter=Q(state=State.PENDING)),
    )
