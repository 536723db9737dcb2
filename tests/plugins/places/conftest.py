"""A fake Apollo places service (``apollo_places``) on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_apollo_places import FakeApolloPlaces


@pytest.fixture
def apollo_places() -> Iterator[FakeApolloPlaces]:
    with FakeApolloPlaces() as fake:
        yield fake
