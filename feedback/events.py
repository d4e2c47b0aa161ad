"""The lines a ticket's thread shows for what happened to it (assigned, moved, merged, rated,
an SLA missed): each is stored as a kind with its values, and worded when it is shown, in
the reader's language. An agent reading in Arabic sees the lines in Arabic, whatever the
language of whoever made them. Names and subjects are shown as written; states, priorities
and the fields a triage changed are codes, worded when shown."""

from __future__ import annotations

from typing import Any

from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from feedback.models import Priority, State
from merchants.dates import date_shown

SENTENCES = {
    "logged": gettext_lazy("Logged by %(agent)s from a call or a visit."),
    "follow_up": gettext_lazy("The customer wrote again about closed ticket #%(number)d."),
    "continued": gettext_lazy(
        "The customer wrote again: the conversation goes on in ticket #%(number)d."
    ),
    "moved_by_customer": gettext_lazy("The customer wrote again: %(from)s → %(to)s."),
    "moved": gettext_lazy("%(agent)s: %(from)s → %(to)s."),
    "assigned": gettext_lazy("%(agent)s assigned the ticket to %(assignee)s."),
    "unassigned": gettext_lazy("%(agent)s unassigned the ticket."),
    "triaged": gettext_lazy("%(agent)s set %(changes)s."),
    "merged_away": gettext_lazy(
        "%(agent)s merged this ticket into #%(target)d; its %(count)d messages moved there."
    ),
    "merged_in": gettext_lazy("%(agent)s merged ticket #%(source)d (%(subject)s) into this one."),
    "review_approved": gettext_lazy("%(agent)s approved the review."),
    "review_rejected": gettext_lazy("%(agent)s rejected the review."),
    "rated": gettext_lazy("The customer rated the answer %(rating)d of 5."),
    # Values: rating and comment; %(rated)s is the "rated" line.
    "rated_with_comment": gettext_lazy("%(rated)s They wrote: %(comment)s"),
    "sla_first_response": gettext_lazy(
        "SLA missed: the first response was due %(due)s. Priority raised."
    ),
    "sla_resolution": gettext_lazy("SLA missed: resolution was due %(due)s. Priority raised."),
}
# What a triage changed, one phrase per field.
CHANGES = {
    "category": gettext_lazy("category %(value)s"),
    "department": gettext_lazy("department %(value)s"),
    "priority": gettext_lazy("priority %(value)s"),
}


def _worded(name: str, value: Any) -> Any:
    """A stored value as the sentence shows it, in the active language."""
    if name in ("from", "to"):
        return State(value).label if value in State.values else value
    if name == "agent":
        return value or _("the system")
    if name == "changes":
        return ", ".join(
            CHANGES[field] % {"value": Priority(code).label if field == "priority" else code or "—"}
            for field, code in value
        )
    if name == "due":
        from django.utils.dateparse import parse_datetime

        return date_shown(localtime(parse_datetime(value)), "SHORT_DATETIME_FORMAT")
    return value


def event_line(kind: str, values: dict[str, Any]) -> str:
    """The line for an event of `kind`, in the active language."""
    sentence = SENTENCES.get(kind)
    if sentence is None:
        return kind
    worded = {name: _worded(name, value) for name, value in values.items()}
    if kind == "rated_with_comment":
        worded["rated"] = event_line("rated", {"rating": values["rating"]})
    return str(sentence) % worded
