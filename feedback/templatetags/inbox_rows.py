"""The inbox list's rows and its filter menus, written in Python.

The inbox is the page support agents live in, fifty rows a page at a million tickets. In
the template language each row cost two URL reversals, an include, three choice labels and
a translation, and the select widgets rendered a template per option: rendering was most
of the page's time (BENCHMARKS.md). Here each label and translation is looked up once per
page and each row is one format call. The markup is what the template wrote."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils import dateformat
from django.utils.formats import get_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timezone import template_localtime
from django.utils.translation import gettext

from feedback.models import Channel, Priority, State

register = template.Library()

STATE_BADGES = {
    State.NEW: "text-bg-primary",
    State.OPEN: "text-bg-info",
    State.PENDING: "text-bg-warning",
    State.RESOLVED: "text-bg-success",
    State.SPAM: "text-bg-dark",
}
CLOCK_RUNS = {State.NEW, State.OPEN, State.PENDING}
ROW = (
    '<tr data-ticket="{pk}">\n'
    '        <td><input class="form-check-input" type="checkbox" name="ids" value="{pk}" '
    'aria-label="{check}"></td>\n'
    '        <td class="text-nowrap"><a href="{url}">#{pk}</a></td>\n'
    '        <td><a class="text-reset" href="{url}" dir="auto">{subject}</a>{tags}</td>\n'
    '        <td class="small" dir="auto">{sender}</td>\n'
    '        <td class="small">{channel}</td>\n'
    '        <td><span class="badge {badge}" data-state="{state}">{state_label}</span></td>\n'
    '        <td class="small">{priority}</td>\n'
    '        <td class="small">{department}</td>\n'
    '        <td class="small">{assignee}</td>\n'
    '        <td class="small text-nowrap">{updated}</td>\n'
    '        <td class="small text-nowrap{due_class}"{breached_mark}>{due}{breached}</td>\n'
    "      </tr>"
)


@register.simple_tag
def inbox_rows(tickets) -> SafeString:
    escape = conditional_escape
    channels = {value: escape(str(label)) for value, label in Channel.choices}
    states = {value: escape(str(label)) for value, label in State.choices}
    priorities = {value: escape(str(label)) for value, label in Priority.choices}
    for urgent in (Priority.HIGH, Priority.URGENT):
        priorities[urgent] = format_html("<strong>{}</strong>", priorities[urgent])
    check = gettext("Check ticket #%(number)s")
    breached = format_html(' <span class="badge text-bg-danger">{}</span>', gettext("Breached"))
    short = get_format("SHORT_DATETIME_FORMAT")
    # The ticket page's address with a placeholder id, reversed once.
    url = reverse("feedback:ticket-detail", args=[0])[:-2]

    def moment(value) -> str:
        return escape(dateformat.format(template_localtime(value), short)) if value else "—"

    rows = []
    for ticket in tickets:
        pk = int(ticket.pk)
        if ticket.state in CLOCK_RUNS:
            due = moment(
                ticket.resolution_due_at
                if ticket.first_response_at
                else ticket.first_response_due_at
            )
        else:
            due = "—"
        assignee = ticket.assignee.user if ticket.assignee_id else None
        rows.append(
            ROW.format(
                pk=pk,
                url=f"{url}{pk}/",
                check=escape(check % {"number": pk}),
                subject=escape(Truncator(ticket.subject).chars(80)),
                tags="".join(
                    f' <span class="badge rounded-pill text-bg-light">{escape(tag)}</span>'
                    for tag in ticket.tags
                ),
                sender=escape(ticket.sender),
                channel=channels.get(ticket.channel, ""),
                badge=STATE_BADGES.get(ticket.state, "text-bg-secondary"),
                state=escape(ticket.state),
                state_label=states.get(ticket.state, ""),
                priority=priorities.get(ticket.priority, ""),
                department=escape(ticket.department.name) if ticket.department_id else "—",
                assignee=escape(assignee.full_name or assignee.email) if assignee else "—",
                updated=moment(ticket.updated_at),
                due_class=" text-danger fw-semibold" if ticket.breached_at else "",
                breached_mark=" data-breached" if ticket.breached_at else "",
                due=due,
                breached=breached if ticket.breached_at else "",
            )
        )
    return mark_safe("\n".join(rows))


@register.simple_tag
def options(choices, selected="") -> SafeString:
    """`<option>`s for a select, the chosen one marked: what a Select widget renders, without
    a template per option."""
    selected = "" if selected is None else str(selected)
    return mark_safe("".join(
        format_html('<option value="{}"{}>{}</option>', value,
                    mark_safe(" selected") if str(value) == selected else "", label)
        for value, label in choices
    ))  # fmt: skip
