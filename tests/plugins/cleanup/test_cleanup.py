"""``imageapi cleanup``: missing files re-pointed to their new places, long-missing ones
purged, lying extensions reported and fixed; a dry run unless ``--apply``, while the
server (the harness) keeps running on the same database."""

from __future__ import annotations

import json
import shutil
import time

import click
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import update

from kernel.manager import build_plugin_manager, builtin_plugin_names
from kernel.tables import files
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db
ONLY_CLEANUP = "".join(
    f"[plugins.{name}]\nenabled = false\n" for name in builtin_plugin_names() if name != "cleanup"
)


def imageapi(h, *args: str):
    """``imageapi ARGS`` in a process-like kernel of its own, configured like the
    running harness (same database and library): the command beside a live server."""
    config = h.kernel.config
    root = click.Group("imageapi")
    build_plugin_manager(config).declarations.cli_commands(root)
    result = CliRunner().invoke(root, list(args), env=dict(config.env), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def rows(h):
    with h.kernel.db.read() as conn:
        result = conn.exec_driver_sql("SELECT id, rel_path, status, error FROM files ORDER BY id")
        return {r.rel_path: r for r in result}


def test_a_missing_file_is_repointed_to_its_copy_dry_run_first(tmp_path, library):
    make_jpeg(library / "x.jpg")
    with harness(tmp_path, ["cleanup"], plugins_toml=ONLY_CLEANUP) as h:
        h.scan()
        original = rows(h)["x.jpg"].id
        (library / "new").mkdir()
        shutil.copy(library / "x.jpg", library / "new" / "x.jpg")  # indexed as a copy...
        h.scan()
        (library / "x.jpg").unlink()  # ...before the original went: no move to see
        h.scan()
        assert rows(h)["x.jpg"].status == "missing"

        dry = imageapi(h, "cleanup")
        assert "x.jpg (library 1) is at new/x.jpg (library 1): would re-point" in dry.output
        assert "Dry run: nothing changed" in dry.output
        assert rows(h)["x.jpg"].status == "missing"

        report = json.loads(imageapi(h, "cleanup", "--apply", "--json").output)
        assert report["applied"] is True
        (moved,) = report["missing"]["repointed"]
        assert (moved["path"], moved["found_path"], moved["id"]) == ("x.jpg", "new/x.jpg", original)
        assert {path: r.id for path, r in rows(h).items()} == {"new/x.jpg": original}
        assert h.get("/photos", params={"path": "new"}).json()["photos"] == ["new/x.jpg"]
        again = json.loads(imageapi(h, "cleanup", "--json").output)
        assert again["missing"] == {
            "to_repoint": [], "conflicts": [], "unmatched": [], "to_purge": []
        }  # fmt: skip


def test_purge_missing_only_what_is_older_than_asked(tmp_path, library):
    make_jpeg(library / "old.jpg")
    make_jpeg(library / "recent.jpg", color=(1, 2, 3))
    make_jpeg(library / "kept.jpg", color=(3, 2, 1))
    with harness(tmp_path, ["cleanup"], plugins_toml=ONLY_CLEANUP) as h:
        h.scan()
        (library / "old.jpg").unlink()
        (library / "recent.jpg").unlink()
        h.scan()
        with h.kernel.db.write() as conn:  # went missing 40 days ago
            conn.execute(
                update(files)
                .where(files.c.rel_path == "old.jpg")
                .values(missing_since=time.time() - 40 * 86400)
            )
        dry = imageapi(h, "cleanup", "--purge-missing", "--older-than", "30d")
        assert "missing old.jpg (library 1) for 40.0 days, no user data: would purge" in dry.output
        assert "missing recent.jpg (library 1) for 0.0 days, no user data\n" in dry.output
        assert set(rows(h)) == {"old.jpg", "recent.jpg", "kept.jpg"}
        out = imageapi(h, "cleanup", "--purge-missing", "--older-than", "30d", "--apply", "--json")
        report = json.loads(out.output)
        assert [m["path"] for m in report["missing"]["purged"]] == ["old.jpg"]
        assert set(rows(h)) == {"recent.jpg", "kept.jpg"}
        bad = CliRunner().invoke(
            _root(h),
            ["cleanup", "--purge-missing", "--older-than", "soon"],
            env=dict(h.kernel.config.env),
        )
        assert bad.exit_code == 2 and "not an age like 30d" in bad.output


def _root(h):
    root = click.Group("imageapi")
    build_plugin_manager(h.kernel.config).declarations.cli_commands(root)
    return root


def test_lying_extensions_reported_then_fixed_never_overwriting(tmp_path, library):
    make_jpeg(library / "jpeg.png")
    Image.new("RGB", (8, 8), "navy").save(library / "png.JPG", "PNG")
    make_jpeg(library / "taken.png", color=(0, 9, 0))
    make_jpeg(library / "taken.jpg", color=(9, 0, 0))  # the name taken.png should get
    make_jpeg(library / "clip.mp4", color=(0, 0, 9))  # a picture named like a video
    (library / "notes.jpg").write_text("not a picture")
    with harness(tmp_path, ["cleanup"], plugins_toml=ONLY_CLEANUP) as h:
        h.scan()
        before = {path: r.id for path, r in rows(h).items()}
        assert rows(h)["clip.mp4"].error  # refused by the scanner, not listed

        dry = imageapi(h, "cleanup").output
        assert "jpeg.png holds jpeg: jpeg.jpg (--fix renames it)" in dry
        assert "png.JPG holds png: png.PNG (--fix renames it)" in dry
        assert "notes.jpg: not a photo or video" in dry
        assert "taken.jpg holds" not in dry  # a JPEG named .jpg is no finding
        assert set(rows(h)) == set(before)

        report = json.loads(imageapi(h, "cleanup", "--fix", "--apply", "--json").output)
        by_path = {t["path"]: t for t in report["types"]}
        assert by_path["jpeg.png"]["renamed"] and by_path["clip.mp4"]["renamed"]
        assert by_path["taken.png"]["skipped"] == "a file with the suggested name exists"
        assert by_path["notes.jpg"]["content"] == "not media"
        now = {path: r.id for path, r in rows(h).items()}
        assert now["jpeg.jpg"] == before["jpeg.png"] and now["png.PNG"] == before["png.JPG"]
        assert now["clip.jpg"] == before["clip.mp4"]
        assert now["taken.png"] == before["taken.png"] and now["taken.jpg"] == before["taken.jpg"]
        assert (library / "jpeg.jpg").is_file() and not (library / "jpeg.png").exists()
        assert (library / "taken.png").is_file()  # not renamed over taken.jpg
        assert rows(h)["clip.jpg"].error is None  # hashed again under its true name
        listed = h.get("/photos").json()["photos"]
        assert {"clip.jpg", "jpeg.jpg", "png.PNG"} <= set(listed)
