"""The operator's interface: the reference's variables over plugins.toml, and
``imageapi faces status | retry-failed | rerun``."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from faces_support import drain, faces_app, faces_of, photo

from kernel.config import ConfigError
from kernel.manager import build_plugin_manager
from plugins.faces import Plugin

pytestmark = pytest.mark.db


def settings(h):
    plugin = h.kernel.plugin("faces")
    assert isinstance(plugin, Plugin)
    return plugin.settings


def test_variables_win_over_plugins_toml(tmp_path, library):
    toml = "[plugins.faces]\ndetect_concurrency = 2\nbacklog_max_per_tick = 10\n"
    env = {
        "APOLLO_API_BASE_URL": "http://127.0.0.1:1",
        "APOLLO_FACE_API_BASE_URL": "http://127.0.0.1:2",
        "FACE_DETECT_CONCURRENCY": "3",
        "FACE_DETECT_TIMEOUT_SEC": "12.5",
        "FACE_AUTOBIND_MIN_COS": "0.55",
        "FACE_HASH_BACKFILL_MAX_PER_TICK": "100",
    }
    with faces_app(tmp_path, None, plugins_toml=toml, env=env) as h:
        s = settings(h)
        assert s.api_base_url == "http://127.0.0.1:2"  # the face URL before the general one
        assert (s.detect_concurrency, s.detect_timeout_sec, s.autobind_min_cos) == (3, 12.5, 0.55)
        assert s.backlog_max_per_tick == 10 and s.hash_backfill_max_per_tick == 100


@pytest.mark.parametrize(
    ("env", "toml", "message"),
    [
        ({"FACE_DETECT_CONCURRENCY": "many"}, "", "FACE_DETECT_CONCURRENCY"),
        ({"FACE_AUTOBIND_MIN_COS": "2"}, "", "autobind_min_cos"),
        ({}, "[plugins.faces]\nno_such_key = 1\n", "no_such_key"),
    ],
)
def test_bad_settings_stop_start_up_naming_them(tmp_path, library, env, toml, message):
    with (
        pytest.raises(ConfigError, match=message),
        faces_app(tmp_path, None, env=env, plugins_toml=toml),
    ):
        pass


def imageapi(h, *args: str) -> str:
    root = click.Group("imageapi")
    build_plugin_manager(h.kernel.config, only=["faces"]).declarations.cli_commands(root)
    result = CliRunner().invoke(root, list(args), env=dict(h.kernel.config.env))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_status_retry_failed_and_rerun(tmp_path, library, apollo):
    photo(library / "a.jpg", (230, 40, 40))
    photo(library / "sub" / "b.jpg", (40, 40, 230))
    photo(library / "sub" / "dark.jpg", (5, 5, 5))
    apollo.mode = "400"
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        out = imageapi(h, "faces", "status")
        assert "failed:   3" in out and "pending:    0" in out
        assert "3 failed photos back in the backlog" in imageapi(h, "faces", "retry-failed")
        apollo.mode = "ok"
        assert "pending:    3" in imageapi(h, "faces", "status")
        drain(h)
        out = imageapi(h, "faces", "status")
        assert "faces:    2 photos, 2 faces" in out and "no faces: 1" in out
        h.post("/image/faces", json={"path": "sub/b.jpg", "bbox": [0, 0, 0.3, 0.3]})
        calls = len(apollo.detect_calls())
        assert "2 photos detected again, 0 failed" in imageapi(h, "faces", "rerun", "sub")
        assert len(apollo.detect_calls()) == calls + 2
        assert sorted(f["source"] for f in faces_of(h, "sub/b.jpg")["faces"]) == ["auto", "manual"]
