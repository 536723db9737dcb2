"""Whatever a client sends, an upload answers 4xx naming the field to blame, never 500,
and leaves nothing behind: no staging file, nothing in the photo folder."""

from __future__ import annotations

import os

import pytest

from kernel.testing import harness

pytestmark = pytest.mark.db


@pytest.fixture
def h(tmp_path, library):
    (library / "album").mkdir()
    with harness(tmp_path, ["uploads"]) as harness_:
        yield harness_
        staging = harness_.kernel.plugin("uploads").staging[1]
        assert list(staging.iterdir()) == []  # nothing staged is left behind


def refused(h, form, body: bytes, parameter: str, status: int = 400) -> None:
    response = form.send(h, body)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["parameter"] == parameter, response.text


def library_files(h) -> list[str]:
    return sorted(str(p.relative_to(h.library)) for p in h.library.rglob("*") if p.is_file())


def test_an_empty_file_input_is_a_400_naming_file(h, form):
    """Browsers send ``filename=""`` and no bytes for a file input left empty."""
    refused(h, form, form.body(("path", "album", None), ("file", b"", "")), "file")


def test_text_that_is_not_utf8_is_a_400_naming_the_field(h, form):
    body = form.body(("path", b"alb\xffum", None), ("file", form.jpeg(), "a.jpg"))
    refused(h, form, body, "path")
    body = form.body(("file", form.jpeg(), "a.jpg"), ("library", b"\xc3\x28", None))
    refused(h, form, body, "library")
    assert library_files(h) == []


def test_file_parts_missing_doubled_or_misnamed(h, form):
    jpeg = form.jpeg()
    refused(h, form, form.body(("path", "album", None)), "file")
    two = form.body(("file", jpeg, "a.jpg"), ("file", jpeg, "b.jpg"))
    refused(h, form, two, "file")
    refused(h, form, form.body(("file", jpeg, "a.jpg"), ("photo", jpeg, "b.jpg")), "photo")
    refused(h, form, form.body(("file", "just text", None)), "file")
    refused(h, form, form.body(("path", "album", None), ("path", "x", None)), "path")
    assert library_files(h) == []


def test_text_fields_are_capped(h, form):
    huge = "a" * 5000
    refused(
        h, form, form.body((("caption", huge, None)), ("file", form.jpeg(), "a.jpg")), "caption"
    )
    refused(h, form, form.body(("file", form.jpeg(), "a.jpg"), ("path", huge, None)), "path")
    assert library_files(h) == []


def test_a_truncated_body_names_the_field_it_stopped_in(h, form):
    whole = form.body(("path", "album", None), ("file", form.jpeg(), "a.jpg"))
    refused(h, form, whole[: len(whole) - 200], "file")
    in_text = form.body(("file", form.jpeg(), "a.jpg"), ("path", "album" * 10, None))
    refused(h, form, in_text[: len(in_text) - 30], "path")
    refused(h, form, form.body(("file", form.jpeg(), "a.jpg"), end=False), "file")
    assert library_files(h) == []


def test_not_a_form_at_all(h, form):
    response = h.post("/image", json={"path": "album"})
    assert response.status_code == 400 and response.json()["parameter"] == "file"
    no_boundary = h.post("/image", content=b"x", headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 400
    garbage = form.send(h, b"\r\n\r\n--nope\r\n" + os.urandom(3000))
    assert garbage.status_code == 400
    parts = [(f"f{n}", "x", None) for n in range(20)]
    refused(h, form, form.body(*parts, ("file", form.jpeg(), "a.jpg")), "file")
    nameless = (
        f"--{form.BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{form.BOUNDARY}--\r\n"
    )
    refused(h, form, nameless.encode(), "file")


def test_names_over_name_max_are_refused_before_any_copy(h, form):
    long_name = "é" * 130 + ".jpg"  # 130 characters, 264 bytes once encoded
    refused(h, form, form.body(("path", "album", None), ("file", form.jpeg(), long_name)), "file")
    fits = "e" * 200 + ".jpg"
    response = form.send(h, form.body(("path", "album", None), ("file", form.jpeg(), fits)))
    assert response.status_code == 201, response.text
    clash = form.send(h, form.body(("path", "album", None), ("file", form.jpeg(), fits)))
    assert clash.status_code == 201  # the clash suffix still fits: the stem is shortened
    assert len(os.fsencode(clash.json()["path"].rsplit("/", 1)[1])) <= 255
    assert len(library_files(h)) == 2


def test_paths_over_path_max_are_refused_before_any_copy(h, form):
    """A folder deep enough that folder + file name no longer fit PATH_MAX."""
    rel: list[str] = []
    while (room := 3950 - len(os.fsencode(str(h.library.joinpath(*rel))))) > 0:
        rel.append("d" * min(200, max(room - 1, 1)))
    folder = h.library.joinpath(*rel)
    folder.mkdir(parents=True)
    path = "/".join(rel)
    name = "n" * 170 + ".jpg"  # fits NAME_MAX, not the folder's last 146 bytes of PATH_MAX
    refused(h, form, form.body(("path", path, None), ("file", form.jpeg(), name)), "path")
    refused(h, form, form.body(("file", form.jpeg(), name), ("path", path, None)), "path")
    assert library_files(h) == []
    short = form.send(h, form.body(("path", path, None), ("file", form.jpeg(), "ok.jpg")))
    assert short.status_code == 201, short.text


def test_no_cut_or_corruption_is_a_500(h, form):
    whole = form.body(("path", "album", None), ("file", form.jpeg(), "a.jpg"))
    statuses = set()
    for cut in range(0, len(whole), 5):
        statuses.add(form.send(h, whole[:cut]).status_code)
    for at in range(0, len(whole), 11):
        broken = whole[:at] + bytes([whole[at] ^ 0x55]) + whole[at + 1 :]
        statuses.add(form.send(h, broken).status_code)
    assert statuses <= {201, 400, 404, 415}, statuses
    assert 400 in statuses
