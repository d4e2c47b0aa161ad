"""The customer list's rows, written in Python.

The list is the staff page opened most, fifty rows a page, at a million customers: in the
template language each row cost a dozen variable lookups, filters and translations, and
the rows were most of the page's time (BENCHMARKS.md). Here each translation and label is
looked up once per page, and each row is one format call. The markup is the template's."""

from __future__ import annotations

from django import template
from django.utils import dateformat, numberformat
from django.utils.formats import get_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import gettext

from customers.models import Segment

register = template.Library()

ROW = (
    '<tr>\n      <td><a href="{url}{pk}/">{name}</a>\n        <div class="small '
    'text-body-secondary">{email}{external}</div></td>\n'
    '      <td class="text-end">{orders}</td>\n'
    '      <td class="text-end text-nowrap">{spent} {currency}</td>\n'
    '      <td class="text-end text-nowrap">{average} {currency}</td>\n'
    '      <td class="text-nowrap small">{last_order}</td>\n'
    '      <td class="small">{segment}</td>\n'
    '      <td class="small">{persona}</td>\n'
    "      <td>{consent}</td>\n    </tr>"
)


@register.simple_tag
def customer_rows(customers, list_url: str, currency: str) -> SafeString:
    consent = {
        True: format_html(
            '<i class="bi bi-envelope-check text-success" aria-hidden="true"></i>'
            '<span class="visually-hidden">{}</span>',
            gettext("Given"),
        ),
        False: format_html(
            '<span class="text-body-secondary" aria-hidden="true">—</span>'
            '<span class="visually-hidden">{}</span>',
            gettext("Not given"),
        ),
    }
    segments = {value: conditional_escape(str(label)) for value, label in Segment.choices}
    # The active language's number and date formats, read once (what localize() and the
    # date filter would read for every cell).
    decimal, grouping = get_format("DECIMAL_SEPARATOR"), get_format("NUMBER_GROUPING")
    thousands, short_date = get_format("THOUSAND_SEPARATOR"), get_format("SHORT_DATE_FORMAT")

    def number(value) -> str:
        return escape(numberformat.format(value, decimal, None, grouping, thousands,
                                          use_l10n=True))  # fmt: skip

    escape = conditional_escape
    url, currency = escape(list_url), escape(currency)
    rows = []
    for customer in customers:
        last_order = customer.last_order_at
        persona = customer.persona.name if customer.persona_id else ""
        rows.append(
            ROW.format(
                url=url,
                pk=int(customer.pk),
                name=escape(customer.full_name or customer.email or customer.external_id),
                email=escape(customer.email),
                external=escape(f" · {customer.external_id}") if customer.external_id else "",
                orders=number(customer.orders_count),
                spent=number(customer.total_spent),
                average=number(customer.average_order_value),
                currency=currency,
                last_order=escape(dateformat.format(template_localtime(last_order), short_date))
                if last_order
                else "—",
                segment=segments.get(customer.segment, "—") if customer.segment else "—",
                persona=escape(persona) if persona else "—",
                consent=consent[bool(customer.marketing_consent)],
            )
        )
    return mark_safe("\n".join(rows))
