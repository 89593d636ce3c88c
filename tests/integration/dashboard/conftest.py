"""The dashboard room's shared fixture: a headless Chromium on the module's rig."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.dashboard_rig import Rig, browser


@pytest.fixture(scope="module")
def chromium(rig: Rig) -> Iterator[Any]:
    with browser() as found:
        yield found
