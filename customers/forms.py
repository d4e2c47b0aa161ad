from __future__ import annotations

from django import forms
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, ImportJob, Persona, Segment
from customers.personas import CHOICE, NUMBER, OPS, RULE_FIELDS


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"), choices=ImportJob.Kind.choices)
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("UTF-8, with a header row. Orders: one row per order line."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError(_("Choose a .csv file."))
        return upload


class CustomerFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[
            ("recent", _("Newest")),
            ("last_order", _("Last order")),
            ("spent", _("Total spent")),
            ("orders", _("Orders")),
            ("name", _("Name")),
        ],
    )
    min_orders = forms.IntegerField(label=_("Orders from"), required=False, min_value=0)
    max_orders = forms.IntegerField(label=_("Orders to"), required=False, min_value=0)
    last_order_from = forms.DateField(
        label=_("Last order from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    last_order_to = forms.DateField(
        label=_("Last order to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    segment = forms.ChoiceField(
        label=_("Segment"), required=False, choices=[("", _("Any")), *Segment.choices]
    )
    persona = forms.TypedChoiceField(
        label=_("Persona"), required=False, coerce=int, empty_value=None
    )
    consent = forms.ChoiceField(
        label=_("Marketing consent"),
        required=False,
        choices=[("", _("Any")), ("yes", _("Given")), ("no", _("Not given"))],
    )

    def __init__(self, *args, merchant=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only this merchant's personas: another merchant's id is "not a valid choice". One
        # plain query (a model choice field would count, then open a server-side cursor).
        personas = Persona.objects.filter(merchant=merchant).order_by("priority", "id")
        self.fields["persona"].choices = [
            ("", _("Any")),
            *personas.values_list("id", "name"),
        ]


class CustomerProfileForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = [
            "first_name",
            "last_name",
            "email",
            "phone",
            "birth_date",
            "gender",
            "city",
            "country",
            "language",
            "timezone",
            "acquisition_channel",
            "marketing_consent",
        ]
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"})}
        help_texts = {
            "timezone": _("An IANA name such as Asia/Riyadh: her quiet hours follow it. Empty: "
                          "the shop's."),
        }  # fmt: skip


class PersonaForm(forms.ModelForm):
    class Meta:
        model = Persona
        fields = ["name", "description", "offers"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "offers": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "description": _("In your words: who they are and what they value."),
            "offers": _("What to offer them, for your marketers."),
        }


class RuleForm(forms.Form):
    """One rule row. Its comparisons and value widget follow the field it is about."""

    field = forms.ChoiceField(
        label=_("Field"), choices=[("", "—"), *[(k, f.label) for k, f in RULE_FIELDS.items()]]
    )
    op = forms.ChoiceField(label=_("Comparison"), choices=())
    value = forms.CharField(label=_("Value"), max_length=100)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        chosen = (self.data.get(self.add_prefix("field")) if self.is_bound else None) or (
            self.initial.get("field")
        )
        rule_field = RULE_FIELDS.get(chosen or "")
        kind = rule_field.kind if rule_field else NUMBER
        self.fields["op"].choices = OPS[kind]
        if rule_field and rule_field.kind == CHOICE:
            self.fields["value"] = forms.ChoiceField(
                label=_("Value"), choices=[c for c in rule_field.choices if c[0]]
            )
        elif kind == NUMBER:
            self.fields["value"].widget = forms.NumberInput(attrs={"min": 0, "step": "any"})
        # Choosing a field changes the row's comparisons and value input: only then are
        # the rows drawn again (other edits refresh the count alone, keeping what is typed).
        self.fields["field"].widget.attrs.update(
            {
                "hx-post": reverse_lazy("customers:persona-preview"),
                "hx-trigger": "change",
                "hx-include": "#persona-form",
                "hx-target": "#persona-rules",
                "hx-swap": "outerHTML",
            }
        )
        for name in ("field", "op", "value"):
            widget = self.fields[name].widget
            widget.attrs["class"] = (
                "form-select form-select-sm"
                if isinstance(widget, forms.Select)
                else "form-control form-control-sm"
            )

    def rule(self) -> dict | None:
        # An untouched extra row is valid and empty: it is no rule.
        if (
            not self.is_valid()
            or self.cleaned_data.get("DELETE")
            or not self.cleaned_data.get("field")
        ):
            return None
        return {k: self.cleaned_data[k] for k in ("field", "op", "value")}


RuleFormSet = forms.formset_factory(RuleForm, extra=0, can_delete=True)
