"""Fixtures of the faces tests: a fake Apollo on 127.0.0.1 (``fake_apollo``); helpers
live in ``faces_support``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_apollo import FakeApollo


@pytest.fixture
def apollo() -> Iterator[FakeApollo]:
    fake = FakeApollo().start()
    yield fake
    fake.stop()
