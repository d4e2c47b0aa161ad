"""Who may open a staff page: every staff view declares the permission it needs.

Class-based views use `StaffPermissionMixin` with `permission = Perm.X`; function views
use `@staff_view(Perm.X)`. Pages open to anyone (sign-in, language, health) are marked
with `public = True` or `@public_view`. The tenancy test reads these marks from every
URL pattern, so a page with neither fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from merchants.models import AuditEvent
from merchants.roles import Perm, role_has_perm
from merchants.services import audit_record


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def sign_in_redirect(request: HttpRequest) -> HttpResponse:
    redirect = redirect_to_login(request.get_full_path())
    if request.headers.get("HX-Request"):
        # htmx would swap the sign-in page into a table cell; make it load the page.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = redirect.url
        return response
    return redirect


def check_staff_access(request: HttpRequest, permission: Perm) -> HttpResponse | None:
    """None when the request may go on; otherwise the response that stops it."""
    if not request.user.is_authenticated:
        return sign_in_redirect(request)
    if request.staff_member is None:
        return render(request, "merchants/no_merchant.html", status=403)
    if not role_has_perm(request.staff_member.role, permission):
        audit_record(
            action=AuditEvent.Action.PERMISSION_DENIED,
            merchant=request.merchant,
            actor=request.user,
            object_repr=request.path[:200],
            after={"permission": str(permission), "role": request.staff_member.role},
            ip_address=client_ip(request),
        )
        # Answered here, not raised: a refusal is expected, audited above, and logged by
        # Django as one line, not as an error with a traceback.
        return render(request, "403.html", status=403)
    return None


class StaffPermissionMixin:
    """Requires a signed-in staff member of the active merchant whose role has `permission`."""

    permission: Perm

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        stop = check_staff_access(request, self.permission)
        if stop is not None:
            return stop
        self.merchant = request.merchant
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def staff_view(permission: Perm) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            stop = check_staff_access(request, permission)
            if stop is not None:
                return stop
            return view(request, *args, **kwargs)

        wrapped.permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator


def public_view(view: Callable) -> Callable:
    view.public = True  # type: ignore[attr-defined]
    return view
