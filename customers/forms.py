from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, ImportJob, Segment


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
    consent = forms.ChoiceField(
        label=_("Marketing consent"),
        required=False,
        choices=[("", _("Any")), ("yes", _("Given")), ("no", _("Not given"))],
    )


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
            "acquisition_channel",
            "marketing_consent",
        ]
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"})}
