"""The deployment checks read files only: they need no database, Redis or worker."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """Replaces the suite's per-test cleanup, which would start the embedded services."""
