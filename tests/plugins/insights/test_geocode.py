"""Nominatim behind the ``resolve_location`` hook and the ``reverse_geocode`` tool:
the jsonv2 protocol, a real User-Agent, one request a second, a cache by rounded
coordinates, and silence (None) when the service fails."""

from __future__ import annotations

import time

import pytest
from conftest import env_for

from kernel.testing import harness
from kernel.types import ToolContext

pytestmark = pytest.mark.db
CAMBRIDGE = (42.3741, -71.1169)


def test_resolve_location_asks_nominatim_once_per_place(tmp_path, ollama, nominatim):
    with harness(tmp_path, ["insights"], env=env_for(ollama, nominatim=nominatim)) as h:
        hooks = h.kernel.hooks
        assert h.run(hooks.resolve_location, *CAMBRIDGE) == (
            "Cambridge, Massachusetts, United States"
        )
        (asked,) = nominatim.requests
        assert asked.path == "/reverse"
        assert asked.query["format"] == ["jsonv2"]
        assert asked.query["lat"] == ["42.374"] and asked.query["lon"] == ["-71.117"]
        agent = asked.headers["User-Agent"]
        assert agent.startswith("imageapi/") and "python-httpx" not in agent
        # Twenty metres away: the same rounded place, from the cache.
        assert h.run(hooks.resolve_location, 42.3742, -71.1168) is not None
        assert len(nominatim.requests) == 1
        # The ocean is "no place", remembered too.
        started = time.monotonic()
        assert h.run(hooks.resolve_location, 0.0, -30.0) is None
        assert h.run(hooks.resolve_location, 0.0001, -30.0) is None
        assert len(nominatim.requests) == 2
        assert time.monotonic() - started >= 0.9  # the second request waited its turn


def test_a_failing_geocoder_answers_none_and_is_asked_again_later(tmp_path, ollama, nominatim):
    with harness(tmp_path, ["insights"], env=env_for(ollama, nominatim=nominatim)) as h:
        nominatim.mode = "error"
        assert h.run(h.kernel.hooks.resolve_location, *CAMBRIDGE) is None
        nominatim.mode = "ok"
        assert h.run(h.kernel.hooks.resolve_location, *CAMBRIDGE) is not None
        assert len(nominatim.requests) == 2


def test_a_stalled_geocoder_gives_up_after_five_seconds(tmp_path, ollama, nominatim):
    with harness(tmp_path, ["insights"], env=env_for(ollama, nominatim=nominatim)) as h:
        nominatim.mode = "stall"
        assert h.run(h.kernel.hooks.resolve_location, *CAMBRIDGE) is None


def test_the_reverse_geocode_tool(tmp_path, ollama, nominatim):
    with harness(tmp_path, ["insights"], env=env_for(ollama, nominatim=nominatim)) as h:
        tool = h.kernel.tools["reverse_geocode"]
        ctx = ToolContext(h.kernel, None)
        found = h.run(tool.invoke, {"latitude": 42.3741, "longitude": -71.1169}, ctx)
        assert found == {"location": "Cambridge, Massachusetts, United States"}
        ocean = h.run(tool.invoke, '{"latitude": 0, "longitude": -30}', ctx)
        assert ocean["location"] is None
        schema = tool.json_schema()
        assert schema["required"] == ["latitude", "longitude"]
        assert schema["properties"]["latitude"]["maximum"] == 90


def test_unconfigured_sends_nothing(tmp_path, nominatim):
    with harness(tmp_path, ["insights"]) as h:
        assert h.run(h.kernel.hooks.resolve_location, *CAMBRIDGE) is None
        assert "reverse_geocode" not in h.kernel.tools
    with harness(tmp_path / "b", ["insights"], env={"NOMINATIM_URL": nominatim.url}) as h:
        assert h.run(h.kernel.hooks.resolve_location, *CAMBRIDGE) is not None  # opted in
