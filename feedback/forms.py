"""Forms of the feedback staff pages: the inbox filters and bulk actions, the ticket's
actions, logging a call, and the configuration pages. Every choice of a row (department,
staff member, tier) is limited to the active merchant's, so another merchant's id is "not
a valid choice"."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from customers.selectors import customer_get_by_email, customer_get_by_external_id
from feedback import selectors
from feedback.models import (
    CannedReply,
    Channel,
    Department,
    Kind,
    Priority,
    RoutingRule,
    State,
    SupportSettings,
)
from feedback.services.thread import ATTACHMENT_MAX_BYTES, ATTACHMENT_MAX_COUNT, Upload
from loyalty.models import Tier
from merchants.content import TranslatedFieldsForm, localized
from merchants.models import Merchant, StaffMember

ANY = ("", _("Any"))


def _agent_label(member: StaffMember) -> str:
    return member.user.full_name or member.user.email


def agent_choices(merchant: Merchant) -> list[tuple[int, str]]:
    return [(m.pk, _agent_label(m)) for m in selectors.agents_of(merchant=merchant)]


def department_choices(merchant: Merchant) -> list[tuple[int, str]]:
    return list(
        Department.objects.filter(merchant=merchant)
        .order_by("name", "pk")
        .values_list("pk", "name")
    )


# --- The inbox -------------------------------------------------------------------------------


class InboxFilterForm(forms.Form):
    view = forms.ChoiceField(
        label=_("View"),
        required=False,
        choices=[
            ("mine", _("Mine")),
            ("unassigned", _("Unassigned")),
            ("department", _("My departments")),
            ("all", _("All")),
            ("breached", _("SLA breached")),
        ],
    )
    state = forms.ChoiceField(
        label=_("State"), required=False, choices=[("", _("To do")), *State.choices]
    )
    channel = forms.ChoiceField(label=_("Channel"), required=False, choices=[ANY, *Channel.choices])
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[ANY, *Kind.choices])
    priority = forms.ChoiceField(
        label=_("Priority"), required=False, choices=[ANY, *Priority.choices]
    )
    department = forms.TypedChoiceField(
        label=_("Department"), required=False, coerce=int, empty_value=None
    )
    assignee = forms.TypedChoiceField(
        label=_("Assignee"), required=False, coerce=int, empty_value=None
    )
    tag = forms.CharField(label=_("Tag"), required=False, max_length=40)
    q = forms.CharField(label=_("Search"), required=False, max_length=200)

    def __init__(self, *args, agents: list, departments: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = [ANY, *departments]
        self.fields["assignee"].choices = [ANY, *agents]
        for field in self.fields.values():
            css = "form-select" if isinstance(field, forms.ChoiceField) else "form-control"
            field.widget.attrs["class"] = f"{css} {css}-sm"

    def filters(self) -> selectors.InboxFilters:
        if not self.is_valid():
            return selectors.InboxFilters()
        data = self.cleaned_data
        return selectors.InboxFilters(
            view=data["view"] or "all",
            state=data["state"],
            channel=data["channel"],
            kind=data["kind"],
            priority=data["priority"],
            department_id=data["department"],
            assignee_id=data["assignee"],
            tag=" ".join(data["tag"].split()).lower(),
            q=data["q"].strip(),
        )


class BulkForm(forms.Form):
    action = forms.ChoiceField(
        label=_("Action"),
        choices=[("assign", _("Assign")), ("state", _("Set state")), ("tag", _("Add tag"))],
    )
    assignee = forms.ChoiceField(label=_("Assign to"), required=False)
    state = forms.ChoiceField(label=_("State"), required=False, choices=[ANY, *State.choices])
    tag = forms.CharField(label=_("Tag"), required=False, max_length=40)

    def __init__(self, *args, agents: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [
            ("me", _("Me")),
            ("nobody", _("Nobody")),
            *[(str(pk), label) for pk, label in agents],
        ]

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action == "assign" and not data.get("assignee"):
            self.add_error("assignee", _("Choose whom to assign to."))
        if action == "state" and not data.get("state"):
            self.add_error("state", _("Choose a state."))
        if action == "tag" and not " ".join((data.get("tag") or "").split()):
            self.add_error("tag", _("Write a tag."))
        return data


# --- The ticket ---------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name (the staff reply box and the customer's form); their
    type and contents are the services' to judge, so a refusal names the file at fault."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data if item]
        return [super().clean(data, initial)] if data else []


def uploads_from(files: list[UploadedFile]) -> list[Upload]:
    """The files as the ticket services take them. Too many or too big ones are refused
    before they are read into memory; the services check the rest (type, content)."""
    if len(files) > ATTACHMENT_MAX_COUNT:
        raise ValidationError(
            _("Attach at most %(count)d files.") % {"count": ATTACHMENT_MAX_COUNT}
        )
    for upload in files:
        if upload.size > ATTACHMENT_MAX_BYTES:
            raise ValidationError(
                _("%(name)s is larger than %(size)d MB.")
                % {"name": upload.name, "size": ATTACHMENT_MAX_BYTES // (1024 * 1024)}
            )
    return [
        Upload(
            name=upload.name,
            content_type=upload.content_type or "application/octet-stream",
            content=upload.read(),
        )
        for upload in files
    ]


class ReplyForm(forms.Form):
    SUBMITS = ("reply", "pending", "resolved", "note")

    canned = forms.TypedChoiceField(
        label=_("Canned reply"), required=False, coerce=int, empty_value=None
    )
    body = forms.CharField(
        label=_("Message"), widget=forms.Textarea(attrs={"rows": 6}), max_length=20000
    )
    attachments = MultipleFileField(label=_("Attach files"), required=False)
    submit = forms.ChoiceField(
        required=False,
        choices=[
            ("reply", _("Reply")),
            ("pending", _("Reply and set pending")),
            ("resolved", _("Reply and resolve")),
            ("note", _("Add internal note")),
        ],
    )

    def __init__(self, *args, canned_replies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["canned"].choices = [
            ("", _("Start from a canned reply…")),
            *[(reply.pk, reply.title) for reply in canned_replies],
        ]

    def clean_attachments(self):
        return uploads_from(self.cleaned_data["attachments"])


class StateForm(forms.Form):
    to = forms.ChoiceField(choices=State.choices)


class AssignForm(forms.Form):
    assignee = forms.TypedChoiceField(
        label=_("Assignee"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args, agents: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", _("Nobody")), *agents]


class TriageForm(forms.Form):
    category = forms.CharField(label=_("Category"), required=False, max_length=60)
    department = forms.TypedChoiceField(
        label=_("Department"), required=False, coerce=int, empty_value=None
    )
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)

    def __init__(self, *args, departments: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = [("", _("None")), *departments]


class TagForm(forms.Form):
    tags = forms.CharField(label=_("Add tags"), max_length=200, help_text=_("Comma-separated."))

    def clean_tags(self) -> list[str]:
        tags = [" ".join(t.split()) for t in self.cleaned_data["tags"].split(",")]
        tags = [t for t in tags if t]
        if not tags:
            raise ValidationError(_("Write a tag."))
        return tags


class MergeForm(forms.Form):
    target = forms.CharField(
        label=_("Merge into ticket"),
        max_length=20,
        widget=forms.TextInput(attrs={"placeholder": "#123"}),
    )

    def clean_target(self) -> int:
        number = selectors.ticket_number(self.cleaned_data["target"])
        if number is None:
            raise ValidationError(_("Write a ticket number, like #123."))
        return number


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Reject"))])


class TicketCreateForm(forms.Form):
    """Logging a call or a visit: an existing customer found by email or external id, or
    whoever called by name and email."""

    customer_lookup = forms.CharField(
        label=_("Customer"),
        required=False,
        max_length=254,
        help_text=_("Their email or external id, if they are a customer."),
    )
    caller_name = forms.CharField(label=_("Caller's name"), required=False, max_length=120)
    caller_email = forms.EmailField(label=_("Caller's email"), required=False)
    kind = forms.ChoiceField(label=_("Kind"), choices=Kind.choices, initial=Kind.QUESTION)
    subject = forms.CharField(label=_("Subject"), required=False, max_length=200)
    body = forms.CharField(
        label=_("What they said"), widget=forms.Textarea(attrs={"rows": 6}), max_length=20000
    )
    rating = forms.TypedChoiceField(
        label=_("Rating"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—"), *[(n, str(n)) for n in range(1, 6)]],
    )
    priority = forms.ChoiceField(
        label=_("Priority"),
        required=False,
        choices=[("", _("As routing decides")), *Priority.choices],
    )

    def __init__(self, *args, merchant: Merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant
        self.customer: Customer | None = None

    def clean(self):
        data = super().clean()
        lookup = (data.get("customer_lookup") or "").strip()
        if lookup:
            if "@" in lookup:
                self.customer = customer_get_by_email(merchant=self.merchant, email=lookup)
            else:
                self.customer = customer_get_by_external_id(
                    merchant=self.merchant, external_id=lookup
                )
            if self.customer is None:
                self.add_error(
                    "customer_lookup",
                    _("No customer with that email or external id: fill in the caller instead."),
                )
        elif not data.get("caller_name") and not data.get("caller_email"):
            self.add_error(
                "customer_lookup", _("Say who called: a customer, or a name or an email.")
            )
        if data.get("kind") == Kind.REVIEW and data.get("rating") is None:
            self.add_error("rating", _("A review needs a rating from 1 to 5."))
        return data


# --- Configuration --------------------------------------------------------------------------------


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: StaffMember) -> str:
        return f"{_agent_label(obj)} · {obj.get_role_display()}"


class StaffMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: StaffMember) -> str:
        return f"{_agent_label(obj)} · {obj.get_role_display()}"


class DepartmentForm(forms.ModelForm):
    members = StaffMultipleChoiceField(
        label=_("Members"),
        queryset=StaffMember.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    default_assignee = StaffChoiceField(
        label=_("Default assignee"),
        queryset=StaffMember.objects.none(),
        required=False,
        help_text=_("Unrouted tickets of the department go to this member; one of its members."),
    )

    class Meta:
        model = Department
        fields = ["name", "members", "default_assignee", "email"]
        help_texts = {"email": _("Told about new tickets and missed targets of the department.")}

    def __init__(self, *args, merchant: Merchant, **kwargs):
        super().__init__(*args, **kwargs)
        staff = selectors.staff_of(merchant=merchant)
        self.fields["members"].queryset = staff
        self.fields["default_assignee"].queryset = staff

    def clean(self):
        data = super().clean()
        assignee = data.get("default_assignee")
        members = data.get("members")
        if assignee is not None and members is not None and assignee not in list(members):
            self.add_error("default_assignee", _("The default assignee must be a member."))
        return data


class RoutingRuleForm(forms.ModelForm):
    assignee = StaffChoiceField(
        label=_("Set assignee"), queryset=StaffMember.objects.none(), required=False
    )

    class Meta:
        model = RoutingRule
        fields = [
            "name",
            "is_active",
            "channel",
            "kind",
            "rating_min",
            "rating_max",
            "keywords",
            "tier",
            "segment",
            "category",
            "department",
            "priority",
            "assignee",
        ]
        widgets = {"keywords": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, merchant: Merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = Tier.objects.filter(merchant=merchant).order_by("pk")
        self.fields["department"].queryset = Department.objects.filter(merchant=merchant)
        self.fields["assignee"].queryset = selectors.agents_of(merchant=merchant)
        # An empty condition holds for everything; an empty action changes nothing.
        for name in ("channel", "kind", "segment"):
            self.fields[name].choices = [("", _("Any")), *self.fields[name].choices[1:]]
        self.fields["tier"].empty_label = _("Any")
        for name in ("department", "assignee"):
            self.fields[name].empty_label = _("Leave as it is")
        self.fields["priority"].choices = [
            ("", _("Leave as it is")),
            *self.fields["priority"].choices[1:],
        ]

    def clean(self):
        data = super().clean()
        low, high = data.get("rating_min"), data.get("rating_max")
        if low is not None and high is not None and low > high:
            self.add_error("rating_max", _("At most must not be below at least."))
        return data


class SlaForm(forms.Form):
    """The four priorities' targets on one page; a priority left empty has no targets."""

    def __init__(self, *args, policies: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for priority, label in Priority.choices:
            policy = policies.get(priority)
            self.fields[f"{priority}_first"] = forms.IntegerField(
                label=_("%(priority)s: first response within (business minutes)")
                % {"priority": label},
                required=False,
                min_value=1,
                max_value=525600,
                initial=policy.first_response_minutes if policy else None,
            )
            self.fields[f"{priority}_resolution"] = forms.IntegerField(
                label=_("%(priority)s: resolution within (business minutes)") % {"priority": label},
                required=False,
                min_value=1,
                max_value=525600,
                initial=policy.resolution_minutes if policy else None,
            )

    def rows(self):
        return [
            (label, self[f"{priority}_first"], self[f"{priority}_resolution"])
            for priority, label in Priority.choices
        ]

    def clean(self):
        data = super().clean()
        for priority, _label in Priority.choices:
            first, resolution = data.get(f"{priority}_first"), data.get(f"{priority}_resolution")
            if (
                (first is None) != (resolution is None)
                and not self.has_error(f"{priority}_first")
                and not self.has_error(f"{priority}_resolution")
            ):
                self.add_error(
                    f"{priority}_resolution" if resolution is None else f"{priority}_first",
                    _("Give both targets, or neither."),
                )
            elif first is not None and resolution is not None and resolution < first:
                self.add_error(
                    f"{priority}_resolution",
                    _("Resolution can't be due before the first response."),
                )
        return data

    def targets(self) -> dict[str, tuple[int, int] | None]:
        data = self.cleaned_data
        return {
            priority: (data[f"{priority}_first"], data[f"{priority}_resolution"])
            if data.get(f"{priority}_first") is not None
            else None
            for priority, _label in Priority.choices
        }


class CannedReplyForm(TranslatedFieldsForm):
    """Written per language: an agent's reply starts from the text in the ticket's
    customer's language (selectors.canned_reply_render)."""

    translated = ("title", "body")

    class Meta:
        model = CannedReply
        fields = [*localized("title"), "department", *localized("body")]
        widgets = {f: forms.Textarea(attrs={"rows": 6}) for f in localized("body")}

    def __init__(self, *args, merchant: Merchant, **kwargs):
        super().__init__(*args, merchant=merchant, **kwargs)
        self.fields["department"].queryset = Department.objects.filter(merchant=merchant)
        self.fields["department"].empty_label = _("All departments")
        self.fields[f"body_{merchant.default_language}"].help_text = _(
            "Placeholders: %(names)s."
        ) % {"names": ", ".join(f"{{{name}}}" for name in selectors.PLACEHOLDERS)}


WEEKDAY_CHOICES = [
    (1, _("Monday")),
    (2, _("Tuesday")),
    (3, _("Wednesday")),
    (4, _("Thursday")),
    (5, _("Friday")),
    (6, _("Saturday")),
    (7, _("Sunday")),
]


class SupportSettingsForm(forms.ModelForm):
    working_days = forms.TypedMultipleChoiceField(
        label=_("Working days"),
        choices=WEEKDAY_CHOICES,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = SupportSettings
        fields = ["working_days", "day_starts", "day_ends", "close_after_days"]
        widgets = {
            "day_starts": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "day_ends": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        help_texts = {
            "day_ends": _("Earlier than the start: the working day runs past midnight."),
        }

    def clean(self):
        data = super().clean()
        if data.get("day_starts") is not None and data.get("day_starts") == data.get("day_ends"):
            self.add_error("day_ends", _("The day must end at another time than it starts."))
        return data
