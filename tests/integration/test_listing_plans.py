"""/photos on a library big enough for the other plans: sorts that walk plugin indexes
(more than ``kernel.listing.WALK_INDEX_ABOVE`` matches, a good share of the library),
filters tested row by row on those walks, pages cut from the kept ordering (offset >=
``DEEP_OFFSET``), and kept counts and orderings dropped the moment anyone commits — this
server or another process. Every answer is checked against the order computed here.

The 3,000 files are written as rows, the way a finished scan and EXIF ingest leave them:
building and ingesting 3,000 images would cost minutes per database, and pixels play no
part in ordering. The small-library plans are covered by the plugins' own tests.
Needs exif, tags and favorites (skipped when one of them is not there).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import DateTime, column, select, table, text

from kernel.listing import DEEP_OFFSET, WALK_INDEX_ABOVE
from kernel.tables import files, users
from kernel.testing import Harness, harness, make_jpeg
from kernel.types import ToolContext

pytestmark = [pytest.mark.db, pytest.mark.requires_plugins("exif", "tags", "favorites")]

COUNT = 3_000
TAG_NAMES = ["beach", "family", "snow", "city", "food"]


@dataclass
class Library:
    h: Harness
    names: dict[int, str] = field(default_factory=dict)
    taken: dict[int, datetime | None] = field(default_factory=dict)
    makes: dict[int, str] = field(default_factory=dict)
    tags: dict[int, set[int]] = field(default_factory=dict)
    favorites: set[int] = field(default_factory=set)

    def by_date(self, ids: list[int], descending: bool) -> list[int]:
        dated = sorted(
            (i for i in ids if self.taken[i] is not None),
            key=lambda i: (self.taken[i], i),
            reverse=descending,
        )
        return dated + sorted(i for i in ids if self.taken[i] is None)

    def by_tag_count(self, ids: list[int], descending: bool) -> list[int]:
        tagged = sorted(
            (i for i in ids if self.tags[i]),
            key=lambda i: (-len(self.tags[i]) if descending else len(self.tags[i]), i),
        )
        untagged = sorted(i for i in ids if not self.tags[i])
        return tagged + untagged if descending else untagged + tagged

    def expected(self, sort: str, ids: list[int]) -> list[int]:
        if sort == "NameAsc":
            return sorted(ids, key=lambda i: (self.names[i], i))
        if sort == "NameDesc":
            return sorted(ids, key=lambda i: (self.names[i], i), reverse=True)
        if sort.startswith("DateTaken"):
            return self.by_date(ids, sort.endswith("Desc"))
        return self.by_tag_count(ids, sort.endswith("Desc"))


#: The columns of the exif plugin's table these tests fill (its migration made the table):
#: the rows an ingest would leave, written without importing the plugin.
image_exif = table(
    "image_exif",
    *(column(name) for name in ("file_id", "content_hash", "status", "error", "camera_make")),
    *(column(name) for name in ("extracted_at", "taken_md", "date_source")),
    column("date_taken", DateTime),
    column("taken_utc", DateTime),
)


def exif_row(file_id: int, n: int, status: str = "ok", **fields: object) -> dict[str, object]:
    """An ``image_exif`` row as the exif plugin's ingest writes it (unset fields NULL)."""
    unset = dict.fromkeys(("camera_make", "date_taken", "taken_utc", "taken_md", "date_source"))
    return {"file_id": file_id, "content_hash": f"{n:064x}", "status": status,
            "extracted_at": time.time(), "error": None, **unset, **fields}  # fmt: skip


