"""Staff pages of merchants/: sign-in, the dashboard, settings, staff, audit log."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import FormView, TemplateView

from merchants import api_keys, selectors, services
from merchants.access import StaffPermissionMixin, client_ip, public_view, staff_view
from merchants.forms import (
    ApiKeyForm,
    LanguageForm,
    MerchantSettingsForm,
    MerchantSwitchForm,
    SignInForm,
    StaffInviteForm,
    StaffRoleForm,
    StoreConnectionForm,
    form_add_service_errors,
)
from merchants.middleware import SESSION_MERCHANT
from merchants.models import AuditEvent
from merchants.panels import panels_for
from merchants.roles import COMING, ROLE_PERMISSIONS, Perm, Role, role_permissions

# --- Sign-in, sign-out, password reset ------------------------------------------------


class SignInView(auth_views.LoginView):
    public = True
    form_class = SignInForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: SignInForm) -> HttpResponse:
        response = super().form_valid(form)
        user = form.get_user()
        if user.language:
            language_cookie_set(response, user.language)
        return response

    def form_invalid(self, form: SignInForm) -> HttpResponse:
        email = self.request.POST.get("username", "")
        # A locked-out attempt is recorded by sign_in_locked_out below.
        if email and not getattr(self.request, "axes_locked_out", False):
            services.sign_in_failure_record(email=email, ip_address=client_ip(self.request))
        return super().form_invalid(form)


def sign_in_locked_out(request: HttpRequest, original_response, credentials) -> HttpResponse:
    """django-axes calls this for an attempt while the email and address are locked out."""
    email = (credentials or {}).get("username", "") or request.POST.get("username", "")
    services.sign_in_failure_record(email=email, ip_address=client_ip(request), locked=True)
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": int(settings.AXES_COOLOFF_TIME * 60)},
        status=429,
    )


class SignOutView(auth_views.LogoutView):
    public = True


class PasswordResetView(auth_views.PasswordResetView):
    public = True
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    public = True


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    public = True
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"
    success_url = reverse_lazy("dashboard")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    public = True


@public_view
@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """Sets the interface language for this browser, and for a signed-in staff member's
    account so it follows them to other devices."""
    form = LanguageForm(request.POST)
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if form.is_valid():
        language = form.cleaned_data["language"]
        if request.user.is_authenticated:
            services.user_language_set(user=request.user, language=language)
        language_cookie_set(response, language)
    return response


def language_cookie_set(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
    )


@public_view
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Each part on its own: the database (without it nothing works: 503), the cache and
    the task broker (without them the product goes on, slower or with mail and jobs
    waiting: "degraded", still 200 so the web server stays in rotation)."""
    parts = services.health_parts()
    if parts["database"] != "ok":
        status, code = "down", 503
    elif all(state == "ok" for state in parts.values()):
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    return JsonResponse({"status": status, **parts}, status=code)


# --- The dashboard --------------------------------------------------------------------


class DashboardView(StaffPermissionMixin, TemplateView):
    permission = Perm.DASHBOARD_VIEW
    template_name = "merchants/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        role = self.request.staff_member.role
        context["role_permissions"] = role_permissions(role)
        context["coming"] = COMING
        context["heartbeat"] = selectors.job_last_finished(job=services.HEARTBEAT_JOB)
        if Perm.AUDIT_VIEW in context["role_permissions"]:
            context["recent_events"] = list(selectors.audit_event_list(merchant=self.merchant)[:8])
        context["team_size"] = selectors.staff_member_list(merchant=self.merchant).count()
        context["panels"] = panels_for("dashboard", context["role_permissions"])
        return context


@staff_view(Perm.DASHBOARD_VIEW)
@require_POST
def merchant_switch(request: HttpRequest) -> HttpResponse:
    form = MerchantSwitchForm(request.POST)
    if form.is_valid():
        member = selectors.membership_get(
            user=request.user, merchant_id=form.cleaned_data["merchant"]
        )
        if member is not None and member.merchant_id == form.cleaned_data["merchant"]:
            request.session[SESSION_MERCHANT] = member.merchant_id
            messages.success(
                request, _("You are now working in %(merchant)s.") % {"merchant": member.merchant}
            )
            return redirect("dashboard")
    messages.error(request, _("You are not on that merchant's team."))
    return redirect("dashboard")


