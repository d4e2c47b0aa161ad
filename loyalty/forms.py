from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from loyalty.models import EarningRule, MembershipPlan, Program, Reward, Tier
from merchants.content import TranslatedFieldsForm, localized
from merchants.roles import Role

DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ProgramForm(TranslatedFieldsForm):
    excluded_skus = forms.CharField(
        label=_("SKUs that earn nothing"),
        required=False,
        help_text=_("Comma-separated, for example gift cards."),
    )

    class Meta:
        model = Program
        fields = [
            "is_active",
            "points_per_unit",
            "earn_base",
            "rounding",
            "pending_days",
            "expiry_mode",
            "expiry_months",
            "reminder_days",
            "refund_policy",
            "point_value",
            "excluded_skus",
            "tier_basis",
            "tier_window",
            "tier_warning_days",
            "referrer_points",
            "friend_reward",
            "support_adjust_limit",
            "support_daily_limit",
            *localized("terms"),
        ]
        widgets = {f: forms.Textarea(attrs={"rows": 4}) for f in localized("terms")}

    translated = ("terms",)
    OWNERS_ONLY = ("support_adjust_limit", "support_daily_limit")

    def __init__(self, *args, merchant, role: str = "", **kwargs) -> None:
        super().__init__(*args, merchant=merchant, **kwargs)
        self.fields["friend_reward"].queryset = Reward.objects.filter(merchant=merchant)
        for name in self.OWNERS_ONLY:
            if role != Role.OWNER:
                # Shown, and kept as they are: only an owner sets what support may grant.
                self.fields[name].disabled = True
                self.fields[name].help_text = _("Only an owner changes this.")
        if self.instance.pk:
            self.initial["excluded_skus"] = ", ".join(self.instance.excluded_skus or [])

    def clean_excluded_skus(self) -> list[str]:
        raw = self.cleaned_data.get("excluded_skus") or ""
        return [sku.strip() for sku in raw.split(",") if sku.strip()]


class TierForm(TranslatedFieldsForm):
    translated = ("name", "perks")

    class Meta:
        model = Tier
        fields = [
            *localized("name"),
            "threshold",
            "multiplier",
            *localized("perks"),
            "birthday_points",
            "exclusive_promotions",
        ]
        widgets = {f: forms.Textarea(attrs={"rows": 3}) for f in localized("perks")}


class EarningRuleForm(forms.ModelForm):
    class Meta:
        model = EarningRule
        fields = [
            "name",
            "kind",
            "multiplier",
            "points",
            "category",
            "sku",
            "event",
            "event_key",
            "limit_count",
            "limit_per",
            "starts_at",
            "ends_at",
            "is_active",
        ]
        widgets = {"starts_at": DATETIME, "ends_at": DATETIME}


class RewardForm(TranslatedFieldsForm):
    translated = ("name", "description")

    class Meta:
        model = Reward
        fields = [
            *localized("name", "description"),
            "kind",
            "points_cost",
            "value",
            "product_sku",
            "max_units",
            "tiers",
            "plans",
            "stock",
            "per_customer_limit",
            "is_active",
        ]
        widgets = {
            **{f: forms.Textarea(attrs={"rows": 2}) for f in localized("description")},
            "tiers": forms.CheckboxSelectMultiple,
            "plans": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, merchant, **kwargs) -> None:
        super().__init__(*args, merchant=merchant, **kwargs)
        self.fields["tiers"].queryset = Tier.objects.filter(merchant=merchant)
        self.fields["plans"].queryset = MembershipPlan.objects.filter(merchant=merchant)


class PlanForm(TranslatedFieldsForm):
    translated = ("name", "description", "perks")

    class Meta:
        model = MembershipPlan
        fields = [
            *localized("name", "description"),
            "price",
            "currency",
            "period",
            "trial_days",
            "grace_days",
            "multiplier",
            "recurring_points",
            *localized("perks"),
            "exclusive_promotions",
            "is_active",
        ]
        widgets = {
            f: forms.Textarea(attrs={"rows": 2 if f.startswith("description") else 3})
            for f in localized("description", "perks")
        }


class AdjustForm(forms.Form):
    points = forms.IntegerField(label=_("Points (negative to deduct)"))
    reason = forms.CharField(label=_("Reason"), max_length=200)
    key = forms.CharField(widget=forms.HiddenInput, max_length=60)


class TierOverrideForm(forms.Form):
    tier = forms.ModelChoiceField(
        label=_("Tier"),
        queryset=Tier.objects.none(),
        required=False,
        empty_label=_("No floor"),
    )
    until = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    note = forms.CharField(label=_("Reason"), max_length=200)

    def __init__(self, *args, merchant, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = Tier.objects.filter(merchant=merchant)


class ReferralReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Reject"))])
    note = forms.CharField(label=_("Note"), max_length=200, required=False)
