from __future__ import annotations

from tests.campaigns.smtp_sink import smtp_sink  # noqa: F401 (a fixture of every campaigns test)
