from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from merchants.models import ApiKey, Merchant, StoreConnection, normalise_email
from merchants.roles import Role
from merchants.services import MERCHANT_SETTINGS_FIELDS


class SignInForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        "invalid_login": _("That email and password don't match an account."),
        "inactive": _("This account is inactive."),
    }

    def clean_username(self) -> str:
        return normalise_email(self.cleaned_data["username"])


class MerchantSettingsForm(forms.ModelForm):
    timezone = forms.ChoiceField(label=_("Time zone"), choices=())
    storefront_url = forms.URLField(
        label=_("Shop address"),
        required=False,
        assume_scheme="https",
        help_text=_("Where the rewards page sends customers to shop, join and use codes."),
    )

    class Meta:
        model = Merchant
        fields = list(MERCHANT_SETTINGS_FIELDS)
        widgets = {"brand_color": forms.TextInput(attrs={"type": "color"})}
        help_texts = {
            "base_currency": _("Orders and rewards are kept in this currency."),
            "timezone": _("Decides when a day starts for schedules, birthdays and reports."),
            "default_language": _("Used for customers whose language is not known."),
            "calendar": _("Dates on the dashboard, the rewards page and emails."),
            "reply_to_email": _("Customers' answers to our emails go here."),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(z, z) for z in sorted(zoneinfo.available_timezones())]


class StaffInviteForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.SUPPORT)


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=80, help_text=_("Where the key is used, like “Storefront”.")
    )
    scopes = forms.MultipleChoiceField(
        label=_("What it may do"),
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiKey.Scope.INGEST],
    )


class StoreConnectionForm(forms.Form):
    platform = forms.ChoiceField(label=_("Platform"), choices=StoreConnection.Platform.choices)
    name = forms.CharField(label=_("Name"), max_length=80, required=False)
    secret = forms.CharField(
        label=_("Signing secret"),
        max_length=128,
        required=False,
        help_text=_(
            "Shopify: paste the secret shown under Settings → Notifications → Webhooks. "
            "WooCommerce: leave empty and paste the one we make into the webhook's Secret."
        ),
    )
    admin_url = forms.URLField(
        label=_("Shop address"), required=False, assume_scheme="https",
        help_text=_("To create your promotions' codes in the shop, so they work at its "
                    "checkout: https://your-store.myshopify.com or your WordPress site."),
    )  # fmt: skip
    admin_key = forms.CharField(
        label=_("Consumer key"), max_length=128, required=False,
        help_text=_("WooCommerce only: a REST API key with read and write access (ck_…)."),
    )  # fmt: skip
    admin_token = forms.CharField(
        label=_("Access token or consumer secret"), max_length=256, required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Shopify: an Admin API access token with the write_discounts and "
                    "read_products scopes. WooCommerce: the key's consumer secret (cs_…)."),
    )  # fmt: skip


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)
    next = forms.CharField(required=False)


class MerchantSwitchForm(forms.Form):
    merchant = forms.IntegerField()


def form_add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Shows a service's ValidationError on the form: under the field it names when the
    form has that field, otherwise above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, field_errors in error.error_dict.items():
        form.add_error(field if field in form.fields else None, field_errors)
