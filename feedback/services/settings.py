"""The inbox's configuration written by managers: departments, routing rules and their
order, SLA targets, canned replies and business hours. Every change is audited with what
it was and what it became (docs/business-rules.md §12)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from feedback.models import (
    CannedReply,
    Department,
    Priority,
    RoutingRule,
    SlaPolicy,
    SupportSettings,
)
from feedback.services.hours import support_settings_of
from merchants.models import Merchant, StaffMember
from merchants.services import audit_record, audited_save


def department_save(
    *, merchant: Merchant, department: Department | None, data: dict, actor, ip_address=None
) -> Department:
    """Name, members, default assignee (one of the members) and notification email."""
    name = " ".join(str(data.get("name", "")).split())
    clash = Department.objects.filter(merchant=merchant, name__iexact=name)
    if department is not None:
        clash = clash.exclude(pk=department.pk)
    if name and clash.exists():
        raise ValidationError({"name": _("Another department has this name.")})
    assignee: StaffMember | None = data.get("default_assignee")
    members = list(data.get("members") or [])
    if assignee is not None and assignee.pk not in {m.pk for m in members}:
        raise ValidationError({"default_assignee": _("The default assignee must be a member.")})
    return audited_save(
        merchant=merchant,
        instance=department or Department(),
        data={**data, "name": name, "members": members},
        actor=actor,
        action="feedback.department_saved",
        ip_address=ip_address,
    )


def rule_save(
    *, merchant: Merchant, rule: RoutingRule | None, data: dict, actor, ip_address=None
) -> RoutingRule:
    """A routing rule; a new one goes last, so it can't take over tickets the rules above
    it already route."""
    low, high = data.get("rating_min"), data.get("rating_max")
    if low is not None and high is not None and low > high:
        raise ValidationError({"rating_max": _("At most must not be below at least.")})
    instance = rule or RoutingRule()
    if rule is None:
        last = (
            RoutingRule.objects.filter(merchant=merchant)
            .order_by("-position")
            .values_list("position", flat=True)
            .first()
        )
        instance.position = 0 if last is None else last + 1
    return audited_save(
        merchant=merchant,
        instance=instance,
        data=data,
        actor=actor,
        action="feedback.rule_saved",
        ip_address=ip_address,
    )


@transaction.atomic
def rule_move(*, rule: RoutingRule, direction: str, actor, ip_address=None) -> None:
    """Swaps the rule with its neighbour above or below. The merchant's rules are locked
    and renumbered 0, 1, 2…, so two managers moving rules at once can't leave two rules on
    one position."""
    if direction not in ("up", "down"):
        raise ValidationError({"direction": _("Move up or down.")})
    rules = list(
        RoutingRule.objects.select_for_update()
        .filter(merchant_id=rule.merchant_id)
        .order_by("position", "pk")
    )
    index = next(i for i, r in enumerate(rules) if r.pk == rule.pk)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(rules):
        return
    before = [r.pk for r in rules]
    rules[index], rules[other] = rules[other], rules[index]
    for position, item in enumerate(rules):
        if item.position != position:
            RoutingRule.objects.filter(pk=item.pk).update(position=position)
    audit_record(
        action="feedback.rule_moved", merchant=rule.merchant, actor=actor, target=rule,
        before={"order": before}, after={"order": [r.pk for r in rules]},
        ip_address=ip_address,
    )  # fmt: skip


@transaction.atomic
def sla_policies_save(
    *,
    merchant: Merchant,
    targets: dict[str, tuple[int, int] | None],
    actor,
    ip_address=None,
) -> dict[str, SlaPolicy]:
    """The targets of each priority in business minutes; None removes the priority's
    policy (its tickets then have no due times). Tickets already open keep theirs."""
    locked = SlaPolicy.objects.select_for_update().filter(merchant=merchant)
    current = {policy.priority: policy for policy in locked}
    before = {k: [p.first_response_minutes, p.resolution_minutes] for k, p in current.items()}
    for priority, target in targets.items():
        if priority not in Priority.values:
            raise ValidationError({"priority": _("No such priority.")})
        if target is None:
            continue
        first, resolution = target
        if first < 1 or resolution < 1:
            raise ValidationError({f"{priority}_first": _("Targets are at least one minute.")})
        if resolution < first:
            raise ValidationError(
                {f"{priority}_resolution": _("Resolution can't be due before the first response.")}
            )
    for priority, target in targets.items():
        policy = current.get(priority)
        if target is None:
            if policy is not None:
                policy.delete()
                current.pop(priority)
            continue
        first, resolution = target
        if policy is None:
            current[priority] = SlaPolicy.objects.create(
                merchant=merchant, priority=priority,
                first_response_minutes=first, resolution_minutes=resolution,
            )  # fmt: skip
        elif (policy.first_response_minutes, policy.resolution_minutes) != (first, resolution):
            policy.first_response_minutes, policy.resolution_minutes = first, resolution
            policy.save(update_fields=["first_response_minutes", "resolution_minutes"])
    after = {k: [p.first_response_minutes, p.resolution_minutes] for k, p in current.items()}
    if after != before:
        audit_record(action="feedback.sla_saved", merchant=merchant, actor=actor,
                     object_repr=_("SLA targets"), before=before, after=after,
                     ip_address=ip_address)  # fmt: skip
    return current


def canned_reply_save(
    *, merchant: Merchant, canned: CannedReply | None, data: dict, actor, ip_address=None
) -> CannedReply:
    return audited_save(
        merchant=merchant,
        instance=canned or CannedReply(),
        data=data,
        actor=actor,
        action="feedback.canned_saved",
        ip_address=ip_address,
    )


@transaction.atomic
def canned_reply_delete(*, canned: CannedReply, actor, ip_address=None) -> None:
    audit_record(action="feedback.canned_deleted", merchant=canned.merchant, actor=actor,
                 target=canned, before={"title": canned.title, "body": canned.body},
                 ip_address=ip_address)  # fmt: skip
    canned.delete()


def support_settings_save(
    *, merchant: Merchant, data: dict, actor, ip_address=None
) -> SupportSettings:
    """Business hours and how long resolved tickets wait before they close. Changing the
    hours moves no due time already set; new clocks use the new hours."""
    days = sorted({int(day) for day in data.get("working_days") or []})
    if not days or any(not 1 <= day <= 7 for day in days):
        raise ValidationError({"working_days": _("Choose at least one working day.")})
    hours = support_settings_of(merchant=merchant)
    return audited_save(
        merchant=merchant,
        instance=hours,
        data={**data, "working_days": days},
        actor=actor,
        action="feedback.hours_saved",
        ip_address=ip_address,
    )
