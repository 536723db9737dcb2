"""A listing reads its page and its plugins' extras in one worker-thread hop: under load
each hop waits once for a thread and once more for the event loop, behind every other
request. A plugin with an async ``file_extras`` still gets its fields (two hops then)."""

from __future__ import annotations

import asyncio

import pytest

from kernel import hookimpl
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


class NameExtras:
    @hookimpl
    def file_extras(self, files, user_id):
        return {f.id: {"shout": f.name.upper()} for f in files}


class LengthExtras:
    @hookimpl
    async def file_extras(self, files, user_id):
        await asyncio.sleep(0)
        return {f.id: {"name_length": len(f.name)} for f in files}


def test_a_page_and_its_extras_take_one_thread_hop(tmp_path, library, request):
    for name in ("a.jpg", "b.jpg"):
        make_jpeg(library / name)
    with harness(tmp_path, extra_plugins={"names": NameExtras()}, library=library) as h:
        h.scan()
        assert h.get("/photos", params={"recursive": "true"}).status_code == 200  # warm
        hops = request.getfixturevalue("thread_hops")  # counting from here
        listing = h.get("/photos", params={"recursive": "true"}).json()
        assert [(f["name"], f["shout"]) for f in listing["files"]] == [
            ("a.jpg", "A.JPG"),
            ("b.jpg", "B.JPG"),
        ]
        assert len(hops) == 1, hops


def test_an_async_implementation_still_adds_its_fields(tmp_path, library):
    make_jpeg(library / "a.jpg")
    plugins = {"names": NameExtras(), "lengths": LengthExtras()}
    with harness(tmp_path, extra_plugins=plugins, library=library) as h:
        h.scan()
        (entry,) = h.get("/photos", params={"recursive": "true"}).json()["files"]
        assert entry["shout"] == "A.JPG" and entry["name_length"] == 5
