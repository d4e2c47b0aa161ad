"""The staff forms of campaigns/: a promotion, a batch of codes, the attempts log's
filters; message templates, flows, sending settings and the suppression list."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    Campaign,
    CodeAttempt,
    Flow,
    MessageTemplate,
    Promotion,
    SendingSettings,
)
from campaigns.services.codes import REASONS
from campaigns.services.messages import template_check
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


class TemplateForm(TranslatedFieldsForm):
    translated = ("subject", "body")

    class Meta:
        model = MessageTemplate
        fields = ["name", "kind", *localized("subject", "body")]
        widgets = {f: forms.Textarea(attrs={"rows": 8}) for f in localized("body")}

    def __init__(self, *args, merchant, **kwargs) -> None:
        super().__init__(*args, merchant=merchant, **kwargs)
        self.fields["kind"].help_text = _(
            "Marketing mail needs consent, carries an unsubscribe link and counts in the "
            "frequency cap. Transactional mail (an order's news, an account's) doesn't."
        )

    def clean(self):
        data = super().clean()
        for name in localized("subject", "body"):
            try:
                template_check(data.get(name) or "", name)
            except ValidationError as error:
                self.add_error(name, error.message_dict[name])
        return data


class FlowForm(forms.ModelForm):
    segments = forms.MultipleChoiceField(
        label=_("Only customers in these segments"), choices=Segment.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip

    class Meta:
        model = Flow
        fields = ["enabled", "delay_minutes", "template", "offer", "segments", "tiers", "personas"]
        widgets = {"tiers": forms.CheckboxSelectMultiple,
                   "personas": forms.CheckboxSelectMultiple}  # fmt: skip
        labels = {"tiers": _("Only customers in these tiers"),
                  "personas": _("Only customers of these personas")}  # fmt: skip

    def __init__(self, *args, merchant, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = MessageTemplate.objects.filter(merchant=merchant)
        self.fields["offer"].queryset = Promotion.objects.filter(merchant=merchant)
        self.fields["tiers"].queryset = Tier.objects.filter(merchant=merchant)
        self.fields["personas"].queryset = Persona.objects.filter(merchant=merchant)


class SendingSettingsForm(forms.ModelForm):
    class Meta:
        model = SendingSettings
        fields = ["from_name", "from_email", "reply_to", "cap_messages", "cap_days",
                  "quiet_from", "quiet_until", "soft_bounce_limit", "send_rate",
                  "attribution_days", "attribution_by"]  # fmt: skip
        widgets = {"quiet_from": forms.TimeInput(attrs={"type": "time"}),
                   "quiet_until": forms.TimeInput(attrs={"type": "time"})}  # fmt: skip

    def clean(self):
        data = super().clean()
        if bool(data.get("quiet_from")) != bool(data.get("quiet_until")):
            self.add_error("quiet_until", _("Give both ends of the quiet hours, or neither."))
        if data.get("cap_messages") and not data.get("cap_days"):
            self.add_error("cap_days", _("Give the days the cap counts over."))
        return data


class SuppressionForm(forms.Form):
    address = forms.EmailField(label=_("Email address"))


class PreviewForm(forms.Form):
    customer = forms.EmailField(
        label=_("Preview for the customer"), required=False,
        help_text=_("Her email; empty: the most recent customer with one."),
    )  # fmt: skip


STEPS = (1, 2, 3)


class CampaignForm(forms.ModelForm):
    """A campaign and its up to three steps (step N: template, offer, days after the one
    before); a broadcast's list of customers as a CSV."""

    segments = forms.MultipleChoiceField(
        label=_("Only customers in these segments"), choices=Segment.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    customer_list = forms.FileField(
        label=_("List of customers (CSV)"), required=False,
        help_text=_("For a broadcast to a list: one customer per row, by email or by your "
                    "shop's customer id. A new file replaces the list."),
    )  # fmt: skip

    class Meta:
        model = Campaign
        fields = [
            "name", "kind", "selection", "days_since", "gap_multiple", "segments", "personas",
            "tiers", "plans", "min_spent", "max_spent", "consent_only", "reentry_days",
            "holdout_percent", "send_at",
        ]  # fmt: skip
        widgets = {
            "personas": forms.CheckboxSelectMultiple,
            "tiers": forms.CheckboxSelectMultiple,
            "plans": forms.CheckboxSelectMultiple,
            "send_at": DATETIME,
        }
        labels = {"personas": _("Only customers of these personas"),
                  "tiers": _("Only customers in these tiers"),
                  "plans": _("Only members of these plans")}  # fmt: skip

    def __init__(self, *args, merchant, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.merchant = merchant
        self.fields["personas"].queryset = Persona.objects.filter(merchant=merchant)
        self.fields["tiers"].queryset = Tier.objects.filter(merchant=merchant)
        self.fields["plans"].queryset = MembershipPlan.objects.filter(merchant=merchant)
        # Predictions aren't built yet: the mode that reads them isn't offered.
        self.fields["selection"].choices = [
            c for c in Campaign.Selection.choices if c[0] != Campaign.Selection.PREDICTED
        ]
        self.fields["holdout_percent"].max_value = 50
        self.fields["holdout_percent"].widget.attrs["max"] = 50
        if self.instance.pk:
            self.fields["kind"].disabled = True
        else:
            self.fields["kind"].initial = Campaign.Kind.WINBACK
        templates = MessageTemplate.objects.filter(merchant=merchant)
        offers = Promotion.objects.filter(merchant=merchant)
        saved = {s.position: s for s in self.instance.steps.all()} if self.instance.pk else {}
        for n in STEPS:
            step = saved.get(n)
            self.fields[f"step{n}_template"] = forms.ModelChoiceField(
                label=_("Message %(n)s: template") % {"n": n}, queryset=templates,
                required=n == 1, initial=step.template_id if step else None,
            )  # fmt: skip
            self.fields[f"step{n}_offer"] = forms.ModelChoiceField(
                label=_("Message %(n)s: offer (a code issued on send)") % {"n": n},
                queryset=offers, required=False, initial=step.offer_id if step else None,
            )  # fmt: skip
            label = (
                _("Message %(n)s: days after entering") % {"n": n} if n == 1
                else _("Message %(n)s: days after message %(before)s") % {"n": n, "before": n - 1}
            )  # fmt: skip
            default = 0 if n == 1 else 3
            self.fields[f"step{n}_delay"] = forms.IntegerField(
                label=label, min_value=0, max_value=365, required=False,
                initial=step.delay_days if step else default,
            )  # fmt: skip

    def steps(self) -> list[dict]:
        """The steps filled in, in order: a step without a template is left out."""
        data = self.cleaned_data
        return [
            {"template": data[f"step{n}_template"], "offer": data.get(f"step{n}_offer"),
             "delay_days": data.get(f"step{n}_delay") or 0}
            for n in STEPS if data.get(f"step{n}_template")
        ]  # fmt: skip

    def campaign_data(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items()
                if k in self.Meta.fields}  # fmt: skip


class CampaignMoveForm(forms.Form):
    move = forms.ChoiceField(choices=[("start", "start"), ("pause", "pause"), ("resume", "resume")])