# --- Settings -------------------------------------------------------------------------


class MerchantSettingsView(StaffPermissionMixin, FormView):
    permission = Perm.SETTINGS_CHANGE
    template_name = "merchants/merchant_form.html"
    form_class = MerchantSettingsForm
    success_url = reverse_lazy("merchants:merchant-settings")

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        # The form edits a copy: the shell keeps showing the saved merchant on errors.
        kwargs["instance"] = type(self.merchant).objects.get(pk=self.merchant.pk)
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["portal_url"] = self.request.build_absolute_uri(
            reverse("portal:home", kwargs={"merchant_slug": self.merchant.slug})
        )
        context["portal_secret"] = self.merchant.portal_secret
        return context

    def form_valid(self, form: MerchantSettingsForm) -> HttpResponse:
        try:
            services.merchant_update(
                merchant=self.merchant,
                actor=self.request.user,
                data=form.cleaned_data,
                ip_address=client_ip(self.request),
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
            return self.form_invalid(form)
        messages.success(self.request, _("Settings saved."))
        return super().form_valid(form)


@staff_view(Perm.SETTINGS_CHANGE)
@require_POST
def portal_secret_rotate(request: HttpRequest) -> HttpResponse:
    services.portal_secret_rotate(
        merchant=request.merchant, actor=request.user, ip_address=client_ip(request)
    )
    messages.success(
        request, _("New link secret made. Put it in your storefront: the old one no longer works.")
    )
    return redirect("merchants:merchant-settings")


# --- Staff ----------------------------------------------------------------------------


class StaffListView(StaffPermissionMixin, TemplateView):
    permission = Perm.STAFF_MANAGE
    template_name = "merchants/staffmember_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["members"] = [
            (member, StaffRoleForm(initial={"role": member.role}, prefix=f"m{member.pk}"))
            for member in selectors.staff_member_list(merchant=self.merchant)
        ]
        context["invite_form"] = StaffInviteForm()
        context["role_table"] = [
            (perm, [role in ROLE_PERMISSIONS[perm] for role in Role]) for perm in Perm
        ]
        context["roles"] = list(Role)
        return context


class StaffInviteView(StaffPermissionMixin, FormView):
    permission = Perm.STAFF_MANAGE
    template_name = "merchants/staffmember_invite.html"
    form_class = StaffInviteForm
    success_url = reverse_lazy("merchants:staff-list")

    def form_valid(self, form: StaffInviteForm) -> HttpResponse:
        try:
            result = services.staff_invite(
                merchant=self.merchant,
                actor=self.request.user,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                ip_address=client_ip(self.request),
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
            return self.form_invalid(form)
        messages.success(
            self.request,
            _("Invitation sent to %(email)s.") % {"email": result.member.user.email},
        )
        return super().form_valid(form)


@staff_view(Perm.STAFF_MANAGE)
def staff_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Changes one person's role. With htmx, answers with the updated table row."""
    member = selectors.staff_member_get(merchant=request.merchant, pk=pk)
    form = StaffRoleForm(request.POST or None, initial={"role": member.role}, prefix=f"m{pk}")
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            member = services.staff_role_change(
                member=member,
                actor=request.user,
                role=form.cleaned_data["role"],
                ip_address=client_ip(request),
            )
            form = StaffRoleForm(initial={"role": member.role}, prefix=f"m{pk}")
        except ValidationError as exc:
            error = " ".join(exc.messages)
    elif request.method == "POST":
        error = _("Choose one of the roles.")
    if request.htmx:
        return render(
            request,
            "merchants/partials/_staff_row.html",
            {"member": member, "form": form, "error": error, "saved": not error},
        )
    if error:
        messages.error(request, error)
    elif request.method == "POST":
        messages.success(request, _("Role changed."))
    if request.method == "POST":
        return redirect("merchants:staff-list")
    return render(request, "merchants/staffmember_form.html", {"member": member, "form": form})


@staff_view(Perm.STAFF_MANAGE)
def staff_remove(request: HttpRequest, pk: int) -> HttpResponse:
    member = selectors.staff_member_get(merchant=request.merchant, pk=pk)
    if request.method == "POST":
        try:
            services.staff_remove(member=member, actor=request.user, ip_address=client_ip(request))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, _("%(email)s was removed from the team.") % {"email": member.user.email}
            )
        return redirect("merchants:staff-list")
    return render(request, "merchants/staffmember_confirm_delete.html", {"member": member})


