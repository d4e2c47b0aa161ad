"""The ticket's states and every move between them, in one table (docs/business-rules.md §8).

new → open ⇄ pending → resolved → closed; resolved goes back to open when the customer
replies (a reopen); merged and spam are side states. A move not in the table is refused.
Who may make a move is part of the table: staff, the customer (by writing), or the system
(the close job, a merge).
"""

from __future__ import annotations

from enum import StrEnum

from feedback.models import State


class By(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"
    SYSTEM = "system"


S = State
STAFF, CUSTOMER, SYSTEM = By.STAFF, By.CUSTOMER, By.SYSTEM

TRANSITIONS: dict[tuple[State, State], frozenset[By]] = {
    (S.NEW, S.OPEN): frozenset({STAFF, SYSTEM}),
    (S.NEW, S.PENDING): frozenset({STAFF}),
    (S.NEW, S.RESOLVED): frozenset({STAFF}),
    (S.NEW, S.MERGED): frozenset({STAFF, SYSTEM}),
    (S.NEW, S.SPAM): frozenset({STAFF}),
    (S.OPEN, S.PENDING): frozenset({STAFF}),
    (S.OPEN, S.RESOLVED): frozenset({STAFF}),
    (S.OPEN, S.MERGED): frozenset({STAFF, SYSTEM}),
    (S.OPEN, S.SPAM): frozenset({STAFF}),
    (S.PENDING, S.OPEN): frozenset({STAFF, CUSTOMER}),
    (S.PENDING, S.RESOLVED): frozenset({STAFF}),
    (S.PENDING, S.MERGED): frozenset({STAFF, SYSTEM}),
    (S.PENDING, S.SPAM): frozenset({STAFF}),
    (S.RESOLVED, S.OPEN): frozenset({STAFF, CUSTOMER}),
    (S.RESOLVED, S.CLOSED): frozenset({STAFF, SYSTEM}),
    # A spam mark taken back: the ticket is worked again.
    (S.SPAM, S.OPEN): frozenset({STAFF}),
}

# States in which the ticket waits on the merchant's staff: the SLA clock runs.
ACTIVE = frozenset({S.NEW, S.OPEN})
# States the inbox shows as still to do.
UNFINISHED = frozenset({S.NEW, S.OPEN, S.PENDING})


def transition_allowed(current: str, to: str, by: By) -> bool:
    return by in TRANSITIONS.get((State(current), State(to)), frozenset())


def next_states(current: str, by: By = STAFF) -> list[State]:
    """Where `by` may move a ticket in `current`, in the table's order."""
    return [to for (frm, to), who in TRANSITIONS.items() if frm == current and by in who]
