"""Staff pages of feedback/: the inbox, a ticket with its thread and actions, logging a
call, and the customer 360 panel (the configuration pages are in settings_views.py).
Every action works as a plain POST and redirect, and with htmx swaps the part of the page
it changed."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    QueryDict,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from customers import selectors as customer_selectors
from feedback import presence, selectors
from feedback.forms import (
    AssignForm,
    BulkForm,
    InboxFilterForm,
    MergeForm,
    ReplyForm,
    ReviewForm,
    StateForm,
    TagForm,
    TicketCreateForm,
    TriageForm,
    agent_choices,
    department_choices,
)
from feedback.models import Channel, Feedback, State
from feedback.services import intake, tickets
from feedback.states import next_states
from loyalty import selectors as loyalty_selectors
from merchants.access import staff_view
from merchants.forms import form_add_service_errors
from merchants.roles import Perm

# --- The inbox ------------------------------------------------------------------------------


def _cursor_value(ticket: Feedback) -> str:
    # Full precision: the next page starts strictly after this exact instant.
    return f"{ticket.updated_at.isoformat()}_{ticket.pk}"


def _parse_cursor(raw: str) -> tuple[datetime, int] | None:
    instant, _sep, pk = raw.rpartition("_")
    try:
        updated_at = parse_datetime(instant)
        number = int(pk)
    except (TypeError, ValueError):
        return None
    if updated_at is None or updated_at.tzinfo is None:
        return None
    return updated_at, number


def _inbox_context(request: HttpRequest, query: QueryDict, result=None, bulk_form=None) -> dict:
    agents = agent_choices(request.merchant)
    form = InboxFilterForm(
        query or None,
        agents=agents,
        departments=department_choices(request.merchant),
    )
    filters = form.filters()
    after = _parse_cursor(query.get("after", ""))
    rows = selectors.inbox_page(
        merchant=request.merchant, member=request.staff_member, filters=filters, after=after
    )
    has_next = len(rows) > selectors.PAGE_SIZE
    rows = rows[: selectors.PAGE_SIZE]
    following = query.copy()
    following.pop("after", None)
    first_query = following.urlencode()
    next_query = ""
    if has_next:
        following["after"] = _cursor_value(rows[-1])
        next_query = following.urlencode()
    # The rows are a Jinja2 template (jinja2/feedback/partials/_inbox_rows.html): fifty render
    # in 4.9 ms there and in 8.5 ms in the Django template language (CPU time, best of 15
    # timeit rounds of 20, rows read from SQLite, en and ru alike; two dates a row are half of
    # it). The filter menus stay in the page's Django templates: 0.9 ms for all of them with
    # a dozen agents.
    rows_html = render_to_string(
        "feedback/partials/_inbox_rows.html", {"tickets": rows}, request=request, using="jinja2"
    )
    return {
        "form": form,
        "filters": filters,
        "tickets": rows,
        "rows": mark_safe(rows_html),  # autoescaped by the template
        "next_query": next_query,
        "first_query": first_query,
        "is_first_page": after is None,
        "query": query.urlencode(),
        "bulk_form": bulk_form or BulkForm(agents=agents),
        "bulk_result": result,
        "views": [
            ("mine", _("Mine")),
            ("unassigned", _("Unassigned")),
            ("department", _("My departments")),
            ("all", _("All")),
            ("breached", _("SLA breached")),
        ],
    }


@staff_view(Perm.FEEDBACK_WORK)
def inbox(request: HttpRequest) -> HttpResponse:
    context = _inbox_context(request, request.GET)
    template = "feedback/partials/_inbox_list.html" if request.htmx else "feedback/inbox.html"
    return render(request, template, context)


@staff_view(Perm.FEEDBACK_WORK)
def inbox_bulk(request: HttpRequest) -> HttpResponse:
    """Assign, move or tag the checked rows. The list comes back as it was asked for (the
    same filters and page), with the tickets the action didn't apply to and why."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    query = QueryDict(request.POST.get("query", ""))
    agents = agent_choices(request.merchant)
    form = BulkForm(request.POST, agents=agents)
    ids = [int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()][: tickets.BULK_LIMIT + 1]
    result = None
    if not ids:
        form.is_valid()
        form.add_error(None, _("Check the tickets to change first."))
    elif form.is_valid():
        data = form.cleaned_data
        assignee = None
        if data["action"] == "assign" and data["assignee"] == "me":
            assignee = request.staff_member
        elif data["action"] == "assign" and data["assignee"] != "nobody":
            assignee = (
                selectors.agents_of(merchant=request.merchant)
                .filter(pk=int(data["assignee"]))
                .first()
            )
        try:
            result = tickets.feedback_bulk(
                merchant=request.merchant, ids=ids, action=data["action"],
                member=request.staff_member, assignee=assignee, state=data["state"],
                tags=[data["tag"]] if data["tag"] else [],
            )  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
    if not request.htmx:
        if result is not None:
            messages.success(request, ngettext(
                "%(count)d ticket changed.", "%(count)d tickets changed.", result.done
            ) % {"count": result.done})  # fmt: skip
            for pk, reason in result.refused:
                messages.warning(request, f"#{pk}: {reason}")
        else:
            for error in form.non_field_errors() + [e for field in form for e in field.errors]:
                messages.error(request, error)
        return redirect(reverse("feedback:inbox") + (f"?{query.urlencode()}" if query else ""))
    context = _inbox_context(request, query, result=result, bulk_form=form)
    return render(request, "feedback/partials/_inbox_list.html", context)


