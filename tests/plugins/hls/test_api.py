"""The plugin as a class: routes reach their instance whatever name it is registered
under, the JSON answers keep their fields, and the OpenAPI document describes them."""

from __future__ import annotations

import shutil

import pytest

from kernel.testing import harness
from plugins.hls import Plugin

pytestmark = pytest.mark.db

ON_DEMAND = "[plugins.hls]\npregenerate = false\n"
JOB_FIELDS = [
    "path",
    "library",
    "status",
    "mode",
    "paused",
    "progress",
    "error",
    "attempts",
    "playlist_url",
]


def test_the_plugin_class_works_under_another_name(tmp_path, library, clips, player):
    """Settings, folder and scheduler belong to the instance: registered as "renamed" it
    reads ``[plugins.renamed]`` (no pre-generation here, where the default would queue
    the video on scan) and serves its routes."""
    shutil.copy(clips["one_second.mp4"], library / "a.mp4")
    toml = "[plugins.renamed]\npregenerate = false\n"
    env = {"VIDEO_PATH": str(tmp_path / "renditions")}
    with harness(tmp_path, extra_plugins={"renamed": Plugin}, plugins_toml=toml, env=env) as h:
        assert h.kernel.plugin("hls") is None
        plugin = h.kernel.plugin("renamed")
        assert isinstance(plugin, Plugin) and plugin.root == tmp_path / "renditions"
        h.scan()
        none = h.get("/video/status", params={"path": "a.mp4"})
        assert none.status_code == 200 and none.json()["status"] == "none"
        assert h.post("/video/generate", json={"path": "a.mp4"}).status_code == 202
        assert player.wait(h, "a.mp4")["status"] == "done"
        playlist = h.get("/video/stream", params={"path": "a.mp4"})
        assert playlist.status_code == 200
        assert player.play(h, playlist.text).seconds == pytest.approx(1.0, abs=0.2)
        assert any((tmp_path / "renditions").rglob("*.m4s"))


def test_status_and_generate_answer_the_same_fields_as_before(tmp_path, library, clips, player):
    shutil.copy(clips["one_second.mp4"], library / "a.mp4")
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        h.scan()
        none = h.get("/video/status", params={"path": "a.mp4"}).json()
        assert none == {"path": "a.mp4", "library": 1, "status": "none"}
        queued = h.post("/video/generate", json={"path": "a.mp4"}).json()
        assert list(queued) == [*JOB_FIELDS, "queued_now"] and queued["queued_now"] is True
        done = player.wait(h, "a.mp4")
        assert list(done) == JOB_FIELDS
        assert done["mode"] == "remux" and done["error"] is None and done["paused"] is False
        assert done["progress"]["fraction"] == 1.0
        assert list(done["progress"]) == ["processed_seconds", "duration_seconds", "fraction"]
        assert done["playlist_url"].startswith("/video/stream?path=a.mp4&library=1&token=")


def test_the_openapi_document_describes_the_routes(tmp_path):
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND) as h:
        document = h.client.get("/schema/openapi.json").json()
    paths = document["paths"]
    status = paths["/video/status"]["get"]
    assert sorted(p["name"] for p in status["parameters"]) == ["library", "path"]
    for path in ("/video/generate", "/video/stream", "/video/segment/{file_id}/{key}/{name}"):
        for operation in paths[path].values():
            names = [p["name"] for p in operation.get("parameters", [])]
            assert "plugin" not in names, (path, names)  # the Router's dependency
    schemas = document["components"]["schemas"]
    ref = status["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    state = schemas[ref.rsplit("/", 1)[1]]
    assert list(state["properties"]) == JOB_FIELDS and state["required"] == [
        "library",
        "path",
        "status",
    ]
    generate = paths["/video/generate"]["post"]["responses"]
    for code in ("202", "200"):  # queued now, or already there
        ref = generate[code]["content"]["application/json"]["schema"]["$ref"]
        assert "queued_now" in schemas[ref.rsplit("/", 1)[1]]["properties"]


def test_video_path_defaults_to_the_data_directory(tmp_path):
    """VIDEO_PATH unset (or empty): ``hls`` in the data directory, created by the kernel
    and kept out of its scans."""
    with harness(tmp_path, ["hls"], plugins_toml=ON_DEMAND, env={"VIDEO_PATH": ""}) as h:
        plugin = h.kernel.plugin("hls")
        assert isinstance(plugin, Plugin) and plugin.root == tmp_path / "data" / "hls"
        assert plugin.root.is_dir() and plugin.root in h.kernel.storage_folders
