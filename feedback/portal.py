"""Feedback on the customer's rewards page: the panel (a form to write in, and their past
feedback with its public thread), replying on a ticket, and the CSAT link from the email.

The panel renders inside the rewards page's own request, which has a strict speed budget:
one read of the customer's latest tickets with their public messages, drawn by a Jinja2
template (jinja2/feedback/portal/_panel.html).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from customers.portal import portal_page, portal_path, portal_public_view, portal_view
from feedback.forms import MultipleFileField
from feedback.models import Channel, Feedback, Kind, Message, State
from feedback.services.csat import csat_answer, csat_survey_open
from feedback.services.intake import SUBJECT_LENGTH, customer_reply, feedback_submit
from feedback.services.reviews import review_answered, review_request_open, review_submit
from feedback.services.thread import ATTACHMENT_MAX_BYTES, ATTACHMENT_MAX_COUNT, Upload
from merchants.forms import form_add_service_errors
from merchants.sql import moment

TICKETS_SHOWN = 10
BODY_LENGTH = 5000

# The ticket's state in the customer's words: "pending" is the shop waiting on them.
CUSTOMER_STATES = {
    State.NEW: gettext_lazy("Received"),
    State.OPEN: gettext_lazy("We're on it"),
    State.PENDING: gettext_lazy("Waiting for you"),
    State.RESOLVED: gettext_lazy("Resolved"),
    State.CLOSED: gettext_lazy("Closed"),
    # Spam is the shop's word for it, not one to show the sender.
    State.SPAM: gettext_lazy("Closed"),
}
# Reviews come from the shop's product pages (the API), not from this form.
PORTAL_KINDS = [
    (kind.value, kind.label)
    for kind in (Kind.COMPLAINT, Kind.QUESTION, Kind.SUGGESTION, Kind.PRAISE)
]
RATINGS = [(n, str(n)) for n in range(1, 6)]


class FeedbackForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What is it about?"), choices=PORTAL_KINDS,
                             initial=Kind.QUESTION)  # fmt: skip
    rating = forms.TypedChoiceField(
        label=gettext_lazy("Your rating (optional)"),
        choices=RATINGS,
        coerce=int,
        required=False,
        empty_value=None,
    )
    subject = forms.CharField(
        label=gettext_lazy("Subject"), max_length=SUBJECT_LENGTH, required=False
    )
    body = forms.CharField(
        label=gettext_lazy("Message"),
        max_length=BODY_LENGTH,
        error_messages={"required": gettext_lazy("Write a message.")},
    )
    attachments = MultipleFileField(label=gettext_lazy("Attachments (optional)"), required=False)


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Your reply"),
        max_length=BODY_LENGTH,
        error_messages={"required": gettext_lazy("Write a message.")},
    )
    attachments = MultipleFileField(label=gettext_lazy("Attachments (optional)"), required=False)


def _uploads(files) -> list[Upload]:
    """The files as the service takes them. A file over the limit is read only one byte
    past it: enough for the service to refuse it by name."""
    return [
        Upload(
            name=f.name or "file",
            content_type=f.content_type or "application/octet-stream",
            content=f.read(ATTACHMENT_MAX_BYTES + 1),
        )
        for f in files
    ]


# The panel's read by hand (Model.objects.raw): it runs on every rewards page, where building
# it through the ORM measured as costly as running it. The customer's latest tickets, each
# joined to its public thread (a ticket with none comes once, with NULLs); a merged ticket's
# messages moved to the one it was merged into, which is listed.
TICKETS_SQL = f"""
SELECT f.id, f.subject, f.state, f.kind, f.created_at,
  g.kind AS message_kind, g.body AS message_body, g.created_at AS message_at
FROM (
  SELECT id, subject, state, kind, created_at FROM feedback_feedback
  WHERE merchant_id = %s AND customer_id = %s AND state <> '{State.MERGED}'
  ORDER BY created_at DESC, id DESC LIMIT {TICKETS_SHOWN}) f
