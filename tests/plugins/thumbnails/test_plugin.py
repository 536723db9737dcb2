"""The thumbnails plugin through real HTTP: every format, sizes, formats, caching, and
fifty clients asking at once for a thumbnail that does not exist yet.

Pictures carry a red block top-left of the picture as it should be seen (see conftest);
a thumbnail is right when it is red top-left, blue elsewhere, and fits the box.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from kernel.tables import files
from kernel.testing import harness, make_jpeg
from plugins.thumbnails import Plugin
from plugins.thumbnails.layout import Storage
from plugins.thumbnails.store import thumbnails

pytestmark = pytest.mark.db


def storage(h) -> Storage:
    """The plugin's storage folders (``THUMBNAILS``, ``GIFS_DIRECTORY``) in this app."""
    plugin = h.kernel.plugin("thumbnails")
    assert isinstance(plugin, Plugin)
    return plugin.storage


RED, BLUE = (255, 0, 0), (0, 0, 255)


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tol: int = 70) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], colour, strict=True))


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def assert_upright(im: Image.Image, name: str, box: int = 200) -> None:
    rgb = im.convert("RGB")
    w, h = rgb.size
    assert w <= box and h <= box and max(w, h) >= min(box, 100), (name, rgb.size)
    assert max(rgb.getextrema()[0][1], rgb.getextrema()[2][1]) > 100, f"{name}: black"
    corners = {(2, 2): RED, (w - 3, 2): BLUE, (2, h - 3): BLUE, (w - 3, h - 3): BLUE}
    for xy, colour in corners.items():
        assert near(rgb.getpixel(xy), colour), (name, xy, rgb.getpixel(xy))


def get_image(h, path: str, headers: dict[str, str] | None = None, **params: str):
    return h.get("/image", params={"path": path, **params}, headers=headers or {})


