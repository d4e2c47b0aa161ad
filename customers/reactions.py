"""What other apps do when customers/ stores something, without customers/ importing them.

Apps above customers/ (loyalty first) register a reaction in their AppConfig.ready(); the
services here call every reaction inside the transaction that stored the thing, so the
order and the points it earns commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from customers.models import Activity, Customer, Order, OrderLine, Refund

_orders_stored: list[Callable[..., None]] = []
_refund_recorded: list[Callable[..., None]] = []
_order_cancelled: list[Callable[..., None]] = []
_event_recorded: list[Callable[..., None]] = []


def on_orders_stored(reaction: Callable[..., None]) -> None:
    """`reaction(orders=[…], lines=…, customers=…, new_customers=…, timeline=…)`: new
    orders, one or a whole batch, already saved; `lines` (every line of them) and
    `customers` (by id, their stats current) when the caller holds them, else None;
    `new_customers`, the ids of the customers created in this very transaction (nothing
    can refer to them yet), when the caller knows them; `timeline`, when not None, a list
    the reaction appends its timeline entries to (unsaved) for the caller to insert with
    its own, in one statement."""
    if reaction not in _orders_stored:
        _orders_stored.append(reaction)


def on_refund_recorded(reaction: Callable[..., None]) -> None:
    """`reaction(refund=…)`: a new refund; its order's refunded amount already includes it."""
    if reaction not in _refund_recorded:
        _refund_recorded.append(reaction)


def on_order_cancelled(reaction: Callable[..., None]) -> None:
    if reaction not in _order_cancelled:
        _order_cancelled.append(reaction)


def on_event_recorded(reaction: Callable[..., None]) -> None:
    """`reaction(activity=…)`: a custom event (review, follow, newsletter, any key)."""
    if reaction not in _event_recorded:
        _event_recorded.append(reaction)


def orders_stored(
    *,
    orders: Sequence[Order],
    lines: Sequence[OrderLine] | None = None,
    customers: dict[int, Customer] | None = None,
    new_customers: frozenset[int] = frozenset(),
    timeline: list[Activity] | None = None,
) -> None:
    if orders:
        for reaction in _orders_stored:
            reaction(orders=orders, lines=lines, customers=customers,
                     new_customers=new_customers, timeline=timeline)  # fmt: skip


def refund_recorded(*, refund: Refund) -> None:
    for reaction in _refund_recorded:
        reaction(refund=refund)


def order_cancelled(*, order: Order) -> None:
    for reaction in _order_cancelled:
        reaction(order=order)


def event_recorded(*, activity: Activity) -> None:
    for reaction in _event_recorded:
        reaction(activity=activity)
