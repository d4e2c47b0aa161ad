"""What apps above loyalty/ do when it issues or uses a reward's code, without loyalty/
importing them (the pattern of customers.reactions).

campaigns/ keeps every code a customer can type at checkout in one table with one lookup;
it registers here so a reward's code joins that table in the transaction that issued it,
and a code used through loyalty's own endpoint is recorded as a use there too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from customers.models import Order
    from loyalty.models import Redemption

_code_issued: list[Callable[..., None]] = []
_code_used: list[Callable[..., None]] = []


def on_code_issued(reaction: Callable[..., None]) -> None:
    """`reaction(redemption=…)`: a reward's code was just created (inside a savepoint: a
    clash with another code raises IntegrityError and a new code is drawn)."""
    if reaction not in _code_issued:
        _code_issued.append(reaction)


def on_code_used(reaction: Callable[..., None]) -> None:
    """`reaction(redemption=…, order=…)`: loyalty's endpoint marked the code used."""
    if reaction not in _code_used:
        _code_used.append(reaction)


def code_issued(*, redemption: Redemption) -> None:
    for reaction in _code_issued:
        reaction(redemption=redemption)


def code_used(*, redemption: Redemption, order: Order | None) -> None:
    for reaction in _code_used:
        reaction(redemption=redemption, order=order)