LEFT JOIN feedback_message g ON g.feedback_id = f.id AND g.merchant_id = %s
  AND g.kind IN ('{Message.Kind.CUSTOMER}', '{Message.Kind.REPLY}')
ORDER BY f.created_at DESC, f.id DESC, g.created_at, g.id
"""


def _tickets(request: HttpRequest) -> list[Feedback]:
    """The customer's latest tickets, each with `.thread`: its customer messages and staff
    replies (never notes or events), in one query."""
    customer = request.portal_customer
    tickets: dict[int, Feedback] = {}
    rows = Feedback.objects.raw(
        TICKETS_SQL, [customer.merchant_id, customer.pk, customer.merchant_id]
    )
    for row in rows:
        ticket = tickets.setdefault(row.pk, row)
        if ticket is row:
            ticket.thread = []
            ticket.customer_state = CUSTOMER_STATES.get(ticket.state, "")
            ticket.can_reply = ticket.state != State.SPAM
        if row.message_kind is not None:
            ticket.thread.append(
                Message(
                    kind=row.message_kind, body=row.message_body, created_at=moment(row.message_at)
                )
            )
    return list(tickets.values())


def feedback_panel(request: HttpRequest) -> str:
    """The rewards page's feedback panel. A view that just handled a form leaves its bound
    form or its thank-you line on the request for the panel to show."""
    if request.portal_customer is None:
        return ""
    tickets = _tickets(request)
    reply_to, reply_form = getattr(request, "_feedback_reply", (None, None))
    return _render(
        merchant=request.portal_merchant,
        form=getattr(request, "_feedback_form", None) or FeedbackForm(),
        reply_to=reply_to,
        reply_form=reply_form,
        opened=reply_to or getattr(request, "_feedback_opened", None),
        notice=getattr(request, "_feedback_notice", ""),
        tickets=tickets,
        csrf_token=get_token(request),
        language=translation.get_language() or "",
    )


def _render(**context) -> str:
    # Without the request: the CSRF token comes in the context (feedback_panel).
    context["max_files"] = ATTACHMENT_MAX_COUNT
    context["max_megabytes"] = ATTACHMENT_MAX_BYTES // (1024 * 1024)
    return render_to_string("feedback/portal/_panel.html", context, using="jinja2")


def _answer(request: HttpRequest, *, notice: str, failed: bool) -> HttpResponse:
    """With htmx, the panel swapped in place (200 even for a form with errors: htmx swaps
    nothing on a 4xx). Without it, back to the page: after success by a redirect with the
    notice, after an error the page itself, with the customer's words kept in the form."""
    if request.headers.get("HX-Request"):
        return HttpResponse(feedback_panel(request))
    if not failed:
        messages.success(request, notice)
        return redirect(portal_path(request.portal_merchant) + "#feedback")
    return portal_page(request, status=400)


