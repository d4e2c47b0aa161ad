"""The rewards page's points, membership and invitation panels, written in Python.

The rewards page is the page customers open most (DESIGN 7: 300 pages a second). As
templates, each of these panels cost a render with every context processor and a few
dozen variable lookups, filters and translations, more than the rest of its work. Here
each is a handful of format calls. The markup is what the templates wrote, with their
msgids, and each value is shown as a template shows it: `shown()` is `{{ value }}`
(localized, escaped); a `{% translate %}` of a literal is not escaped and neither is a
`{% blocktranslate %}`'s text, only the values put into it; `{% url %}` is escaped.
tests/loyalty/test_portal.py reads names, numbers and dates through them in several
languages.
"""

from __future__ import annotations

from django.template.defaultfilters import floatformat, linebreaksbr
from django.urls import reverse
from django.utils.formats import date_format, localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import gettext, ngettext

from loyalty.models import Membership
from loyalty.templatetags.portal_rows import referral_lines


def shown(value) -> str:
    """A value as `{{ value }}` shows it."""
    return conditional_escape(str(localize(template_localtime(value))))


def _date(value) -> str:
    """`{{ value|date:"DATE_FORMAT" }}`."""
    return conditional_escape(date_format(template_localtime(value), "DATE_FORMAT"))


def _times(multiplier) -> str:
    """`{% blocktranslate with times=multiplier|floatformat:"-2" %}` … (floatformat of a
    missing value is "")."""
    times = floatformat("" if multiplier is None else multiplier, "-2")
    return gettext("%(times)s× points on every order") % {"times": times}  # noqa: RUF001


def _panel_url(merchant, name: str) -> str:
    return conditional_escape(reverse("portal:panel", args=[merchant.slug, name]))


POINTS = (
    '\n<section class="card shadow-sm" id="points" aria-labelledby="points-title" '
    'data-testid="points-panel"\n'
    '         hx-get="{url}" hx-trigger="points-changed from:body" hx-swap="outerHTML">\n'
    '  <div class="card-body">\n'
    '    <h2 class="h6 text-body-secondary" id="points-title">{title}</h2>\n'
    "    {body}\n"
    "  </div>\n"
    "</section>"
)


def points_html(page, merchant) -> SafeString:
    """The balance, what it is worth, what is on its way or expiring, and the tier."""
    program = page.program
    if not program:
        body = '<p class="mb-0">{}</p>\n    '.format(
            gettext("This shop has no rewards program running right now.")
        )
    else:
        currency = shown(merchant.base_currency)
        parts = [
            '<p class="mb-1">'
            + ngettext("%(points)s point", "%(points)s points", page.available)
            % {
                "points": '<span class="regulars-balance" data-testid="points-available">'
                f"{shown(page.available)}</span>"
            }
            + "</p>\n",
            '    <p class="mb-2">'
            + gettext("Worth %(worth)s %(currency)s in rewards")
            % {"worth": shown(page.worth), "currency": currency}
            + "</p>\n",
        ]
        if page.pending:
            on_its_way = ngettext(
                "%(points)s point on its way: it becomes yours when the return window ends.",
                "%(points)s points on their way: they become yours when the return window ends.",
                page.pending,
            ) % {"points": shown(page.pending)}
            parts.append(
                '    <p class="small mb-1" data-testid="points-pending"><i class="bi '
                f'bi-hourglass-split" aria-hidden="true"></i>\n      {on_its_way}</p>\n'
            )
        if page.expiring_points:
            expiring = ngettext(
                "%(points)s point expires on %(date)s.",
                "%(points)s points expire on %(date)s.",
                page.expiring_points,
            ) % {"points": shown(page.expiring_points), "date": _date(page.expiring_on)}
            parts.append(
                '    <p class="small mb-1 text-danger-emphasis" data-testid="points-expiring">'
                f'<i class="bi bi-clock" aria-hidden="true"></i>\n      {expiring}</p>\n'
            )
        if page.tiers:
            parts.append(_tier_html(page, program, currency))
        body = "".join(parts)
    return mark_safe(
        POINTS.format(url=_panel_url(merchant, "points"), title=gettext("Your points"), body=body)
    )


