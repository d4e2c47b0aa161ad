"""Arabic as Regulars writes it: Django's dates, and numbers with Latin digits grouped by
thousands, with CLDR's separators for Arabic in Latin digits (1,320.50). Django's own
Arabic formats don't group, so 24394 would read as one block."""

from __future__ import annotations

from django.conf.locale.ar.formats import *  # noqa: F403

DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
