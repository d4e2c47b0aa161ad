from __future__ import annotations

import pytest

from tests.campaigns.smtp_sink import smtp_sink  # noqa: F401 (a fixture of every campaigns test)
from tests.merchants.factories import StaffMemberFactory


@pytest.fixture
def marketer(client, merchant):
    """A marketer of the shop, signed in on the test client."""
    member = StaffMemberFactory(merchant=merchant, role="marketer")
    client.force_login(member.user)
    return member