def _tier_html(page, program, currency: str) -> str:
    tier, next_tier = page.tier, page.next_tier
    if tier:
        name = gettext("Your tier: %(tier)s") % {"tier": shown(tier.name)}
    else:
        name = gettext("No tier yet")
    parts = [f'    <hr>\n    <h3 class="h6" data-testid="tier-name">{name}</h3>\n']
    if next_tier:
        percent, next_name = shown(page.progress_percent), shown(next_tier.name)
        if program.tier_basis == "points":
            progress = ngettext(
                "Earn %(points)s more point to reach %(tier)s.",
                "Earn %(points)s more points to reach %(tier)s.",
                page.to_next_tier,
            ) % {"points": shown(page.to_next_tier), "tier": next_name}
        elif program.tier_basis == "orders":
            progress = ngettext(
                "%(orders)s more order to reach %(tier)s.",
                "%(orders)s more orders to reach %(tier)s.",
                page.to_next_tier,
            ) % {"orders": shown(page.to_next_tier), "tier": next_name}
        else:
            progress = gettext("Spend %(amount)s %(currency)s more to reach %(tier)s.") % {
                "amount": shown(page.to_next_tier),
                "currency": currency,
                "tier": next_name,
            }
        label = gettext("Progress to %(tier)s") % {"tier": next_name}
        parts.append(
            f'      <progress class="regulars-progress w-100 mb-1" max="100" value="{percent}" '
            f'aria-label="{label}">{percent}%</progress>\n'
            f'      <p class="small mb-2" data-testid="tier-progress">{progress}</p>\n'
        )
    else:
        parts.append(
            '      <p class="small mb-2" data-testid="tier-progress">'
            + gettext("You're at the top tier. Thank you!")
            + "</p>\n"
        )
    parts.append(_tier_perks_html(tier))
    return "".join(parts)


def _tier_perks_html(tier) -> str:
    if tier is None:
        return ""
    multiplier, birthday_points = tier.multiplier, tier.birthday_points
    exclusive, perks = tier.exclusive_promotions, tier.perks
    if not (multiplier != 1 or birthday_points or exclusive or perks):
        return ""
    items = []
    if multiplier != 1:
        items.append(f"<li>{_times(multiplier)}</li>")
    if birthday_points:
        birthday = ngettext(
            "%(points)s point on your birthday", "%(points)s points on your birthday",
            birthday_points,
        ) % {"points": shown(birthday_points)}  # fmt: skip
        items.append(f"<li>{birthday}</li>")
    if exclusive:
        items.append("<li>" + gettext("Members-only offers") + "</li>")
    if perks:
        items.append(f"<li>{linebreaksbr(perks, autoescape=True)}</li>")
    return (
        '    <div class="small" data-testid="tier-perks">\n'
        '      <p class="mb-1 fw-semibold">' + gettext("What your tier gives you") + "</p>\n"
        '      <ul class="mb-0 ps-3">\n        ' + "\n        ".join(items) + "\n      </ul>\n"
        "    </div>\n"
    )


MEMBERSHIP = (
    '\n<section class="card shadow-sm" id="membership" aria-labelledby="membership-title" '
    'data-testid="membership-panel">\n'
    '  <div class="card-body">\n'
    '    <h2 class="h6 text-body-secondary" id="membership-title">{title}</h2>\n'
    "    {body}\n"
    "  </div>\n"
    "</section>"
)
PLAN = (
    '\n        <li class="border-bottom py-2" data-testid="plan">\n'
    '          <div class="d-flex justify-content-between gap-2">'
    '<span class="fw-semibold">{name}</span>\n'
    "            <span>{price} {currency} / {period}</span></div>\n"
    '          <ul class="small mb-1 ps-3">\n            {items}\n          </ul>\n'
    "        </li>\n      "
)