@portal_view
@require_POST
def submit(request: HttpRequest) -> HttpResponse:
    form = FeedbackForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            feedback_submit(
                merchant=request.portal_merchant,
                channel=Channel.PORTAL,
                kind=data["kind"],
                rating=data["rating"],
                subject=data["subject"],
                body=data["body"],
                customer=request.portal_customer,
                language=translation.get_language() or "",
                uploads=_uploads(data["attachments"]),
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
    if form.errors:
        request._feedback_form = form
        return _answer(request, notice="", failed=True)
    if request.portal_customer.email:
        notice = _("Thank you: we've received your message and will answer here and by email.")
    else:
        notice = _("Thank you: we've received your message and will answer here.")
    request._feedback_notice = notice
    return _answer(request, notice=notice, failed=False)


@portal_view
@require_POST
def reply(request: HttpRequest, pk: int) -> HttpResponse:
    """The customer writes again on one of their own tickets; anyone else's is a 404."""
    customer = request.portal_customer
    feedback = Feedback.objects.filter(
        merchant_id=customer.merchant_id, customer_id=customer.pk, pk=pk
    ).first()
    if feedback is None:
        raise Http404
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            written_on = customer_reply(
                feedback=feedback,
                body=form.cleaned_data["body"],
                uploads=_uploads(form.cleaned_data["attachments"]),
                channel=Channel.PORTAL,
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
    if form.errors:
        request._feedback_reply = (feedback.pk, form)
        return _answer(request, notice="", failed=True)
    notice = _("Your reply is sent.")
    request._feedback_notice = notice
    # The conversation stays open where she wrote (a new ticket if the old one was closed).
    request._feedback_opened = written_on.pk
    return _answer(request, notice=notice, failed=False)


# --- CSAT ------------------------------------------------------------------------------


CSAT_CHOICES = [
    (5, gettext_lazy("5: Very happy")),
    (4, gettext_lazy("4: Happy")),
    (3, gettext_lazy("3: Neither happy nor unhappy")),
    (2, gettext_lazy("2: Unhappy")),
    (1, gettext_lazy("1: Very unhappy")),
]


class CsatForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=gettext_lazy("How happy are you with our answer?"),
        choices=CSAT_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose a rating from 1 to 5.")},
    )
    comment = forms.CharField(
        label=gettext_lazy("Anything to add? (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@portal_public_view
@require_http_methods(["GET", "POST"])
def csat(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the "how did we do?" email: no sign-in, the token is the key. It
    works once and for 14 days; after that the page says why it can't be answered."""
    merchant = request.portal_merchant
    context: dict = {"merchant": merchant, "customer": request.portal_customer}
    try:
        survey = csat_survey_open(merchant=merchant, token=token)
    except ValidationError as refused:
        context["refused"] = " ".join(refused.messages)
        return render(request, "feedback/portal/csat.html", context, status=410)
    context["feedback"] = survey.feedback
    form = CsatForm(request.POST or None)
    context["form"] = form
    if request.method != "POST":
        return render(request, "feedback/portal/csat.html", context)
    if form.is_valid():
        try:
            csat_answer(
                merchant=merchant,
                token=token,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            if "token" in getattr(error, "error_dict", {}):
                # Answered (or expired) between the page and the press: say so.
                context["refused"] = " ".join(error.message_dict["token"])
                return render(request, "feedback/portal/csat.html", context, status=410)
            form_add_service_errors(form, error)
        else:
            context["thanks"] = True
            return render(request, "feedback/portal/csat.html", context)
    return render(request, "feedback/portal/csat.html", context, status=400)


REVIEW_CHOICES = [
    (5, gettext_lazy("5: Excellent")),
    (4, gettext_lazy("4: Good")),
    (3, gettext_lazy("3: All right")),
    (2, gettext_lazy("2: Poor")),
    (1, gettext_lazy("1: Very poor")),
]


class ReviewForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=gettext_lazy("How was your order?"), choices=REVIEW_CHOICES, coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose a rating from 1 to 5.")},
    )  # fmt: skip
    body = forms.CharField(
        label=gettext_lazy("Tell us more (optional)"), max_length=4000, required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )  # fmt: skip


@portal_public_view
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the message sent after delivery: no sign-in, the signed link is the
    key. Answered, the review waits in the inbox for approval."""
    merchant = request.portal_merchant
    context: dict = {"merchant": merchant, "customer": request.portal_customer}
    try:
        _customer, order = review_request_open(merchant=merchant, token=token)
    except ValidationError as refused:
        context["refused"] = " ".join(refused.messages)
        return render(request, "feedback/portal/review.html", context, status=410)
    context["order"] = order
    if review_answered(order=order) is not None:
        context["thanks"] = True
        return render(request, "feedback/portal/review.html", context)
    form = ReviewForm(request.POST or None)
    context["form"] = form
    if request.method == "POST" and form.is_valid():
        review_submit(merchant=merchant, token=token, rating=form.cleaned_data["rating"],
                      body=form.cleaned_data["body"])  # fmt: skip
        context["thanks"] = True
        return render(request, "feedback/portal/review.html", context)
    return render(request, "feedback/portal/review.html", context,
                  status=400 if request.method == "POST" else 200)  # fmt: skip
