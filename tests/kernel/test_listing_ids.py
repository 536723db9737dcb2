"""Kept orderings of deep listings hold 4-byte ids while the ids fit, and stay right when
an id does not (SQLite's rowids go up to 2**63; ``files.id`` on PostgreSQL is 4 bytes)."""

from __future__ import annotations

import time
from array import array

from sqlalchemy import insert

from kernel.listing import DEEP_OFFSET, extended
from kernel.tables import files
from kernel.testing import harness

BIG_ID = 2**32 + 7


def test_an_ordering_is_kept_in_four_byte_ids_until_one_does_not_fit():
    small = extended(None, [5, 3, 2**32 - 1])
    assert small.itemsize == 4 and small.tolist() == [5, 3, 2**32 - 1]
    more = extended(small, [9, 10])
    assert more.itemsize == 4 and more.tolist() == [5, 3, 2**32 - 1, 9, 10]
    widened = extended(more, [11, BIG_ID])
    assert widened.itemsize == 8
    assert widened.tolist() == [5, 3, 2**32 - 1, 9, 10, 11, BIG_ID]
    assert extended(widened, [12]).itemsize == 8
    assert extended(None, [BIG_ID, 1]).tolist() == [BIG_ID, 1]
    assert more.tolist() == [5, 3, 2**32 - 1, 9, 10]  # a kept array is never changed
    assert isinstance(extended(None, []), array)


def test_deep_pages_of_a_library_with_ids_past_four_bytes(tmp_path, library):
    """Names sort small and huge ids together: every deep page is the expected slice."""
    count = DEEP_OFFSET + 1_500
    url = f"sqlite:///{tmp_path / 'big-ids.db'}"
    with harness(tmp_path, [], database_url=url) as h:
        library_id = next(iter(h.kernel.libraries)).id
        now, rows = time.time(), []
        for n in range(count):
            name = f"{(n * 7919) % count:05d}.jpg"
            rows.append(
                {"id": n + 1 if n % 2 else BIG_ID + n, "library_id": library_id,
                 "rel_path": name, "parent_dir": "", "name": name, "size": 1, "mtime_ns": 0,
                 "media_type": "photo", "content_hash": f"{n:064x}", "status": "present",
                 "discovered_at": now, "updated_at": now, "hashed_at": now}
            )  # fmt: skip
        with h.kernel.db.write() as conn:
            conn.execute(insert(files), rows)
        wanted = [r["id"] for r in sorted(rows, key=lambda r: r["name"])]
        for offset in (DEEP_OFFSET, DEEP_OFFSET + 700, count - 40, DEEP_OFFSET + 100):
            response = h.get("/photos", params={"limit": 100, "offset": offset})
            assert response.status_code == 200, response.text
            page = [entry["id"] for entry in response.json()["files"]]
            assert page == wanted[offset : offset + 100], offset
