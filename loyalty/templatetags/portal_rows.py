"""The rewards page's lists, written in Python.

The rewards page is the page customers open most (DESIGN 7: 300 pages a second). In the
template language each line of its lists (the rewards on offer, the points history, the
codes, the friends invited) cost a dozen variable lookups, filters and translations, the
largest part of the page's own time. Here each translation and label is looked up once per
list, and each line is one format call. The markup is the templates' (their texts, the
same msgids, the active language's number and date formats), as customer_rows does for the
customer list."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils import dateformat, numberformat
from django.utils.formats import get_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import gettext, ngettext

from loyalty.models import PointsEntry, Redemption, Referral, Reward

register = template.Library()
escape = conditional_escape


def _number_format():
    """The active language's integer format, read once (what localize() would read for
    each number)."""
    decimal, grouping = get_format("DECIMAL_SEPARATOR"), get_format("NUMBER_GROUPING")
    thousands = get_format("THOUSAND_SEPARATOR")

    def number(value) -> str:
        return escape(numberformat.format(value, decimal, None, grouping, thousands,
                                          use_l10n=True))  # fmt: skip

    return number


def _labels(choices) -> dict[str, str]:
    return {value: escape(str(label)) for value, label in choices}


HISTORY_LINE = (
    '\n      <li class="d-flex justify-content-between gap-2 py-1 border-bottom" '
    'data-testid="history-entry">\n'
    '        <span><span class="d-block">{kind}{about}</span>\n'
    '          <span class="text-body-secondary">{date}{on_its_way}</span></span>\n'
    '        <span class="fw-semibold text-nowrap {earned}" dir="ltr">{sign}{points}</span>\n'
    "      </li>\n    "
)


@register.simple_tag
def history_lines(history, now) -> SafeString:
    """The points history's lines: what each entry was, when, and its points."""
    if not history:
        return format_html(
            '\n      <li class="text-body-secondary">{}</li>\n    ',
            gettext("No points yet: your next order earns some."),
        )
    kinds, number = _labels(PointsEntry.Kind.choices), _number_format()
    short_date = get_format("SHORT_DATE_FORMAT")
    on_its_way = " · " + escape(gettext("on its way"))
    order = gettext("order %(number)s")
    lines = []
    for entry in history:
        if entry.order_number:
            about = " · " + order % {"number": escape(entry.order_number)}
        elif entry.note:
            about = " · " + escape(entry.note)
        else:
            about = ""
        earned = entry.points > 0
        lines.append(
            HISTORY_LINE.format(
                kind=kinds.get(entry.kind, escape(entry.kind)),
                about=about,
                date=escape(dateformat.format(template_localtime(entry.created_at), short_date)),
                on_its_way=on_its_way if entry.available_at > now else "",
                earned="text-success-emphasis" if earned else "",
                sign="+" if earned else "",
                points=number(entry.points),
            )
        )
    return mark_safe("".join(lines))


OFFER_LINE = (
    '\n      <li class="border-bottom py-2 d-flex flex-wrap justify-content-between '
    'align-items-center gap-2" data-testid="reward">\n'
    "        <div>\n"
    '          <div class="fw-semibold">{name}</div>\n'
    '          <div class="small text-body-secondary">{cost}{description}</div>\n'
    "        </div>\n"
    "        {action}\n"
    "      </li>"
)
REDEEM_FORM = (
    '<form method="post" action="{url}" class="d-flex gap-2 align-items-center"\n'
    '              hx-post="{url}" hx-target="#rewards" hx-swap="outerHTML" '
    'hx-disabled-elt="find button">\n'
    '          {csrf}<input type="hidden" name="state" value="{state}">\n'
    "          {units}\n"
    '          <button class="btn btn-brand btn-sm" type="submit">{redeem}</button>\n'
    "        </form>\n"
    "        "
)
UNITS = (
    '<label class="visually-hidden" for="units-{pk}">{label}</label>\n'
    '          <input class="form-control form-control-sm regulars-units" type="number" '
    'min="1" name="units" id="units-{pk}" value="1" required {max}>'
)
BADGE = '<span class="badge text-bg-light border">{}</span>\n        '


