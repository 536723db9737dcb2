"""``GET /image/metadata``: one file's facts, its EXIF, and every plugin's extras.

The handler receives its plugin instance as the ``plugin`` dependency, which the
plugin's Router provides (and names, for the annotation, in its signature namespace).

The response stays a plain mapping, not a ``msgspec.Struct``: it is the kernel's file
entry (``kernel.catalog.entries``), which carries whatever fields the other enabled
plugins add (tags, favorite, ...), and a Struct cannot carry fields it does not name.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery, QueryParameter
from sqlalchemy import Row

from kernel.core import Kernel
from kernel.deps import CurrentUser
from kernel.libraries import PathRefused, ResolvedPath
from kernel.types import FileRef

from . import store
from .plugin import Plugin  # loaded lazily by Plugin.routes(), once the module is complete

#: The plugin instance whose Router serves the request (a class, not a name: a string
#: forward reference is one cached object shared by every module that writes it).
PluginDep = NamedDependency[Plugin]


def _file_and_exif(kernel: Kernel, resolved: ResolvedPath) -> tuple[FileRef, Row[Any] | None]:
    """The file's row and its EXIF row, read in one snapshot (raises PathRefused /
    NotFound)."""
    if resolved.abs_path.is_dir():
        raise PathRefused(400, "path is a folder; /photos lists folders")
    with kernel.db.read():  # the two reads below share it (``Database.read`` is reentrant)
        ref = kernel.index.get(resolved.library.id, resolved.rel_path)
        if ref is None:
            raise NotFoundException(f"{resolved.rel_path} is not indexed yet; try again shortly")
        return ref, store.load(kernel, ref.id)


async def file_metadata(
    kernel: Kernel, library: str | int | None, path: str, user_id: int | None
) -> dict[str, Any]:
    """The metadata document of one indexed file (raises PathRefused / NotFound). The
    rows and every plugin's extras are read in one worker-thread hop."""
    resolved = kernel.libraries.resolve(library, path)
    (ref, row), (entry,) = await kernel.catalog.read_entries(
        lambda: _file_and_exif(kernel, resolved), lambda found: [found[0]], user_id
    )
    # After the extras: the full EXIF replaces the compact listing form of our own extra.
    if row is None or ref.content_hash is None or row.content_hash != ref.content_hash:
        entry.update(exif=None, exif_status="pending", exif_error=None, date_taken=None)
    else:
        entry.update(
            exif=store.full_json(row),
            exif_status=row.status,
            exif_error=row.error,
            date_taken=store.iso_date(row.date_taken, row.utc_offset_minutes),
        )
    return entry


@get("/image/metadata", summary="A file's size, dates, EXIF and every plugin's extras")
async def image_metadata(
    plugin: PluginDep,
    user: CurrentUser,
    file_path: Annotated[str, QueryParameter(name="path")],
    library: FromQuery[str | None] = None,
) -> dict[str, Any]:
    return await file_metadata(plugin.kernel, library, file_path, user.id)


ROUTES = [image_metadata]
