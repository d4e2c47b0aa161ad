"""The ledger under any sequence of what happens to a customer's points: earn, replay a
delivered order, redeem, refund, expire, confirm pending, adjust, with time passing."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from customers.services import CustomerData, RefundData, order_ingest, refund_record
from loyalty.models import PointsAccount, PointsEntry, Program
from loyalty.services.expiry import pending_confirm, points_expire
from loyalty.services.ledger import points_adjust
from loyalty.services.rewards import reward_redeem
from tests.customers.factories import order_data
from tests.loyalty.factories import ProgramFactory, RewardFactory
from tests.loyalty.helpers import ledger_matches
from tests.merchants.factories import UserFactory

START = datetime(2026, 1, 30, 12, 0, tzinfo=UTC)


class LedgerMachine(RuleBasedStateMachine):
    @initialize(
        policy=st.sampled_from(list(Program.RefundPolicy)),
        pending_days=st.sampled_from([0, 3, 30]),
        expiry_months=st.integers(1, 3),
    )
    def start(self, policy, pending_days, expiry_months):
        self.clock = START
        self.program = ProgramFactory(refund_policy=policy, pending_days=pending_days,
                                      expiry_mode=Program.Expiry.AFTER_EARNING,
                                      expiry_months=expiry_months)  # fmt: skip
        self.merchant = self.program.merchant
        self.person = CustomerData(external_id="ada")
        self.orders: list[tuple[str, Decimal]] = []
        self.refunded: dict[str, Decimal] = {}
        self.staff = UserFactory()
        self.steps = 0

    def _at(self):
        return time_machine.travel(self.clock, tick=False)

    @property
    def account(self) -> PointsAccount | None:
        return PointsAccount.objects.filter(merchant=self.merchant).first()

    @rule(total=st.integers(1, 400))
    def earn(self, total):
        self.steps += 1
        name = f"o-{self.steps}"
        with self._at():
            order_ingest(merchant=self.merchant, data=order_data(
                name, customer=self.person, total=f"{total}.00", placed_at=self.clock))  # fmt: skip
        self.orders.append((name, Decimal(total)))

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def replay(self, data):
        name, total = data.draw(st.sampled_from(self.orders))
        with self._at():
            result = order_ingest(merchant=self.merchant, data=order_data(
                name, customer=self.person, total=f"{total}", placed_at=self.clock))  # fmt: skip
        assert not result.created

    @precondition(lambda self: self.account is not None)
    @rule(cost=st.integers(1, 600))
    def redeem(self, cost):
        self.steps += 1
        reward = RewardFactory(merchant=self.merchant, points_cost=cost)
        with self._at(), contextlib.suppress(ValidationError):
            reward_redeem(account=self.account, reward=reward, key=f"r-{self.steps}")

    @precondition(lambda self: self.account is not None)
    @rule(points=st.integers(-300, 300).filter(bool))
    def adjust(self, points):
        self.steps += 1
        with self._at(), contextlib.suppress(ValidationError):
            points_adjust(
                account=self.account, points=points, reason="test", by=self.staff,
                key=f"a-{self.steps}",
            )  # fmt: skip

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), share=st.sampled_from(["0.25", "0.5", "1"]))
    def refund(self, data, share):
        self.steps += 1
        name, total = data.draw(st.sampled_from(self.orders))
        left = total - self.refunded.get(name, Decimal(0))
        amount = min(left, (total * Decimal(share)).quantize(Decimal("0.01")))
        if amount <= 0:
            return
        with self._at():
            refund_record(merchant=self.merchant, data=RefundData(
                source="api", external_id=f"rf-{self.steps}", order_external_id=name,
                amount=amount, refunded_at=self.clock))  # fmt: skip
        self.refunded[name] = self.refunded.get(name, Decimal(0)) + amount

    @rule(days=st.integers(1, 70))
    def time_passes(self, days):
        self.clock += timedelta(days=days)
        with self._at():
            pending_confirm(merchant_id=self.merchant.pk)

    @rule()
    def expire(self):
        with self._at():
            points_expire(program=self.program)

    @invariant()
    def balances_equal_the_ledger(self):
        account = self.account
        if account is None:
            return
        assert ledger_matches(account)
        if self.program.refund_policy == Program.RefundPolicy.AVAILABLE_ONLY:
            assert account.available >= 0
        assert account.pending >= 0

    @invariant()
    def no_order_is_credited_twice_or_taken_back_beyond_what_it_earned(self):
        earns = PointsEntry.objects.filter(merchant=self.merchant, kind="earn", rule=None,
                                           order__isnull=False)  # fmt: skip
        assert not earns.values("order").annotate(n=Count("id")).filter(n__gt=1).exists()
        for earn in earns:
            taken = -(earn.reversals.aggregate(s=Sum("points"))["s"] or 0)
            assert 0 <= taken <= earn.points


LedgerMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.django_db
def test_the_ledger_holds_under_any_sequence():
    LedgerMachine.TestCase("runTest").runTest()
