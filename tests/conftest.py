"""Shared test setup: every test starts from the same seed."""

from __future__ import annotations

import pytest

import chainrule as cr


@pytest.fixture(autouse=True)
def _seed() -> None:
    cr.manual_seed(0)