# --- Audit log ------------------------------------------------------------------------


class AuditEventListView(StaffPermissionMixin, TemplateView):
    permission = Perm.AUDIT_VIEW
    template_name = "merchants/auditevent_list.html"
    page_size = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        action = self.request.GET.get("action", "")
        if action not in AuditEvent.Action.values:
            action = ""
        events = selectors.audit_event_list(merchant=self.merchant, action=action)
        context["page"] = Paginator(events, self.page_size).get_page(self.request.GET.get("page"))
        context["actions"] = AuditEvent.Action.choices
        context["action"] = action
        return context


# --- API keys -------------------------------------------------------------------------


@staff_view(Perm.INTEGRATIONS_MANAGE)
def api_key_list(request: HttpRequest) -> HttpResponse:
    """Lists the keys; creating one shows its secret on this answer only."""
    form = ApiKeyForm(request.POST or None)
    new_key = ""
    if request.method == "POST" and form.is_valid():
        try:
            _key, new_key = api_keys.api_key_create(
                merchant=request.merchant,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                actor=request.user,
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            form = ApiKeyForm()
    context = {
        "keys": selectors.api_key_list(merchant=request.merchant),
        "form": form,
        "new_key": new_key,
    }
    response = render(request, "merchants/apikey_list.html", context)
    if new_key:
        response["Cache-Control"] = "no-store"
    return response


@staff_view(Perm.INTEGRATIONS_MANAGE)
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = selectors.api_key_get(merchant=request.merchant, pk=pk)
    if request.method == "POST":
        api_keys.api_key_revoke(key=key, actor=request.user)
        messages.success(request, _("The key “%(name)s” no longer works.") % {"name": key.name})
        return redirect("merchants:apikey-list")
    return render(request, "merchants/apikey_confirm_delete.html", {"key": key})


# --- Shop connections -------------------------------------------------------------------


@staff_view(Perm.INTEGRATIONS_MANAGE)
def store_connection_list(request: HttpRequest) -> HttpResponse:
    form = StoreConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            api_keys.store_connection_create(
                merchant=request.merchant,
                platform=form.cleaned_data["platform"],
                name=form.cleaned_data["name"],
                secret=form.cleaned_data["secret"],
                admin_url=form.cleaned_data["admin_url"],
                admin_key=form.cleaned_data["admin_key"],
                admin_token=form.cleaned_data["admin_token"],
                actor=request.user,
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Connection created. Add its address to your shop."))
            return redirect("merchants:connection-list")
    connections = [
        (
            connection,
            request.build_absolute_uri(
                reverse(f"hook-{connection.platform}", kwargs={"connection": connection.public_id})
            ),
        )
        for connection in selectors.store_connection_list(merchant=request.merchant)
    ]
    response = render(
        request,
        "merchants/storeconnection_list.html",
        {"connections": connections, "form": form,
         "panels": panels_for("store-connection", role_permissions(request.staff_member.role))},
    )  # fmt: skip
    response["Cache-Control"] = "no-store"
    return response


@staff_view(Perm.INTEGRATIONS_MANAGE)
def store_connection_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    connection = selectors.store_connection_get(merchant=request.merchant, pk=pk)
    if request.method == "POST":
        api_keys.store_connection_revoke(connection=connection, actor=request.user)
        messages.success(
            request, _("“%(name)s” no longer receives webhooks.") % {"name": connection.name}
        )
        return redirect("merchants:connection-list")
    return render(
        request, "merchants/storeconnection_confirm_delete.html", {"connection": connection}
    )
