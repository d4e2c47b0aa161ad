"""Staff roles and what each may do: the one permission table of the product.

Every staff view declares the permission it needs (merchants.access); the tenancy test
walks every URL against every role in this table.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    MARKETER = "marketer", _("Marketer")
    SUPPORT = "support", _("Support agent")
    ANALYST = "analyst", _("Analyst")


class Perm(models.TextChoices):
    DASHBOARD_VIEW = "dashboard.view", _("See the dashboard")
    SETTINGS_CHANGE = "settings.change", _("Change the merchant's settings")
    STAFF_MANAGE = "staff.manage", _("Invite, change and remove staff")
    AUDIT_VIEW = "audit.view", _("Read the audit log")
    INTEGRATIONS_MANAGE = "integrations.manage", _("Manage API keys and shop connections")
    CUSTOMERS_VIEW = "customers.view", _("Read customer profiles")
    CUSTOMERS_CHANGE = "customers.change", _("Edit customer profiles and import data")
    CUSTOMERS_EXPORT = "customers.export", _("Export and erase a customer's personal data")
    PERSONAS_MANAGE = "personas.manage", _("Write personas")
    LOYALTY_VIEW = "loyalty.view", _("Read loyalty programs")
    LOYALTY_MANAGE = "loyalty.manage", _("Configure loyalty programs")
    POINTS_ADJUST = "points.adjust", _("Adjust a customer's points with a reason")
    CAMPAIGNS_VIEW = "campaigns.view", _("Read promotions and campaigns")
    CAMPAIGNS_MANAGE = "campaigns.manage", _("Run promotions, win-back and messages")
    FEEDBACK_WORK = "feedback.work", _("Work the feedback inbox")
    FEEDBACK_MANAGE = "feedback.manage", _("Configure routing, SLA and canned replies")
    FEEDBACK_METRICS = "feedback.metrics", _("Read the inbox's metrics")
    REPORTS_VIEW = "reports.view", _("Read reports")


_EVERYONE = frozenset(Role)

ROLE_PERMISSIONS: dict[Perm, frozenset[Role]] = {
    Perm.DASHBOARD_VIEW: _EVERYONE,
    Perm.SETTINGS_CHANGE: frozenset({Role.OWNER, Role.MANAGER}),
    Perm.STAFF_MANAGE: frozenset({Role.OWNER}),
    Perm.AUDIT_VIEW: frozenset({Role.OWNER, Role.MANAGER}),
    Perm.INTEGRATIONS_MANAGE: frozenset({Role.OWNER, Role.MANAGER}),
    Perm.CUSTOMERS_VIEW: _EVERYONE,
    Perm.CUSTOMERS_CHANGE: frozenset({Role.OWNER, Role.MANAGER}),
    Perm.CUSTOMERS_EXPORT: frozenset({Role.OWNER, Role.MANAGER}),
    Perm.PERSONAS_MANAGE: frozenset({Role.OWNER, Role.MANAGER, Role.MARKETER}),
    Perm.LOYALTY_VIEW: _EVERYONE,
    Perm.LOYALTY_MANAGE: frozenset({Role.OWNER, Role.MANAGER}),
    Perm.POINTS_ADJUST: frozenset({Role.OWNER, Role.MANAGER, Role.SUPPORT}),
    Perm.CAMPAIGNS_VIEW: frozenset({Role.OWNER, Role.MANAGER, Role.MARKETER, Role.ANALYST}),
    Perm.CAMPAIGNS_MANAGE: frozenset({Role.OWNER, Role.MANAGER, Role.MARKETER}),
    Perm.FEEDBACK_WORK: frozenset({Role.OWNER, Role.MANAGER, Role.SUPPORT}),
    Perm.FEEDBACK_MANAGE: frozenset({Role.OWNER, Role.MANAGER}),
    # The agents read how their inbox does; so does whoever reads the shop's reports.
    Perm.FEEDBACK_METRICS: _EVERYONE,
    Perm.REPORTS_VIEW: frozenset({Role.OWNER, Role.MANAGER, Role.MARKETER, Role.ANALYST}),
}


# Granted already, for the parts still being built: a role's list says they are coming,
# rather than promising a page that isn't there.
COMING = frozenset({Perm.CAMPAIGNS_VIEW, Perm.CAMPAIGNS_MANAGE, Perm.REPORTS_VIEW})


def role_has_perm(role: str | None, perm: Perm) -> bool:
    return role is not None and role in ROLE_PERMISSIONS[perm]


def role_permissions(role: str) -> list[Perm]:
    return [perm for perm, roles in ROLE_PERMISSIONS.items() if role in roles]
