"""The dashboard room's shared fixture: a headless Chromium for a module's tests (each asks
for its rig first, so the rig is up before the browser and outlives it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.dashboard_rig import browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as found:
        yield found
