"""``imageapi cleanup`` with tags, favourites and thumbnails on: the report counts each
missing file's user data, a copy with data of its own is never replaced, and a purge
takes the tags, favourites and thumbnails of the purged rows with them."""

from __future__ import annotations

import json
import shutil
import time

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from kernel.manager import build_plugin_manager, builtin_plugin_names
from kernel.tables import files
from kernel.testing import harness, make_jpeg

pytestmark = [
    pytest.mark.db,
    pytest.mark.requires_plugins("cleanup", "tags", "favorites", "thumbnails"),
]
PLUGINS = ["cleanup", "tags", "favorites", "thumbnails"]
TOML = "".join(
    f"[plugins.{name}]\nenabled = false\n" for name in builtin_plugin_names() if name not in PLUGINS
)


def cleanup(h, *args: str) -> dict:
    root = click.Group("imageapi")
    build_plugin_manager(h.kernel.config).declarations.cli_commands(root)
    env = dict(h.kernel.config.env)
    result = CliRunner().invoke(root, ["cleanup", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def count(h, sql: str) -> int:
    with h.kernel.db.read() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


def test_report_counts_user_data_conflicts_are_kept_and_purge_takes_everything(tmp_path, library):
    make_jpeg(library / "x.jpg", size=(300, 200))
    make_jpeg(library / "gone.jpg", size=(300, 200), color=(0, 0, 200))
    with harness(tmp_path, PLUGINS, plugins_toml=TOML) as h:
        h.scan()
        for path in ("x.jpg", "gone.jpg"):
            h.post("/image/tags", json={"path": path, "tag_name": "summer"})
            h.post("/image/tags", json={"path": path, "tag_name": "sea"})
            h.post("/favorites", json={"path": path})
        shutil.copy(library / "x.jpg", library / "copy.jpg")
        h.scan()
        h.post("/image/tags", json={"path": "copy.jpg", "tag_name": "mine"})
        (library / "x.jpg").unlink()
        (library / "gone.jpg").unlink()
        h.scan()
        thumbs = h.kernel.config.data_dir / "thumbnails" / "1"
        with h.kernel.db.write() as conn:
            conn.execute(
                update(files)
                .where(files.c.rel_path == "gone.jpg")
                .values(missing_since=time.time() - 90 * 86400)
            )

        report = cleanup(h, "--purge-missing", "--older-than", "60d")
        (conflict,) = report["missing"]["conflicts"]
        assert (conflict["path"], conflict["found_path"]) == ("x.jpg", "copy.jpg")
        assert conflict["user_data"] == {"tags": 2, "favorites": 1}
        assert conflict["found_user_data"] == {"tags": 1}
        assert report["missing"]["to_repoint"] == []
        (purge,) = report["missing"]["to_purge"]
        assert (purge["path"], purge["user_data"]) == ("gone.jpg", {"tags": 2, "favorites": 1})

        before = count(h, "SELECT count(*) FROM tagged_photo")
        h.post("/image/tags", json={"path": "copy.jpg", "tag_name": "x"})  # tags are shared
        applied = cleanup(h, "--purge-missing", "--older-than", "60d", "--apply")
        assert [m["path"] for m in applied["missing"]["purged"]] == ["gone.jpg"]
        assert count(h, "SELECT count(*) FROM files WHERE rel_path = 'gone.jpg'") == 0
        assert count(h, "SELECT count(*) FROM tagged_photo") == before + 1 - 2
        assert count(h, "SELECT count(*) FROM favorites") == 1  # x.jpg's, still missing
        assert not (thumbs / "gone.jpg.thumb.jpg").exists()
        assert (thumbs / "copy.jpg.thumb.jpg").exists()
        assert count(h, "SELECT count(*) FROM files WHERE rel_path = 'x.jpg'") == 1  # conflict