def populate(h: Harness) -> Library:
    rng = random.Random(7)
    lib = Library(h)
    library_id = next(iter(h.kernel.libraries)).id
    with h.kernel.db.read() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == "tester")).scalar()
    now = time.time()
    file_rows, exif_rows, tag_rows, favorite_rows = [], [], [], []
    previous = datetime(2015, 1, 1)
    for n in range(COUNT):
        file_id = n + 1
        name = f"{(n * 7919) % COUNT:05d}.jpg"  # name order is not id order
        folder = f"f{n % 7}"
        lib.names[file_id] = name
        file_rows.append(
            {"id": file_id, "library_id": library_id, "rel_path": f"{folder}/{name}",
             "parent_dir": folder, "name": name, "size": 1000, "mtime_ns": 0,
             "media_type": "photo", "content_hash": f"{n:064x}", "status": "present",
             "discovered_at": now, "updated_at": now, "hashed_at": now}
        )  # fmt: skip
        # Ties every tenth file; 5% never read, 5% unreadable: both undated.
        taken = (
            previous
            if n % 10 == 0
            else datetime(2015, 1, 1) + timedelta(minutes=rng.randrange(5_000_000))
        )
        previous = taken
        make = "Canon" if n % 10 else "Nikon"
        lib.makes[file_id] = make
        lib.taken[file_id] = None
        if n % 20 == 1:
            pass
        elif n % 20 == 2:
            exif_rows.append(exif_row(file_id, n, status="failed", error="truncated"))
        else:
            lib.taken[file_id] = taken
            exif_rows.append(
                exif_row(file_id, n, camera_make=make, date_taken=taken, taken_utc=taken,
                         taken_md=taken.month * 100 + taken.day, date_source="DateTimeOriginal")
            )  # fmt: skip
        lib.tags[file_id] = set(rng.sample(range(1, 6), rng.choice((0, 1, 1, 2, 3))))
        for tag_id in lib.tags[file_id]:
            tag_rows.append({"t": tag_id, "f": file_id, "c": now})
        if n % 4:
            lib.favorites.add(file_id)
            favorite_rows.append({"u": user_id, "f": file_id, "c": now})
    with h.kernel.db.write() as conn:
        conn.execute(
            text("INSERT INTO tags (id, name, name_key, created_at, updated_at)"
                 " VALUES (:i, :n, :n, :c, :c)"),
            [{"i": i + 1, "n": name, "c": now} for i, name in enumerate(TAG_NAMES)],
        )  # fmt: skip
        conn.execute(files.insert(), file_rows)
        conn.execute(image_exif.insert(), exif_rows)
        conn.execute(
            text("INSERT INTO tagged_photo (tag_id, file_id, created_at) VALUES (:t, :f, :c)"),
            tag_rows,
        )
        conn.execute(
            text("INSERT INTO favorites (user_id, file_id, created_at) VALUES (:u, :f, :c)"),
            favorite_rows,
        )
        if h.kernel.db.dialect == "postgresql":
            conn.execute(text("SELECT setval('files_id_seq', (SELECT max(id) FROM files))"))
    return lib


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    with harness(tmp_path_factory.mktemp("big"), ["exif", "tags", "favorites"]) as h:
        yield populate(h)


def listing(lib: Library, **params) -> tuple[list[int], int]:
    response = lib.h.get("/photos", params={"recursive": "true", **params})
    assert response.status_code == 200, response.text
    body = response.json()
    return [entry["id"] for entry in body["files"]], body["total"]


SORTS = ["NameAsc", "NameDesc", "DateTakenAsc", "DateTakenDesc", "TagCountAsc", "TagCountDesc"]
OFFSETS = [0, 100, DEEP_OFFSET, DEEP_OFFSET + 1_700, 2_830, 2_950]  # 2,830: dated → undated


def test_the_library_is_big_enough_for_the_walking_plans():
    assert COUNT > WALK_INDEX_ABOVE and DEEP_OFFSET < 2_830


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_walks_and_pages_in_the_expected_order(big, sort):
    everything = big.expected(sort, list(big.names))
    whole, total = listing(big, sort=sort)
    assert (whole, total) == (everything, COUNT)
    for offset in OFFSETS:
        page, total = listing(big, sort=sort, limit=100, offset=offset)
        assert (page, total) == (everything[offset : offset + 100], COUNT), offset
    assert listing(big, sort=sort, limit=100, offset=COUNT) == ([], COUNT)