@register.simple_tag(takes_context=True)
def offer_lines(context, offers, merchant, state: int) -> SafeString:
    """The rewards on offer: each one's cost, and a redeem form or why not yet."""
    if not offers:
        return format_html(
            '\n      <li class="text-body-secondary">{}</li>\n    ',
            gettext("No rewards are offered right now."),
        )
    number = _number_format()
    currency = escape(merchant.base_currency)
    csrf = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', context.get("csrf_token")
    )
    redeem = escape(gettext("Redeem"))
    amount_in = gettext("Amount in %(currency)s") % {"currency": currency}
    locked = format_html(
        '<span class="badge text-bg-light border"><i class="bi bi-lock" aria-hidden="true">'
        "</i> {}</span>\n        ",
        gettext("For other tiers or members"),
    )
    out_of_stock = format_html(BADGE, gettext("Out of stock"))
    already = format_html(BADGE, gettext("Already redeemed"))
    slug = merchant.slug
    lines = []
    for offer in offers:
        reward = offer.reward
        pk = f"{reward.pk:d}"
        cost = reward.points_cost
        for_amount = reward.kind == Reward.Kind.POINTS_FOR_AMOUNT
        if for_amount:
            cost_text = ngettext(
                "%(points)s point for each 1 %(currency)s",
                "%(points)s points for each 1 %(currency)s",
                cost,
            ) % {"points": number(cost), "currency": currency}
        else:
            cost_text = ngettext("%(points)s point", "%(points)s points", cost) % {
                "points": number(cost)
            }
        if offer.affordable:
            units = ""
            if for_amount:
                units = UNITS.format(
                    pk=pk,
                    label=amount_in,
                    max=f'max="{reward.max_units:d}"' if reward.max_units else "",
                )
            action = REDEEM_FORM.format(
                url=escape(reverse("loyalty-portal:redeem", args=[slug, pk])),
                csrf=csrf,
                state=f"{state:d}",
                units=units,
                redeem=redeem,
            )
        elif not offer.open_to_customer:
            action = locked
        elif reward.stock == 0:
            action = out_of_stock
        elif offer.left_for_customer == 0:
            action = already
        else:
            needed = ngettext(
                "%(points)s more point needed", "%(points)s more points needed", offer.short
            )
            action = f'<span class="small text-body-secondary">{needed}</span>' % {
                "points": number(offer.short)
            }
        lines.append(
            OFFER_LINE.format(
                name=escape(reward.name),
                cost=cost_text,
                description=" · " + escape(reward.description) if reward.description else "",
                action=action,
            )
        )
    return mark_safe("\n    ".join(lines) + "\n    ")


CODE_LINE = (
    '<li class="d-flex justify-content-between gap-2 py-1">\n'
    '        <span><span class="regulars-code fs-6">{code}</span> · {reward}</span>\n'
    '        <span class="{tone}">{state}</span>\n'
    "      </li>"
)


@register.simple_tag
def code_lines(codes) -> SafeString:
    """The customer's reward codes and whether each is still ready to use."""
    states = _labels(Redemption.State.choices)
    return mark_safe(
        "".join(
            CODE_LINE.format(
                code=escape(code.code),
                reward=escape(code.reward_name),
                tone="text-success-emphasis"
                if code.state == Redemption.State.ISSUED
                else "text-body-secondary",
                state=states.get(code.state, escape(code.state)),
            )
            for code in codes
        )
    )


REFERRAL_LINE = (
    '<li class="d-flex justify-content-between gap-2 py-1">\n'
    '        <span>{name}</span><span class="text-body-secondary">{state}</span>\n'
    "      </li>"
)


@register.simple_tag
def referral_lines(referrals) -> SafeString:
    """The friends the customer invited, by first name, and where each referral stands."""
    states, a_friend = _labels(Referral.State.choices), escape(gettext("A friend"))
    return mark_safe(
        "".join(
            REFERRAL_LINE.format(
                name=escape(referral.friend_first_name) if referral.friend_first_name else a_friend,
                state=states.get(referral.state, escape(referral.state)),
            )
            for referral in referrals
        )
    )