# --- A ticket -------------------------------------------------------------------------------------

STATE_ACTIONS = {
    State.OPEN: pgettext_lazy("ticket action", "Open"),
    State.PENDING: gettext_lazy("Set pending"),
    State.RESOLVED: gettext_lazy("Resolve"),
    State.CLOSED: gettext_lazy("Close"),
    State.SPAM: gettext_lazy("Mark as spam"),
}


def _ticket_context(request: HttpRequest, ticket: Feedback, **forms) -> dict:
    """Everything the ticket page shows, in a fixed number of queries whatever the length
    of the thread or the customer's history."""
    merchant = request.merchant
    agents = agent_choices(merchant)
    departments = department_choices(merchant)
    canned = selectors.canned_replies_for(feedback=ticket)
    customer = ticket.customer
    account = None
    previous: list[Feedback] = []
    if customer is not None:
        account = loyalty_selectors.account_of(customer=customer)
        previous = selectors.customer_tickets(customer=customer, exclude=ticket)
    initial_body = ""
    canned_id = request.GET.get("canned", "")
    if canned_id.isdigit():
        chosen = next((c for c in canned if c.pk == int(canned_id)), None)
        if chosen is not None:
            initial_body = selectors.canned_reply_render(
                canned=chosen, feedback=ticket, member=request.staff_member
            )
    repliable = ticket.state not in (State.CLOSED, State.MERGED, State.SPAM)
    return {
        "ticket": ticket,
        "thread": selectors.ticket_thread(feedback=ticket),
        "repliable": repliable,
        # Merge moves a ticket to merged, so the table says where that is allowed.
        "mergeable": State.MERGED in next_states(ticket.state),
        "state_actions": [
            (state, STATE_ACTIONS.get(state, state.label))
            for state in next_states(ticket.state)
            if state != State.MERGED
        ],
        "reply_form": forms.get("reply_form")
        or ReplyForm(canned_replies=canned, initial={"body": initial_body}),
        "assign_form": forms.get("assign_form")
        or AssignForm(agents=agents, initial={"assignee": ticket.assignee_id}),
        "triage_form": forms.get("triage_form")
        or TriageForm(
            departments=departments,
            initial={
                "category": ticket.category,
                "department": ticket.department_id,
                "priority": ticket.priority,
            },
        ),
        "tag_form": forms.get("tag_form") or TagForm(),
        "merge_form": forms.get("merge_form") or MergeForm(),
        "action_error": forms.get("action_error"),
        "notice": forms.get("notice"),
        "customer": customer,
        "account": account,
        "previous_tickets": previous,
        # When the work area was drawn: the reply box's presence poll stops some time after.
        "drawn_at": int(now().timestamp()),
    }


def _ticket_response(request: HttpRequest, pk: int, status: int = 200, **forms) -> HttpResponse:
    ticket = selectors.ticket_get(merchant=request.merchant, pk=pk)
    context = _ticket_context(request, ticket, **forms)
    template = (
        "feedback/partials/_ticket_work.html" if request.htmx else "feedback/ticket_detail.html"
    )
    return render(request, template, context, status=status)


def _done(request: HttpRequest, pk: int, notice: str) -> HttpResponse:
    """After an action: the fresh work area for htmx, else back to the page."""
    if request.htmx:
        return _ticket_response(request, pk, notice=notice)
    messages.success(request, notice)
    return redirect("feedback:ticket-detail", pk=pk)


def _refused(request: HttpRequest, pk: int, error: ValidationError, **forms) -> HttpResponse:
    return _ticket_response(request, pk, action_error=" ".join(error.messages), **forms)


@staff_view(Perm.FEEDBACK_WORK)
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get(merchant=request.merchant, pk=pk)
    return render(request, "feedback/ticket_detail.html", _ticket_context(request, ticket))