@pytest.mark.parametrize(
    ("params", "matches"),
    [
        ({"camera_make": "canon"}, lambda lib, i: lib.makes[i] == "Canon" and lib.taken[i]),
        ({"date_from": "2016-01-01"}, lambda lib, i: (lib.taken[i] or datetime.min).year >= 2016),
        ({"tag_ids": "1,2,3,4"}, lambda lib, i: bool(lib.tags[i] & {1, 2, 3, 4})),
        ({"favorites": "true"}, lambda lib, i: i in lib.favorites),
        ({"camera_make": "canon", "favorites": "true", "exclude_tag_ids": "5"},
         lambda lib, i: lib.makes[i] == "Canon" and lib.taken[i] and i in lib.favorites
         and 5 not in lib.tags[i]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("sort", ["NameAsc", "DateTakenDesc", "TagCountDesc"])
def test_filters_tested_row_by_row_on_a_walk_match_the_counted_set(big, params, matches, sort):
    wanted = big.expected(sort, [i for i in big.names if matches(big, i)])
    assert len(wanted) > WALK_INDEX_ABOVE or "exclude_tag_ids" in params
    assert listing(big, sort=sort, **params) == (wanted, len(wanted))
    for offset in (0, DEEP_OFFSET, len(wanted) - 50):
        page = listing(big, sort=sort, limit=100, offset=offset, **params)
        assert page == (wanted[offset : offset + 100], len(wanted)), offset


def test_kept_counts_and_orderings_follow_writes_through_the_api(big):
    deep = {"sort": "TagCountDesc", "limit": 100, "offset": DEEP_OFFSET}
    untagged = next(i for i in sorted(big.names) if not big.tags[i])
    listing(big, **deep)  # keep the ordering and the count
    count_before = listing(big, tag_ids="4", limit=1)[1]
    path = f"f{(untagged - 1) % 7}/{big.names[untagged]}"
    make_jpeg(big.h.library / path)  # the tag routes check the file is really there
    for tag_id in (1, 2, 3, 4):
        response = big.h.post("/image/tags", json={"path": path, "tag_id": tag_id})
        assert response.status_code == 200, response.text
        big.tags[untagged].add(tag_id)
    everything = big.expected("TagCountDesc", list(big.names))
    assert everything.index(untagged) < DEEP_OFFSET  # it moved from the tail to the top
    assert listing(big, **deep) == (everything[DEEP_OFFSET : DEEP_OFFSET + 100], COUNT)
    assert listing(big, tag_ids="4", limit=1)[1] == count_before + 1


def test_kept_results_follow_a_commit_from_another_process(big):
    favorite = min(big.favorites)
    before = listing(big, favorites="true", limit=100, offset=DEEP_OFFSET)
    assert before[1] == len(big.favorites)
    script = (
        "import sys; from sqlalchemy import create_engine, text\n"
        "engine = create_engine(sys.argv[1])\n"
        "with engine.begin() as conn:\n"
        "    conn.execute(text('DELETE FROM favorites WHERE file_id = :f'),\n"
        "                 {'f': int(sys.argv[2])})\n"
    )
    url = big.h.kernel.config.database_url
    subprocess.run([sys.executable, "-c", script, url, str(favorite)], check=True)
    big.favorites.discard(favorite)
    wanted = big.expected("NameAsc", sorted(big.favorites))
    after = listing(big, favorites="true", limit=100, offset=DEEP_OFFSET)
    assert after == (wanted[DEEP_OFFSET : DEEP_OFFSET + 100], len(wanted))


def test_the_search_tool_pages_newest_first_like_the_listing(big):
    """The kernel's search_photos tool takes exif's filter and sort, and answers with the
    listing's file entries, in the listing's order."""
    tool = big.h.kernel.tools["search_photos"]
    arguments = {"camera_make": "Canon", "sort": "DateTakenDesc", "limit": 50}
    result = big.h.run(tool.invoke, arguments, ToolContext(big.h.kernel, None))
    canon = [i for i in big.names if big.makes[i] == "Canon" and big.taken[i]]
    newest = big.by_date(canon, descending=True)[:50]
    assert result["total"] == len(canon) > WALK_INDEX_ABOVE
    paths = {i: f"f{(i - 1) % 7}/{big.names[i]}" for i in newest}
    assert [photo["path"] for photo in result["photos"]] == [paths[i] for i in newest]
    assert [photo["id"] for photo in result["photos"]] == newest
    listed = listing(big, camera_make="Canon", sort="DateTakenDesc", limit=50)
    assert listed == (newest, result["total"])


def test_the_search_tool_takes_every_plugins_filters_and_sorts(big):
    """One tool for every enabled plugin: an exif filter, a tags filter and a tags sort
    together ("Canon photos tagged beach, most tags first"), as /photos answers them."""
    tool = big.h.kernel.tools["search_photos"]
    arguments = {"camera_make": "Canon", "tag_ids": [1], "sort": "TagCountDesc", "limit": 30}
    result = big.h.run(tool.invoke, arguments, ToolContext(big.h.kernel, None))
    wanted = big.expected(
        "TagCountDesc", [i for i in big.names if big.makes[i] == "Canon" and big.taken[i]]
    )
    wanted = [i for i in wanted if 1 in big.tags[i]]
    assert result["total"] == len(wanted)
    assert [photo["id"] for photo in result["photos"]] == wanted[:30]
    assert all("beach" in [t["name"] for t in photo["tags"]] for photo in result["photos"])
    assert listing(big, camera_make="Canon", tag_ids="1", sort="TagCountDesc", limit=30) == (
        wanted[:30],
        len(wanted),
    )
