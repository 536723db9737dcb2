"""The insights plugin's context assembled from other plugins through hooks only: EXIF's
date, camera and GPS (``file_extras``), tags, the thumbnailer's preview (``render``),
the tools of every enabled plugin — and faces' person names when that plugin is here."""

from __future__ import annotations

import base64
import io
import sys
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from kernel.manager import builtin_plugin_names
from kernel.testing import harness, make_jpeg

FAKES = Path(__file__).resolve().parents[1] / "plugins" / "insights"
pytestmark = [
    pytest.mark.db,
    pytest.mark.requires_plugins("insights", "exif", "tags", "thumbnails"),
]
MODEL = "llava:7b"


def test_context_comes_from_exif_tags_and_thumbnails(tmp_path: Path, library: Path) -> None:
    # The fakes live beside the plugin's tests (removed with the plugin): imported here,
    # so this module still collects without them.
    sys.path.insert(0, str(FAKES))
    from insights_fakes import INSIGHT, FakeNominatim, FakeOllama, Say

    make_jpeg(
        library / "2024" / "heic-like.jpg",
        size=(3000, 2000),
        taken=datetime(2024, 7, 14, 18, 30),
        make="Canon",
        model="Canon EOS R6",
        gps=(42.3741, -71.1169),
    )
    plugins = ["insights", "exif", "tags", "thumbnails"]
    if "faces" in builtin_plugin_names():
        plugins.append("faces")
    with FakeOllama() as ollama, FakeNominatim() as nominatim:
        env = {
            "OLLAMA_PRIMARY_URL": ollama.url,
            "OLLAMA_PRIMARY_MODEL": MODEL,
            "NOMINATIM_URL": nominatim.url,
        }
        with harness(tmp_path, plugins, env=env) as h:
            h.scan()
            h.run(h.kernel.hooks.drain_backlog, 100)  # EXIF read for every file
            tagged = h.post("/image/tags", json={"path": "2024/heic-like.jpg", "tag_name": "lake"})
            assert tagged.status_code in (200, 201), tagged.text
            ollama.script = [Say("", [("get_tags", {"path": "2024/heic-like.jpg"})]), Say(INSIGHT)]
            body = {"file_path": "2024/heic-like.jpg"}
            response = h.post("/insights/generate/agentic", json=body)
            assert response.status_code == 200, response.text
        first, second = (r.body for r in ollama.posted("/api/chat"))
        user = first["messages"][1]["content"]
        assert "Date taken: 2024-07-14T18:30:00" in user
        assert "Camera: Canon EOS R6" in user
        assert "Location: Cambridge, Massachusetts, United States" in user
        assert "Tags: lake" in user
        with Image.open(io.BytesIO(base64.b64decode(first["messages"][1]["images"][0]))) as pic:
            assert pic.size == (1024, 683)  # the thumbnailer's preview, scaled for the model
        offered = {t["function"]["name"] for t in first["tools"]}
        assert {"search_photos", "get_tags", "get_photo_metadata", "reverse_geocode"} <= offered
        tool_result = second["messages"][-1]
        assert tool_result["role"] == "tool" and "lake" in tool_result["content"]
