"""The search hooks through real ``/photos`` requests: declared parameters, filters built
with ``SearchFilter.on`` / ``.of`` (and ``negate``), sorts declared with
``SearchSort.keyed`` (missing first or last, ties), and ``file_extras``.

``Ratings`` is a test plugin owning a small table (``test_ratings``: a file's stars, NULL
when rated "no opinion"), created by its own migration branch (``ratings_migrations/``).
The small library exercises the plans that sort the matches; the big one (3,000 rows,
written as a scan would leave them) the plans that walk the sort's index.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, func, insert, select

from kernel import Plugin, SearchFilter, SearchParam, SearchSort, hookimpl, tables
from kernel.config import ConfigError
from kernel.listing import DEEP_OFFSET, WALK_INDEX_ABOVE
from kernel.tables import files
from kernel.testing import Harness, harness, make_jpeg
from kernel.types import InvalidParameter, ToolContext

pytestmark = pytest.mark.db

ratings = Table(
    "test_ratings",
    MetaData(),
    Column("file_id", Integer, ForeignKey(files.c.id), primary_key=True),
    Column("stars", Integer, nullable=True),
)
INDEX = "ix_test_ratings_stars"


class Ratings(Plugin[None]):
    """Filters: ``min_stars`` (on its table), ``unrated`` (negated), ``name_has`` (on
    files). Sorts: by stars, in every combination of direction, missing and ties."""

    @staticmethod
    @hookimpl
    def migrations() -> Path:
        return Path(__file__).parent / "ratings_migrations"

    @hookimpl
    def search_params(self):
        return [
            SearchParam("min_stars", int, "At least this many stars."),
            SearchParam("unrated", bool, "true: files without stars; false: with stars."),
            SearchParam("name_has", str, "Part of the file name."),
        ]

    @hookimpl
    def search_filters(self, query):
        found = []
        raw = query.get("min_stars")
        if raw is not None:
            if not raw.isdigit():
                raise InvalidParameter("min_stars", f"not a number of stars: {raw!r}")
            found.append(SearchFilter.on(ratings, ratings.c.stars >= int(raw)))
        unrated = query.get_bool("unrated")
        if unrated is not None:
            found.append(SearchFilter.on(ratings, ratings.c.stars.isnot(None), negate=unrated))
        if (part := query.get("name_has")) is not None:
            found.append(SearchFilter.of(files.c.name.contains(part)))
        return found

    @hookimpl
    def search_sorts(self):
        stars = ratings.c.stars
        return [
            SearchSort.keyed("StarsDesc", ratings, stars, INDEX, descending=True),
            SearchSort.keyed("StarsAsc", ratings, stars, INDEX, descending=False, missing="first"),
            SearchSort.keyed(
                "StarsDescFirstIdFirst", ratings, stars, INDEX, descending=True,
                ties_descending=False, missing="first",
            ),
            SearchSort.keyed("StarsAscLast", ratings, stars, INDEX, descending=False),
        ]  # fmt: skip


def expected_order(stars: dict[int, int | None], ids: list[int], sort: str) -> list[int]:
    """The order each sort promises, computed here: rated files by stars and then by id
    (in the sort's tie direction), files without stars (no row or NULL) in id order."""
    rated = [i for i in ids if stars.get(i) is not None]
    unrated = sorted(i for i in ids if stars.get(i) is None)
    if sort == "StarsDesc":
        return sorted(rated, key=lambda i: (stars[i], i), reverse=True) + unrated
    if sort == "StarsAsc":
        return unrated + sorted(rated, key=lambda i: (stars[i], i))
    if sort == "StarsDescFirstIdFirst":
        return unrated + sorted(rated, key=lambda i: (-stars[i], i))
    return sorted(rated, key=lambda i: (stars[i], i)) + unrated  # StarsAscLast


SORTS = ["StarsDesc", "StarsAsc", "StarsDescFirstIdFirst", "StarsAscLast"]
SMALL = {"a.jpg": 5, "b.jpg": 3, "c.jpg": 5, "d.jpg": None, "e.jpg": "no row", "f.jpg": 1}


def rate(h: Harness, stars: dict[int, int | None]) -> None:
    with h.kernel.db.write() as conn:
        conn.execute(insert(ratings), [{"file_id": i, "stars": s} for i, s in stars.items()])


@pytest.fixture
def small(tmp_path, library):
    """Six photos: two tied on 5 stars, one rated NULL, one without a row."""
    for name in SMALL:
        make_jpeg(library / name)
    with harness(tmp_path, extra_plugins={"ratings": Ratings}) as h:
        h.scan()
        ids = {e["name"]: e["id"] for e in h.get("/photos").json()["files"]}
        h.stars = {ids[n]: s for n, s in SMALL.items() if s != "no row"}
        h.ids = ids
        rate(h, h.stars)
        yield h


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return response.json()["photos"]


def test_hook_search_params(small, tmp_path):
    assert names(small.get("/photos", params={"min_stars": "4"})) == ["a.jpg", "c.jpg"]
    unknown = small.get("/photos", params={"colour": "red"})
    assert unknown.status_code == 400 and unknown.json()["parameter"] == "colour"
    with harness(tmp_path / "without") as bare:  # the plugin is off: its name is unknown
        refused = bare.get("/photos", params={"min_stars": "4"})
        assert refused.status_code == 400 and refused.json()["parameter"] == "min_stars"
    (tool,) = [t for t in small.get("/tools").json() if t["function"]["name"] == "search_photos"]
    arguments = tool["function"]["parameters"]["properties"]
    assert {"min_stars", "unrated", "name_has"} <= set(arguments)
    assert "integer" in str(arguments["min_stars"]) and "boolean" in str(arguments["unrated"])
    assert "At least this many stars." in str(arguments["min_stars"])
    search = small.kernel.tools["search_photos"]
    found = small.run(search.invoke, {"min_stars": 4}, ToolContext(small.kernel, None))
    assert [p["path"] for p in found["photos"]] == ["a.jpg", "c.jpg"] and found["total"] == 2


class Rival:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def search_params(self):
        return [SearchParam(self.name, str, "Taken.")]


@pytest.mark.parametrize(
    ("rival", "message"),
    [
        ("min_stars", r"'min_stars' is declared by both '(ratings|rival)' and '(ratings|rival)'"),
        ("sort", r"'sort' is declared by both 'kernel' and 'rival'"),
        ("limit", r"'limit' is declared by both 'kernel' and 'rival'"),
    ],
)
def test_a_search_param_declared_twice_stops_start_up(tmp_path, rival, message):
    plugins = {"ratings": Ratings, "rival": Rival(rival)}
    with pytest.raises(ConfigError, match=message), harness(tmp_path, extra_plugins=plugins):
        pytest.fail("the app started")


@pytest.mark.parametrize(
    ("params", "wanted"),
    [
        ({"min_stars": "3"}, ["a.jpg", "b.jpg", "c.jpg"]),  # .on: a row meeting the condition
        ({"min_stars": "0"}, ["a.jpg", "b.jpg", "c.jpg", "f.jpg"]),  # NULL stars: no match
        ({"unrated": "true"}, ["d.jpg", "e.jpg"]),  # negate: NULL stars, or no row at all
        ({"unrated": "false"}, ["a.jpg", "b.jpg", "c.jpg", "f.jpg"]),
        ({"name_has": "c"}, ["c.jpg"]),  # .of: a condition on files
        ({"min_stars": "3", "name_has": "b"}, ["b.jpg"]),  # filters AND together
        ({"unrated": "true", "name_has": "e"}, ["e.jpg"]),
        ({"min_stars": "5", "unrated": "true"}, []),
    ],
)
def test_hook_search_filters(small, params, wanted):
    response = small.get("/photos", params=params)
    assert names(response) == wanted and response.json()["total"] == len(wanted)
    paged = small.get("/photos", params={**params, "limit": 1, "offset": 1})
    assert names(paged) == wanted[1:2] and paged.json()["total"] == len(wanted)


def test_a_bad_filter_value_is_a_400_naming_it(small):
    bad = small.get("/photos", params={"min_stars": "lots"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "min_stars"
    bad = small.get("/photos", params={"unrated": "perhaps"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "unrated"


@pytest.mark.parametrize("sort", SORTS)
def test_hook_search_sorts(small, sort):
    by_id = {i: n for n, i in small.ids.items()}
    wanted = [by_id[i] for i in expected_order(small.stars, list(by_id), sort)]
    assert names(small.get("/photos", params={"sort": sort})) == wanted
    paged = []
    for offset in range(0, len(wanted), 4):
        paged += names(small.get("/photos", params={"sort": sort, "limit": 4, "offset": offset}))
    assert paged == wanted
    filtered = names(small.get("/photos", params={"sort": sort, "min_stars": "3"}))
    assert filtered == [n for n in wanted if n in ("a.jpg", "b.jpg", "c.jpg")]


def test_sort_names_are_checked(small, tmp_path):
    bad = small.get("/photos", params={"sort": "Colourful"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "sort"
    assert "StarsDesc" in bad.json()["detail"]

    class Twice:
        @hookimpl
        def search_sorts(self):
            return [SearchSort.keyed("StarsDesc", ratings, ratings.c.stars, INDEX, descending=True)]

    class Kernels:
        @hookimpl
        def search_sorts(self):
            return [SearchSort.keyed("NameAsc", ratings, ratings.c.stars, INDEX, descending=True)]

    for n, rival in enumerate((Twice(), Kernels())):
        plugins = {"ratings": Ratings, "rival": rival}
        with (
            pytest.raises(ConfigError, match=r"is offered twice"),
            harness(tmp_path / str(n), extra_plugins=plugins),
        ):
            pytest.fail("the app started")


class Extras:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int | None]] = []

    @hookimpl
    async def file_extras(self, files, user_id):
        self.calls.append(([f.name for f in files], user_id))
        return {
            f.id: {"shout": f.name.upper(), "id": -1, "name": "hijacked", "path": "/etc/passwd"}
            for f in files
        }


class MoreExtras:
    @hookimpl
    def file_extras(self, files, kernel):
        return {files[0].id: {"first": True}} if files else None


def test_hook_file_extras(tmp_path, library):
    make_jpeg(library / "cat.jpg")
    make_jpeg(library / "dog.jpg")
    extras = Extras()
    with harness(tmp_path, extra_plugins={"x": extras, "more": MoreExtras()}) as h:
        h.scan()
        entries = h.get("/photos", params={"limit": 2}).json()["files"]
        assert [(e["name"], e["path"], e["shout"]) for e in entries] == [
            ("cat.jpg", "cat.jpg", "CAT.JPG"),
            ("dog.jpg", "dog.jpg", "DOG.JPG"),
        ]  # extras add fields; the kernel's own (id, name, path, ...) are never replaced
        assert all(e["id"] > 0 for e in entries)
        assert entries[0]["first"] is True and "first" not in entries[1]
        assert extras.calls == [(["cat.jpg", "dog.jpg"], 1)]  # one call per page, batched
        assert h.get("/photos", params={"name_has": "x"}).status_code == 400  # not declared


class ReadsIndex:
    """A synchronous ``file_extras`` that reads the database, recording where it ran."""

    def __init__(self, field: str, seen: list[tuple[str, int, int]]) -> None:
        self.field, self.seen = field, seen

    @hookimpl
    def file_extras(self, files, kernel):
        with kernel.db.read() as conn:
            self.seen.append((self.field, threading.get_ident(), id(conn.connection)))
            count = conn.execute(select(func.count()).select_from(tables.files)).scalar_one()
        return {f.id: {self.field: count} for f in files}


def test_file_extras_of_synchronous_plugins_share_one_thread_and_snapshot(tmp_path, library):
    """The synchronous plugins answering one page run one after the other in one worker
    thread (not a thread hop each) and read through one read transaction, so their
    fields describe the same state of the database."""
    make_jpeg(library / "cat.jpg")
    seen: list[tuple[str, int, int]] = []
    plugins = {"a": ReadsIndex("a_count", seen), "b": ReadsIndex("b_count", seen)}
    with harness(tmp_path, extra_plugins=plugins) as h:
        h.scan()
        (entry,) = h.get("/photos").json()["files"]
        assert entry["a_count"] == entry["b_count"] == 1
        assert sorted(field for field, _thread, _conn in seen) == ["a_count", "b_count"]
        (_, thread_a, conn_a), (_, thread_b, conn_b) = seen
        assert thread_a == thread_b != threading.get_ident()
        assert conn_a == conn_b
        with h.kernel.db.read() as outer, h.kernel.db.read() as inner:
            assert inner is outer  # reentrant within a thread
        with h.kernel.db.read() as first:
            pass
        with h.kernel.db.read() as second:
            assert second is not first  # a new transaction once the first has ended


# --- a library big enough to walk the sort's index ----------------------------------------------

COUNT = 3_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    rng = random.Random(11)
    with harness(tmp_path_factory.mktemp("big"), extra_plugins={"ratings": Ratings}) as h:
        library_id = next(iter(h.kernel.libraries)).id
        now = time.time()
        rows, stars = [], {}
        for n in range(COUNT):
            name = f"{(n * 7919) % COUNT:05d}.jpg"
            rows.append(
                {"id": n + 1, "library_id": library_id, "rel_path": f"d{n % 5}/{name}",
                 "parent_dir": f"d{n % 5}", "name": name, "size": 1, "mtime_ns": 0,
                 "media_type": "photo", "content_hash": f"{n:064x}", "status": "present",
                 "discovered_at": now, "updated_at": now, "hashed_at": now}
            )  # fmt: skip
            if n % 10 == 3:
                continue  # no row
            stars[n + 1] = None if n % 10 == 7 else rng.randint(1, 5)  # ties aplenty
        with h.kernel.db.write() as conn:
            conn.execute(insert(files), rows)
        rate(h, stars)
        h.stars = stars
        yield h


def ids_of(h: Harness, **params) -> tuple[list[int], int]:
    response = h.get("/photos", params={"recursive": "true", **params})
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["files"]], response.json()["total"]


BIG_FILTERS: list[tuple[dict[str, str], Callable[[dict, int], bool]]] = [
    ({}, lambda stars, i: True),
    ({"min_stars": "1"}, lambda stars, i: stars.get(i) is not None),  # walked, own table
    ({"min_stars": "4"}, lambda stars, i: (stars.get(i) or 0) >= 4),  # few: sorted
    ({"unrated": "false", "name_has": "1"}, lambda stars, i: stars.get(i) is not None),
    ({"unrated": "true"}, lambda stars, i: stars.get(i) is None),
]


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize(("params", "matches"), BIG_FILTERS, ids=lambda v: str(v))
def test_keyed_sorts_walk_the_index_in_the_promised_order(big, sort, params, matches):
    names = {}
    if "name_has" in params:
        names = {
            e["id"]: e["name"]
            for e in big.get("/photos", params={"recursive": "true"}).json()["files"]
        }
    ids = [
        i
        for i in range(1, COUNT + 1)
        if matches(big.stars, i) and ("name_has" not in params or "1" in names[i])
    ]
    wanted = expected_order(big.stars, ids, sort)
    assert ids_of(big, sort=sort, **params) == (wanted, len(wanted))
    for offset in (0, 150, DEEP_OFFSET, len(wanted) - 30):
        page = ids_of(big, sort=sort, limit=100, offset=max(offset, 0), **params)
        assert page == (wanted[max(offset, 0) : max(offset, 0) + 100], len(wanted)), offset


def test_the_big_library_takes_both_plans():
    rated = sum(1 for n in range(COUNT) if n % 10 not in (3, 7))
    assert rated > WALK_INDEX_ABOVE > rated * 2 // 5 and COUNT > DEEP_OFFSET


class CountedRatings(Ratings):
    """Ratings that count how often a listing asks it for its filters."""

    built: list[dict[str, str]] = []

    @hookimpl
    def search_filters(self, query):
        CountedRatings.built.append(dict(query.params))
        return super().search_filters(query)


def test_a_listing_s_filters_are_built_once_for_its_parameters(tmp_path, library):
    """``search_filters`` builds SQL from the query alone, so the kernel keeps a listing's
    statements for the next request with the same parameters (other pages, other data)
    and builds them again for other parameters, another user or a Shuffle."""
    for name in SMALL:
        make_jpeg(library / name)
    CountedRatings.built = []
    with harness(tmp_path, extra_plugins={"ratings": CountedRatings}) as h:
        h.scan()
        ids = {e["name"]: e["id"] for e in h.get("/photos").json()["files"]}
        rate(h, {ids[n]: s for n, s in SMALL.items() if s not in ("no row", None)})
        CountedRatings.built = []
        assert names(h.get("/photos", params={"min_stars": "3"})) == ["a.jpg", "b.jpg", "c.jpg"]
        assert names(h.get("/photos", params={"min_stars": "3", "limit": 1, "offset": 2})) == [
            "c.jpg"
        ]
        rate(h, {ids["e.jpg"]: 4})  # new data, same statements
        assert names(h.get("/photos", params={"min_stars": "3"})) == [
            "a.jpg", "b.jpg", "c.jpg", "e.jpg",
        ]  # fmt: skip
        assert len(CountedRatings.built) == 1
        assert names(h.get("/photos", params={"min_stars": "5"})) == ["a.jpg", "c.jpg"]
        assert len(CountedRatings.built) == 2
        bob = {"Authorization": f"Bearer {h.login_as('bob')}"}
        assert names(h.get("/photos", params={"min_stars": "5"}, headers=bob)) == [
            "a.jpg", "c.jpg",
        ]  # fmt: skip
        assert len(CountedRatings.built) == 3
        before = len(CountedRatings.built)
        for _ in range(2):
            shuffled = names(h.get("/photos", params={"min_stars": "5", "sort": "Shuffle"}))
            assert sorted(shuffled) == ["a.jpg", "c.jpg"]
        assert len(CountedRatings.built) == before + 2
