"""The places plugin against a fake Apollo: personal places ahead of the geocoder in
``resolve_location`` ("Home — near ..."), the ``get_personal_place_at`` tool, silence
when Apollo fails, and nothing at all without ``APOLLO_API_BASE_URL``."""

from __future__ import annotations

import logging

import pytest
from fake_apollo_places import Geocoder

from kernel.testing import harness
from kernel.types import ToolContext

HOME = (42.3741, -71.1169)
NEIGHBOURHOOD_ONLY = (42.3800, -71.1200)
ELSEWHERE = (48.8566, 2.3522)
OCEAN = (0.1, -30.0)


def app(tmp_path, apollo=None, **kwargs):
    env = {"APOLLO_API_BASE_URL": apollo.url + "/"} if apollo is not None else {}
    extra = {"geocoder": Geocoder()}
    return harness(tmp_path, ["places"], extra_plugins=extra, env=env, **kwargs)


def test_without_apollo_the_plugin_is_inert(tmp_path, apollo_places):
    with app(tmp_path) as h:
        assert h.run(h.kernel.hooks.resolve_location, *HOME) == "Cambridge, MA"
        assert "get_personal_place_at" not in h.kernel.tools
    assert apollo_places.requests == []


def test_a_personal_place_goes_first_with_the_geocoders_near(tmp_path, apollo_places):
    with app(tmp_path, apollo_places) as h:
        resolve = h.kernel.hooks.resolve_location
        assert h.run(resolve, *HOME) == "Home (My house in Cambridge) — near Cambridge, MA"
        path, query = apollo_places.requests[-1]
        assert path == "/api/places/contains"
        assert (float(query["lat"][0]), float(query["lon"][0])) == HOME
        assert h.run(resolve, *NEIGHBOURHOOD_ONLY) == "Neighbourhood — near Cambridge, MA"
        assert h.run(resolve, *ELSEWHERE) == "Cambridge, MA"  # no place: the geocoder alone
        apollo_places.places.append(
            {"name": "Boat", "lat": OCEAN[0], "lon": OCEAN[1], "radius_m": 30}
        )
        assert h.run(resolve, *OCEAN) == "Boat"  # the geocoder knows nothing there
        geocoder = h.kernel.plugin("geocoder")
        assert geocoder.asked.count(HOME) == 1  # asked once, by places, not again after


def test_the_tool_lists_containing_places_smallest_first(tmp_path, apollo_places):
    with app(tmp_path, apollo_places) as h:
        tool = h.kernel.tools["get_personal_place_at"]
        ctx = ToolContext(h.kernel, None)
        arguments = {"latitude": HOME[0], "longitude": HOME[1]}
        assert h.run(tool.invoke, arguments, ctx) == (
            "- Home [residence]: My house in Cambridge (radius 80 m)\n"
            "- Neighbourhood (radius 1500 m)"
        )
        nowhere = {"latitude": ELSEWHERE[0], "longitude": ELSEWHERE[1]}
        assert h.run(tool.invoke, nowhere, ctx) == "No personal place contains this position."
        apollo_places.mode = "error"
        assert "did not answer" in h.run(tool.invoke, arguments, ctx)
        schema = tool.json_schema()
        assert schema["required"] == ["latitude", "longitude"]


@pytest.mark.parametrize("mode", ["error", "garbage", "drop", "stall"])
def test_apollo_failing_falls_back_to_the_geocoder_with_a_warning(
    tmp_path, apollo_places, caplog, mode
):
    apollo_places.mode = mode
    toml = "[plugins.places]\ntimeout_seconds = 0.3\n"  # the stall ends sooner than 5 s
    with caplog.at_level(logging.WARNING), app(tmp_path, apollo_places, plugins_toml=toml) as h:
        assert h.run(h.kernel.hooks.resolve_location, *HOME) == "Cambridge, MA"
    warnings = [r for r in caplog.records if r.name.startswith("plugins.places")]
    assert warnings and all(r.levelno == logging.WARNING for r in warnings)
    assert "Apollo at" in warnings[0].getMessage()


def test_settings_are_validated(tmp_path):
    from kernel.config import ConfigError

    toml = "[plugins.places]\ntimeout = 3\n"
    with pytest.raises(ConfigError, match="places"), app(tmp_path, plugins_toml=toml):
        pass