def _post_only(request: HttpRequest) -> HttpResponse | None:
    return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])


@staff_view(Perm.FEEDBACK_WORK)
def ticket_reply(request: HttpRequest, pk: int) -> HttpResponse:
    """A public reply (then optionally pending or resolved), or an internal note."""
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if (refused := _post_only(request)) is not None:
        return refused
    form = ReplyForm(
        request.POST,
        request.FILES,
        canned_replies=selectors.canned_replies_for(feedback=ticket),
    )
    if form.is_valid():
        submit = form.cleaned_data["submit"] or "reply"
        member = request.staff_member
        try:
            if submit == "note":
                tickets.note_add(feedback=ticket, member=member, body=form.cleaned_data["body"],
                                 uploads=form.cleaned_data["attachments"])  # fmt: skip
            else:
                tickets.staff_reply(
                    feedback=ticket, member=member, body=form.cleaned_data["body"],
                    uploads=form.cleaned_data["attachments"],
                    then=submit if submit in ("pending", "resolved") else None,
                )  # fmt: skip
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            presence.presence_clear(ticket_id=ticket.pk, member=member)
            return _done(request, pk, _("Note added.") if submit == "note" else _("Reply sent."))
    return _ticket_response(request, pk, reply_form=form)


@staff_view(Perm.FEEDBACK_WORK)
def ticket_state(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if (refused := _post_only(request)) is not None:
        return refused
    form = StateForm(request.POST)
    if not form.is_valid():
        return _refused(request, pk, ValidationError(_("Choose a state.")))
    try:
        moved = tickets.feedback_transition(
            feedback=ticket, to=form.cleaned_data["to"], member=request.staff_member
        )
    except ValidationError as error:
        return _refused(request, pk, error)
    return _done(request, pk, _("The ticket is %(state)s.") % {
        "state": State(moved.state).label.lower()})  # fmt: skip


@staff_view(Perm.FEEDBACK_WORK)
def ticket_assign(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if (refused := _post_only(request)) is not None:
        return refused
    form = AssignForm(request.POST, agents=agent_choices(request.merchant))
    if not form.is_valid():
        return _ticket_response(request, pk, assign_form=form)
    assignee = None
    if form.cleaned_data["assignee"] is not None:
        assignee = selectors.agents_of(merchant=request.merchant).get(
            pk=form.cleaned_data["assignee"]
        )
    try:
        tickets.feedback_assign(feedback=ticket, assignee=assignee, member=request.staff_member)
    except ValidationError as error:
        return _refused(request, pk, error)
    return _done(request, pk, _("Assignee saved."))


@staff_view(Perm.FEEDBACK_WORK)
def ticket_triage(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if (refused := _post_only(request)) is not None:
        return refused
    form = TriageForm(request.POST, departments=department_choices(request.merchant))
    if not form.is_valid():
        return _ticket_response(request, pk, triage_form=form)
    data = form.cleaned_data
    # None leaves the department as it is; "" takes it away.
    department = None if ticket.department_id is None else ""
    if data["department"] is not None:
        department = selectors.department_get(merchant=request.merchant, pk=data["department"])
    try:
        tickets.feedback_update(
            feedback=ticket, member=request.staff_member, category=data["category"],
            department=department, priority=data["priority"],
        )  # fmt: skip
    except ValidationError as error:
        form_add_service_errors(form, error)
        return _ticket_response(request, pk, triage_form=form)
    return _done(request, pk, _("Triage saved."))


@staff_view(Perm.FEEDBACK_WORK)
def ticket_tag(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if (refused := _post_only(request)) is not None:
        return refused
    form = TagForm(request.POST)
    if not form.is_valid():
        return _ticket_response(request, pk, tag_form=form)
    tags = form.cleaned_data["tags"]
    tickets.feedback_tag(feedback=ticket, member=request.staff_member, tags=tags)
    return _done(request, pk, _("Tags added."))


@staff_view(Perm.FEEDBACK_WORK)
def ticket_merge(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if (refused := _post_only(request)) is not None:
        return refused
    form = MergeForm(request.POST)
    if not form.is_valid():
        return _ticket_response(request, pk, merge_form=form)
    target = selectors.ticket_find(merchant=request.merchant, pk=form.cleaned_data["target"])
    if target is None:
        form.add_error("target", _("No such ticket."))
        return _ticket_response(request, pk, merge_form=form)
    try:
        tickets.feedback_merge(source=ticket, target=target, member=request.staff_member)
    except ValidationError as error:
        form_add_service_errors(form, error)
        return _ticket_response(request, pk, merge_form=form)
    notice = _("Merged into #%(number)d.") % {"number": target.pk}
    if request.htmx:
        # The work now goes on in the other ticket: the browser goes there.
        messages.success(request, notice)
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("feedback:ticket-detail", kwargs={"pk": target.pk})
        return response
    messages.success(request, notice)
    return redirect("feedback:ticket-detail", pk=target.pk)


@staff_view(Perm.FEEDBACK_WORK)
def ticket_review(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if (refused := _post_only(request)) is not None:
        return refused
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _refused(request, pk, ValidationError(_("Choose approve or reject.")))
    approve = form.cleaned_data["decision"] == "approve"
    try:
        tickets.review_moderate(feedback=ticket, approve=approve, member=request.staff_member)
    except ValidationError as error:
        return _refused(request, pk, error)
    return _done(request, pk, _("Review approved.") if approve else _("Review rejected."))


@staff_view(Perm.FEEDBACK_WORK)
def ticket_canned(request: HttpRequest, pk: int) -> HttpResponse:
    """A canned reply with its placeholders filled, as the reply box's text (htmx); without
    htmx, the ticket page with the box filled."""
    ticket = selectors.ticket_get(merchant=request.merchant, pk=pk)
    raw = request.GET.get("canned", "")
    canned = None
    if raw.isdigit():
        canned = next(
            (c for c in selectors.canned_replies_for(feedback=ticket) if c.pk == int(raw)), None
        )
    if not request.htmx:
        url = reverse("feedback:ticket-detail", kwargs={"pk": ticket.pk})
        return redirect(f"{url}?canned={canned.pk}#reply" if canned else url)
    text = ""
    if canned is not None:
        text = selectors.canned_reply_render(
            canned=canned, feedback=ticket, member=request.staff_member
        )
    return render(request, "feedback/partials/_reply_body.html", {"text": text})


@staff_view(Perm.FEEDBACK_WORK)
def ticket_presence(request: HttpRequest, pk: int) -> HttpResponse:
    """Polled by an open reply box: says "I'm replying" and shows who else is."""
    ticket = selectors.ticket_get_plain(merchant=request.merchant, pk=pk)
    if presence.polling_over(since=request.GET.get("since", "")):
        return HttpResponse(status=286)
    presence.presence_mark(ticket_id=ticket.pk, member=request.staff_member)
    others = presence.presence_others(ticket_id=ticket.pk, member=request.staff_member)
    return render(request, "feedback/partials/_presence.html", {"others": others})


@staff_view(Perm.FEEDBACK_WORK)
def attachment_download(request: HttpRequest, pk: int) -> HttpResponse:
    """A file a customer attached, for staff of the merchant only. Always a download, never
    shown inline: whatever the file holds, it doesn't run in our pages."""
    attachment = selectors.attachment_get(merchant=request.merchant, pk=pk)
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, ValueError) as error:
        raise Http404 from error
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.name,
        content_type=attachment.content_type or "application/octet-stream",
    )
    response["Cache-Control"] = "private, no-store"
    return response


# --- Logging a call ----------------------------------------------------------------------------


@staff_view(Perm.FEEDBACK_WORK)
def ticket_create(request: HttpRequest) -> HttpResponse:
    form = TicketCreateForm(request.POST or None, merchant=request.merchant)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                ticket = intake.feedback_submit(
                    merchant=request.merchant, channel=Channel.PHONE, kind=data["kind"],
                    subject=data["subject"], body=data["body"], customer=form.customer,
                    sender_email=data["caller_email"] if form.customer is None else "",
                    sender_name=data["caller_name"] if form.customer is None else "",
                    rating=data["rating"], logged_by=request.staff_member,
                )  # fmt: skip
                if data["priority"] and data["priority"] != ticket.priority:
                    ticket = tickets.feedback_update(
                        feedback=ticket, member=request.staff_member, priority=data["priority"]
                    )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Ticket %(number)s logged.") % {"number": ticket.number})
            return redirect("feedback:ticket-detail", pk=ticket.pk)
    return render(request, "feedback/ticket_form.html", {"form": form})


@staff_view(Perm.FEEDBACK_WORK)
def customer_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The customer's latest feedback on their 360 page."""
    customer = customer_selectors.customer_get(merchant=request.merchant, pk=pk)
    tickets = selectors.customer_tickets(customer=customer, limit=5)
    return render(request, "feedback/partials/_customer_panel.html",
                  {"customer": customer, "tickets": tickets})  # fmt: skip


@staff_view(Perm.FEEDBACK_WORK)
def figures_panel(request: HttpRequest) -> HttpResponse:
    """The inbox at a glance, as a dashboard panel."""
    figures = selectors.inbox_figures(merchant=request.merchant, member=request.staff_member)
    return render(request, "feedback/partials/_figures.html", {"figures": figures})
