"""Per-request staff context: the idle timeout and the active merchant."""

from __future__ import annotations

import time
from urllib.parse import unquote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.content import content_activate, content_deactivate
from merchants.selectors import membership_pick, memberships_for_user

SESSION_LAST_SEEN = "staff_last_seen"
SESSION_MERCHANT = "active_merchant_id"
# Writing the session on every request would cost a write per page; a minute's
# precision is plenty for a thirty-minute timeout.
TOUCH_EVERY_SECONDS = 60


class NulRefusedMiddleware:
    """A NUL character in the address (`%00`) is a 400 before any view runs: no column can
    store it, and a lookup by it would fail in the database instead of answering."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or "\x00" in unquote(request.META.get("QUERY_STRING", "")):
            detail = _("The address contains a NUL character.")
            if request.path.startswith("/api/"):  # as the API answers every refusal
                return JsonResponse({"detail": detail, "errors": {"path": [detail]}}, status=400)
            return HttpResponseBadRequest(detail, content_type="text/plain")
        return self.get_response(request)


class StaffIdleTimeoutMiddleware:
    """Signs staff out after STAFF_IDLE_TIMEOUT_SECONDS without a request."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            last_seen = request.session.get(SESSION_LAST_SEEN)
            if last_seen is not None and now - last_seen > settings.STAFF_IDLE_TIMEOUT_SECONDS:
                # The page asked for then sends the visitor to sign in, as for anyone
                # signed out.
                logout(request)
                messages.info(request, _("You were signed out after 30 minutes without activity."))
            elif last_seen is None or now - last_seen >= TOUCH_EVERY_SECONDS:
                request.session[SESSION_LAST_SEEN] = now
        return self.get_response(request)


class ActiveMerchantMiddleware:
    """Puts the signed-in staff member's active merchant on the request and shows times in
    that merchant's time zone."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.staff_member = None
        request.merchant = None
        request.staff_memberships = []
        if request.user.is_authenticated:
            # All of them in one read: the page's merchant switcher lists them too.
            request.staff_memberships = list(memberships_for_user(user=request.user))
            member = membership_pick(
                request.staff_memberships, request.session.get(SESSION_MERCHANT)
            )
            if member is not None:
                request.staff_member = member
                request.merchant = member.merchant
                if request.session.get(SESSION_MERCHANT) != member.merchant_id:
                    request.session[SESSION_MERCHANT] = member.merchant_id
                timezone.activate(member.merchant.zone)
                content_activate(member.merchant)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
            content_deactivate()
