"""The staff forms of campaigns/: a promotion, a batch of codes, the attempts log's filters."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.models import CodeAttempt, Promotion
from campaigns.services.codes import REASONS
from customers.models import Customer, Persona, Segment
from loyalty.forms import DATETIME
from loyalty.models import MembershipPlan, Tier
from merchants.content import TranslatedFieldsForm, localized


class PromotionForm(TranslatedFieldsForm):
    translated = ("name", "description")
    segments = forms.MultipleChoiceField(
        label=_("Segments"), choices=Segment.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    customer_email = forms.EmailField(
        label=_("The customer's email"), required=False,
        help_text=_("For a promotion for one customer."),
    )  # fmt: skip
    customer_list = forms.FileField(
        label=_("List of customers (CSV)"), required=False,
        help_text=_("For a promotion for a list: one customer per row, by email or by your "
                    "shop's customer id (a column headed email or external_id, or the first). "
                    "A new file replaces the list."),
    )  # fmt: skip
    public_code = forms.CharField(
        label=_("Public code"), max_length=40, required=False,
        help_text=_("What customers type at checkout, for a promotion with one public code."),
    )  # fmt: skip

    class Meta:
        model = Promotion
        fields = [
            *localized("name", "description"),
            "kind", "value", "bonus_points", "product_sku", "starts_at", "ends_at",
            "eligibility", "tiers", "personas", "segments", "plans",
            "min_spend", "usage_limit", "per_customer_limit", "budget",
            "is_exclusive", "combinable_with", "codes", "is_active",
        ]  # fmt: skip
        widgets = {
            **{f: forms.Textarea(attrs={"rows": 2}) for f in localized("description")},
            "starts_at": DATETIME,
            "ends_at": DATETIME,
            "tiers": forms.CheckboxSelectMultiple,
            "personas": forms.CheckboxSelectMultiple,
            "plans": forms.CheckboxSelectMultiple,
            "combinable_with": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, merchant, **kwargs) -> None:
        super().__init__(*args, merchant=merchant, **kwargs)
        self.merchant = merchant
        self.fields["tiers"].queryset = Tier.objects.filter(merchant=merchant)
        self.fields["personas"].queryset = Persona.objects.filter(merchant=merchant)
        self.fields["plans"].queryset = MembershipPlan.objects.filter(merchant=merchant)
        others = Promotion.objects.filter(merchant=merchant)
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
            if self.instance.customer_id:
                self.initial["customer_email"] = self.instance.customer.email
            public = self.instance.code_set.filter(single_use=False).first()
            if public:
                self.initial["public_code"] = public.code
        self.fields["combinable_with"].queryset = others

    def clean_customer_email(self):
        email = self.cleaned_data["customer_email"].strip()
        if not email:
            return None
        customer = Customer.objects.filter(merchant=self.merchant, email__iexact=email).first()
        if customer is None:
            raise forms.ValidationError(_("No customer of this shop has this email."))
        return customer


class BatchForm(forms.Form):
    count = forms.IntegerField(label=_("How many"), min_value=1, max_value=1_000_000)
    prefix = forms.CharField(label=_("Prefix"), max_length=12, required=False)
    length = forms.IntegerField(label=_("Length"), min_value=4, max_value=20, initial=8)


class AttemptFilter(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=40, required=False)
    action = forms.ChoiceField(
        label=_("Action"), required=False,
        choices=[("", _("Any")), *CodeAttempt.Action.choices],
    )  # fmt: skip
    result = forms.ChoiceField(
        label=_("Result"), required=False,
        choices=[("", _("Any")), ("accepted", _("Accepted")), ("refused", _("Refused"))],
    )  # fmt: skip
    reason = forms.ChoiceField(
        label=_("Reason"), required=False,
        choices=[("", _("Any")), *((key, text) for key, text in REASONS.items())],
    )  # fmt: skip
