"""Persian as Regulars writes it: Django's dates, and numbers with Latin digits (as every
input, shop and API value is written) grouped by thousands (1,320.50)."""

from __future__ import annotations

from django.conf.locale.fa.formats import *  # noqa: F403

NUMBER_GROUPING = 3
