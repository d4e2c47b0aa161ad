from __future__ import annotations

from django.http import HttpRequest

from merchants.roles import role_permissions


def staff(request: HttpRequest) -> dict:
    member = getattr(request, "staff_member", None)
    if member is None:
        return {"merchant": None, "staff_member": None, "perms_granted": frozenset()}
    return {
        "merchant": member.merchant,
        "staff_member": member,
        # Templates ask `"customers.view" in perms_granted` to show what a role may open.
        "perms_granted": frozenset(str(p) for p in role_permissions(member.role)),
        "memberships": getattr(request, "staff_memberships", [member]),
    }