def membership_html(page, merchant) -> SafeString:
    """Her membership and when it renews or ends, or the plans she could join."""
    membership = page.membership
    if membership:
        plan = membership.plan
        if membership.state == Membership.State.CANCELLED:
            when = gettext("Your benefits last until %(date)s.") % {
                "date": _date(membership.current_period_end)
            }
        elif membership.state == Membership.State.PAST_DUE:
            when = gettext(
                "Your last payment didn't go through. Pay in the shop to keep your benefits."
            )
        else:
            when = gettext("Renews on %(date)s.") % {"date": _date(membership.current_period_end)}
        body = (
            f'<p class="mb-1"><span class="fw-semibold">{shown(plan.name)}</span> · '
            f"{shown(membership.get_state_display())}</p>\n"
            f'      <p class="small mb-2">{when}</p>\n'
        )
        if plan.perks:
            body += f'      <p class="small mb-0">{linebreaksbr(plan.perks, autoescape=True)}</p>\n'
    else:
        body = '<ul class="list-unstyled mb-0">' + "".join(_plan_html(p) for p in page.plans)
        body += "</ul>\n"
        if merchant.storefront_url:
            href = shown(merchant.storefront_url)
            body += (
                f'      <a class="btn btn-brand btn-sm mt-2" href="{href}" rel="noopener">'
                + gettext("Join in the shop")
                + "</a>\n"
            )
    return mark_safe(MEMBERSHIP.format(title=gettext("Membership"), body=body))


def _plan_html(plan) -> str:
    items = []
    if plan.trial_days:
        items.append(
            "<li>"
            + ngettext("%(days)s day free to try", "%(days)s days free to try", plan.trial_days)
            % {"days": shown(plan.trial_days)}
            + "</li>"
        )
    if plan.multiplier != 1:
        items.append(f"<li>{_times(plan.multiplier)}</li>")
    if plan.recurring_points:
        items.append(
            "<li>"
            + ngettext(
                "%(points)s point every period",
                "%(points)s points every period",
                plan.recurring_points,
            )
            % {"points": shown(plan.recurring_points)}
            + "</li>"
        )
    if plan.perks:
        items.append(f"<li>{linebreaksbr(plan.perks, autoescape=True)}</li>")
    return PLAN.format(
        name=shown(plan.name),
        price=shown(plan.price),
        currency=shown(plan.currency),
        period=shown(plan.get_period_display()),
        items="\n            ".join(items),
    )


REFERRALS = (
    '\n<section class="card shadow-sm" id="referrals" aria-labelledby="referrals-title" '
    'data-testid="referrals-panel">\n'
    '  <div class="card-body">\n'
    '    <h2 class="h6 text-body-secondary" id="referrals-title">{title}</h2>\n'
    '    <p class="small">{offer}</p>\n'
    '    <label class="form-label small" for="referral-link">{your_link}</label>\n'
    '    <div class="input-group input-group-sm mb-1">\n'
    '      <input class="form-control" id="referral-link" readonly value="{link}" dir="ltr" '
    'data-testid="referral-link">\n'
    '      <button class="btn btn-brand" type="button" data-share-url="{link}" '
    'data-share-title="{shop}"><i class="bi bi-share" aria-hidden="true"></i> {share}</button>\n'
    "    </div>\n"
    '    <p class="small text-success-emphasis" data-copied hidden role="status">{copied}</p>\n'
    "    {friends}\n"
    "  </div>\n"
    "</section>"
)


def referrals_html(page, merchant, link: str) -> SafeString:
    """Her invitation link, what it gives, and the friends she invited."""
    program = page.program
    points = shown(program.referrer_points)
    if program.friend_reward:
        offer = ngettext(
            "Your friends get %(reward)s. You get %(points)s point when they order.",
            "Your friends get %(reward)s. You get %(points)s points when they order.",
            program.referrer_points,
        ) % {"reward": shown(program.friend_reward.name), "points": points}
    else:
        offer = ngettext(
            "You get %(points)s point when a friend you invite orders.",
            "You get %(points)s points when a friend you invite orders.",
            program.referrer_points,
        ) % {"points": points}
    friends = ""
    if page.referrals:
        rewarded = page.referrals_rewarded
        count = ngettext("%(count)s friend rewarded", "%(count)s friends rewarded", rewarded) % {
            "count": shown(rewarded)
        }
        friends = (
            f'<h3 class="h6 mt-3">{count}</h3>\n'
            '    <ul class="list-unstyled small mb-0" data-testid="referral-list">\n      '
            f"{referral_lines(page.referrals)}\n    </ul>"
        )
    return mark_safe(
        REFERRALS.format(
            title=gettext("Invite friends"),
            offer=offer,
            your_link=gettext("Your link"),
            link=shown(link),
            shop=shown(merchant.name),
            share=gettext("Share"),
            copied=gettext("Link copied"),
            friends=friends,
        )
    )
