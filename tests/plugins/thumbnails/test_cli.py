"""``imageapi thumbnails rebuild [--failed]`` and ``status``, and the plugin's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image

import kernel
from kernel.config import ConfigError
from kernel.manager import build_plugin_manager
from kernel.testing import harness, make_config, make_jpeg
from plugins.thumbnails import Plugin
from plugins.thumbnails.layout import Storage

pytestmark = pytest.mark.db


def storage(h) -> Storage:
    """The plugin's storage folders (``THUMBNAILS``, ``GIFS_DIRECTORY``) in this app."""
    plugin = h.kernel.plugin("thumbnails")
    assert isinstance(plugin, Plugin)
    return plugin.storage


def imageapi(h, *args: str):
    """Run ``imageapi ARGS`` with the commands the plugin adds through ``cli_commands``,
    configured like the running harness (same database, library and folders)."""
    config = h.kernel.config
    root = click.Group("imageapi")
    registry = build_plugin_manager(config, only=["thumbnails"])
    registry.declarations.cli_commands(root)
    env = dict(config.env)  # the harness's environment: database, library, folders
    result = CliRunner().invoke(root, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_rebuild_failed_then_everything(tmp_path: Path, library: Path) -> None:
    good = make_jpeg(library / "good.jpg", size=(400, 300))
    fixed_bytes = make_jpeg(tmp_path / "fixed.jpg", size=(400, 300), color=(0, 200, 0)).read_bytes()
    broken = library / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff" + b"\0" * (len(fixed_bytes) - 3))
    with harness(tmp_path, ["thumbnails"]) as h:
        h.scan()
        thumbs = storage(h).thumbnails / "1"
        status = imageapi(h, "thumbnails", "status", "--failed")
        assert "done 1, failed 1" in status.output
        assert "1:broken.jpg\tnot a recognised image format" in status.output

        # Repaired in place with the same size and mtime: the scanner cannot notice.
        st = broken.stat()
        broken.write_bytes(fixed_bytes)
        os.utime(broken, ns=(st.st_atime_ns, st.st_mtime_ns))
        good_made = (thumbs / "good.jpg.thumb.jpg").stat().st_mtime_ns
        result = imageapi(h, "thumbnails", "rebuild", "--failed")
        assert "1 rendered, 0 failed" in result.output
        with Image.open(thumbs / "broken.jpg.thumb.jpg") as im:
            assert im.size == (200, 150) and im.convert("RGB").getpixel((100, 75))[1] > 150
        assert (thumbs / "good.jpg.thumb.jpg").stat().st_mtime_ns == good_made  # untouched
        assert "done 2, failed 0" in imageapi(h, "thumbnails", "status").output
        served = h.get("/image", params={"path": "broken.jpg", "size": "thumb"})
        assert served.status_code == 200

        result = imageapi(h, "thumbnails", "rebuild")
        assert "2 rendered, 0 failed" in result.output
        assert (thumbs / "good.jpg.thumb.jpg").stat().st_mtime_ns != good_made
        assert good.exists()  # originals are never touched


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_rebuild_honours_max_megapixels_in_a_process_of_its_own(
    tmp_path: Path, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command applies the plugin's picture limit as the server does (it used to
    keep Pillow's default, so a picture the server refuses was rendered, and a 100 MP
    one the server renders under the default 179 was refused)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    Image.new("RGB", (1500, 1000), (10, 120, 200)).save(library / "wide.png")
    toml = "[plugins.thumbnails]\nmax_megapixels = 1\n"
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml) as h:
        h.scan()
        here = str(Path(kernel.__file__).resolve().parents[1])  # the child runs this code
        env = {**os.environ, **h.kernel.config.env, "PYTHONPATH": here}
        result = subprocess.run(
            [sys.executable, "-m", "kernel.cli", "thumbnails", "rebuild"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "0 rendered, 1 failed" in result.stdout, result.stdout + result.stderr
        assert "decompression bomb" in imageapi(h, "thumbnails", "status", "--failed").output


@pytest.mark.parametrize(
    ("toml", "complaint"),
    [
        ("size = 1", "unknown setting 'size'"),
        ('pregenerate_sizes = ["huge"]', "pregenerate_sizes"),
        ("thumb_size = 0", "thumb_size"),
        ("workers = -1", "workers"),
    ],
)
def test_settings_are_validated(tmp_path: Path, library: Path, toml: str, complaint: str) -> None:
    config = make_config(
        tmp_path, "sqlite://", library=library, plugins_toml=f"[plugins.thumbnails]\n{toml}\n"
    )
    with pytest.raises(ConfigError) as info:
        build_plugin_manager(config, only=["thumbnails"])
    assert "thumbnails" in str(info.value) and complaint in str(info.value)


def test_custom_sizes_and_storage_folders(tmp_path: Path, library: Path) -> None:
    make_jpeg(library / "2024" / "trip" / "a.jpg", size=(1000, 800))
    toml = (
        "[plugins.thumbnails]\nthumb_size = 64\npreview_size = 300\n"
        'pregenerate_sizes = ["thumb", "preview"]\n'
    )
    env = {"THUMBNAILS": str(tmp_path / "thumbs"), "GIFS_DIRECTORY": str(tmp_path / "gifs")}
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml, env=env) as h:
        h.scan()
        folder = tmp_path / "thumbs" / "1" / "2024" / "trip"
        with Image.open(folder / "a.jpg.thumb.jpg") as thumb:
            assert thumb.size == (64, 51)
        with Image.open(folder / "a.jpg.preview.jpg") as preview:
            assert preview.size == (300, 240)
        response = h.get("/image", params={"path": "2024/trip/a.jpg", "size": "preview"})
        assert response.content == (folder / "a.jpg.preview.jpg").read_bytes()


def test_storage_folders_default_to_the_data_directory(tmp_path: Path, library: Path) -> None:
    """THUMBNAILS and GIFS_DIRECTORY unset (or empty): ``thumbnails`` and ``gifs`` in the
    data directory, created by the kernel and kept out of its scans."""
    with harness(tmp_path, ["thumbnails"], env={"GIFS_DIRECTORY": ""}) as h:
        data = tmp_path / "data"
        assert storage(h) == Storage(data / "thumbnails", data / "gifs")
        assert (data / "thumbnails").is_dir() and (data / "gifs").is_dir()
        assert {data / "thumbnails", data / "gifs"} <= set(h.kernel.storage_folders)
