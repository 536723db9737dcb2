"""A fake Apollo places service (``apollo_places``) and a stand-in geocoder plugin."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel import hookimpl

sys.path.insert(0, str(Path(__file__).parent))

from fake_apollo_places import FakeApolloPlaces


@pytest.fixture
def apollo_places() -> Iterator[FakeApolloPlaces]:
    with FakeApolloPlaces() as fake:
        yield fake


class Geocoder:
    """Stands in for the general geocoder (the insights plugin's Nominatim): last."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    @hookimpl(trylast=True)
    async def resolve_location(self, lat, lon):
        self.asked.append((lat, lon))
        return None if abs(lat) < 1 else "Cambridge, MA"
