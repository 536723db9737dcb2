"""Insights with the places and sms plugins through hooks only: the photo's location
reads "Home (...) — near <Nominatim's answer>", its messages of ±1 day are in the
prompt, and both plugins' tools are offered to the model (and used in chat)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest

from kernel.testing import harness, make_jpeg

TESTS = Path(__file__).resolve().parents[1] / "plugins"
pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("insights", "places", "sms", "exif")]
MODEL = "llava:7b"


def test_places_and_messages_reach_the_model(tmp_path: Path, library: Path) -> None:
    # The fakes live beside each plugin's tests (removed with the plugin): imported here,
    # so this module still collects without them.
    for name in ("insights", "places", "sms"):
        sys.path.insert(0, str(TESTS / name))
    from fake_apollo_places import FakeApolloPlaces
    from fake_sms import FakeSms
    from insights_fakes import INSIGHT, FakeNominatim, FakeOllama, Say

    make_jpeg(
        library / "2024" / "lake.jpg",
        taken=datetime(2024, 7, 14, 18, 30),
        gps=(42.3741, -71.1169),
    )
    with (
        FakeOllama() as ollama,
        FakeNominatim() as nominatim,
        FakeApolloPlaces() as apollo,
        FakeSms(token="t0k") as sms,
    ):
        env = {
            "OLLAMA_PRIMARY_URL": ollama.url,
            "OLLAMA_PRIMARY_MODEL": MODEL,
            "NOMINATIM_URL": nominatim.url,
            "APOLLO_API_BASE_URL": apollo.url,
            "SMS_API_URL": sms.url,
            "SMS_API_TOKEN": "t0k",
        }
        with harness(tmp_path, ["insights", "places", "sms", "exif"], env=env) as h:
            h.scan()
            h.run(h.kernel.hooks.drain_backlog, 100)  # EXIF read
            ollama.script = [Say(INSIGHT)]
            body = {"file_path": "2024/lake.jpg"}
            made = h.post("/insights/generate/agentic", json=body)
            assert made.status_code == 200, made.text
            (first,) = (r.body for r in ollama.posted("/api/chat"))
            prompt = first["messages"][1]["content"]
            assert (
                "Location: Home (My house in Cambridge) — near Cambridge, Massachusetts,"
                " United States"
            ) in prompt
            assert "- 2024-07-13T20:15:00 Alice: Lake tomorrow? Bring towels" in prompt
            assert "Dentist" not in prompt and "Mum" not in prompt
            offered = {t["function"]["name"] for t in first["tools"]}
            assert {"get_personal_place_at", "search_messages", "reverse_geocode"} <= offered

            ollama.script = [
                Say("", [("search_messages", {"query": "swim"}),
                         ("get_personal_place_at", {"latitude": 42.3741,
                                                    "longitude": -71.1169})]),
                Say("You swam with Alice, near home."),
            ]  # fmt: skip
            turn = h.post("/insights/chat", json={**body, "user_message": "Who swam?"}).json()
            messages, places = turn["tools"]
            assert "Best swim of the summer" in messages["result"]
            assert places["result"].startswith("- Home [residence]: My house in Cambridge")
            assert turn["reply"] == "You swam with Alice, near home."