def state(h, rel_path: str):
    with h.kernel.db.read() as conn:
        return conn.execute(
            select(thumbnails)
            .join(files, files.c.id == thumbnails.c.file_id)
            .where(files.c.rel_path == rel_path)
        ).first()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory, media, videos) -> Path:
    """One file of every kind imageapi thumbnails, each upright once displayed."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    root = tmp_path_factory.mktemp("pictures")
    up = media.upright((600, 400))
    for orientation in (1, 3, 6, 8):
        stored = media.stored_for(orientation, up)
        (root / f"jpeg_o{orientation}.jpg").write_bytes(media.jpeg_bytes(stored, orientation))
    up.save(root / "pic.png")
    up.save(root / "pic.webp", lossless=True)
    up.convert("P", palette=Image.Palette.ADAPTIVE).save(root / "pic.gif")
    up.save(root / "pic.bmp")
    up.save(root / "pic.avif", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    media.stored_for(6, up).save(root / "turned.tif", exif=exif, compression="tiff_deflate")
    media.stored_for(6, up).save(root / "turned.heic", exif=exif.tobytes(), quality=90)
    small = media.jpeg_bytes(Image.new("RGB", (60, 40), (0, 255, 0)))
    large = media.jpeg_bytes(media.stored_for(6, media.upright((480, 320))))
    (root / "camera.nef").write_bytes(media.build_raw(small, large, orientation=6))
    (root / "sensor.dng").write_bytes(media.build_dng((64, 48)))
    (root / "renamed.jpg").write_bytes((root / "pic.png").read_bytes())  # PNG inside
    shutil.copy(videos["portrait"], root / "clip.mp4")
    return root


@pytest.fixture
def h(tmp_path: Path, pictures: Path):
    library = tmp_path / "library"
    shutil.copytree(pictures, library / "album")
    with harness(tmp_path, ["thumbnails"], library=library) as h:
        yield h


def test_every_format_is_pregenerated_on_scan_and_served_upright(h, pictures: Path) -> None:
    report = h.scan()
    names = sorted(p.name for p in pictures.iterdir())
    assert report.hashed == len(names)
    thumbs = storage(h).thumbnails
    for name in names:  # on disk before any client asked, mirroring the library
        assert (thumbs / "1" / "album" / f"{name}.thumb.jpg").is_file(), name
        row = state(h, f"album/{name}")
        assert (row.status, row.error, row.attempts) == ("done", None, 1), name
    assert (storage(h).gifs / "1" / "album" / "clip.mp4.gif").is_file()
    for name in names:
        response = get_image(h, f"album/{name}", size="thumb")
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "image/jpeg"
        im = decode(response.content)
        assert im.format == "JPEG"
        if name == "sensor.dng":  # developed at half size: 32x24, never upscaled
            assert im.size == (32, 24) and im.getpixel((2, 2))[0] > 150
            continue
        assert_upright(im, name)
    assert decode(get_image(h, "album/jpeg_o6.jpg", size="thumb").content).size == (200, 133)
    assert decode(get_image(h, "album/clip.mp4", size="thumb").content).size == (120, 160)


def test_webp_preview_gif_and_parameters(h) -> None:
    h.scan()
    webp = get_image(h, "album/jpeg_o8.jpg", size="thumb", format="webp")
    assert webp.headers["content-type"] == "image/webp"
    assert decode(webp.content).format == "WEBP"
    assert_upright(decode(webp.content), "webp")
    legacy = get_image(h, "album/jpeg_o8.jpg", size="THUMB")  # clients of the Rust server
    assert decode(legacy.content).size == (200, 133)
    preview = decode(get_image(h, "album/turned.heic", size="preview").content)
    assert preview.size == (600, 400)  # fits 1440 and is never upscaled
    assert_upright(preview, "preview", box=1440)
    gif = get_image(h, "album/clip.mp4", size="gif")
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    anim = decode(gif.content)
    assert anim.format == "GIF" and anim.is_animated and anim.n_frames > 1
    assert anim.info["loop"] == 0 and max(anim.size) <= 200
    assert_upright(anim, "gif")
    photo_gif = get_image(h, "album/pic.png", size="gif")
    assert photo_gif.status_code == 400 and photo_gif.json()["parameter"] == "size"
    png = get_image(h, "album/pic.png", size="thumb", format="png")
    assert png.status_code == 400 and png.json()["parameter"] == "format"
    assert get_image(h, "album/pic.png", size="huge").status_code == 404
    original = get_image(h, "album/pic.png")
    assert original.content == (h.library / "album" / "pic.png").read_bytes()


def test_etag_and_cache_control_then_304(h) -> None:
    h.scan()
    first = get_image(h, "album/pic.webp", size="thumb")
    assert first.status_code == 200
    assert "max-age=86400" in first.headers["cache-control"]
    tag = first.headers["etag"]
    again = get_image(h, "album/pic.webp", size="thumb", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    other = get_image(h, "album/pic.webp", size="preview", headers={"If-None-Match": tag})
    assert other.status_code == 200 and other.headers["etag"] != tag


def test_fifty_concurrent_requests_render_once(tmp_path: Path, media) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "big.jpg").write_bytes(media.jpeg_bytes(media.upright((2400, 1600))))
    toml = "[plugins.thumbnails]\npregenerate_sizes = []\ngif = false\n"
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml, library=library) as h:
        h.scan()
        assert state(h, "big.jpg") is None  # nothing made ahead of time

        async def fifty() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=h.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await asyncio.gather(
                    *(
                        client.get(
                            "/image",
                            params={"path": "big.jpg", "size": "thumb"},
                            headers=h.headers,
                        )
                        for _ in range(50)
                    )
                )

        responses = h.run(fifty)
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        assert_upright(decode(responses[0].content), "big.jpg")
        row = state(h, "big.jpg")
        assert (row.attempts, row.sizes.split()) == (1, ["thumb.jpg@200"])
        path = storage(h).thumbnails / "1" / "big.jpg.thumb.jpg"
        made_at = path.stat().st_mtime_ns
        assert get_image(h, "big.jpg", size="thumb").status_code == 200
        assert path.stat().st_mtime_ns == made_at and state(h, "big.jpg").attempts == 1


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_max_megapixels_refuses_bigger_pictures(tmp_path, library):
    Image.new("RGB", (1500, 1000), (10, 120, 200)).save(library / "wide.png")
    toml = "[plugins.thumbnails]\nmax_megapixels = 1\n"
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml) as h:
        h.scan()
        refused = h.get("/image", params={"path": "wide.png", "size": "thumb"})
        assert refused.status_code == 404 and "decompression bomb" in refused.json()["detail"]
    with harness(tmp_path / "default", ["thumbnails"], library=library) as h:
        h.scan()
        assert h.get("/image", params={"path": "wide.png", "size": "thumb"}).status_code == 200


def test_the_plugin_class_works_under_another_name(tmp_path: Path, library: Path) -> None:
    """Settings, folders and the render pool belong to the instance, not to a name: the
    class registered as "renamed" reads ``[plugins.renamed]`` and renders."""
    make_jpeg(library / "a.jpg", size=(400, 300))
    toml = "[plugins.renamed]\nthumb_size = 64\n"
    env = {"THUMBNAILS": str(tmp_path / "elsewhere")}
    with harness(tmp_path, extra_plugins={"renamed": Plugin}, plugins_toml=toml, env=env) as h:
        assert h.kernel.plugin("thumbnails") is None
        assert isinstance(h.kernel.plugin("renamed"), Plugin)
        h.scan()
        made = tmp_path / "elsewhere" / "1" / "a.jpg.thumb.jpg"
        assert Image.open(made).size == (64, 48)  # made on ingest, with its own settings
        response = h.get("/image", params={"path": "a.jpg", "size": "thumb"})
        assert response.status_code == 200 and response.content == made.read_bytes()
        preview = h.get("/image", params={"path": "a.jpg", "size": "preview"})
        assert decode(preview.content).size == (400, 300)
