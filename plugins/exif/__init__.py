"""exif: capture date, camera, lens, exposure and GPS of every photo and video.

The extraction core (``extract``, ``pool``, the container and tag readers) is pure and
tested on its own; this module wires it into imageapi: the ``image_exif`` table (its
``migrations/`` folder is found by convention), ingest on ``on_hashed`` and from the
backlog, ``GET /image/metadata``, camera / lens / GPS / date filters and date-taken
sorts for every listing (``/photos`` and the kernel's ``search_photos`` tool), the
``date_taken_table`` answer that memories and other features group by, and the
``get_photo_metadata`` LLM tool.

The plugin is a class: the kernel builds one ``Plugin`` per kernel with the validated
``[plugins.exif]`` section as ``self.settings``; the instance owns its worker processes
and threads (``ingest.Ingester``) and ``on_shutdown`` stops them.

Only ``Plugin`` and ``ExifSettings`` are reached through this module, and lazily: the
metadata worker processes import the parsers beside it (``pool``), and every module a
package's ``__init__`` imports is loaded in them too — the web framework and the
database layer cost each worker 55 MB.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("Plugin", "ExifSettings"):
        from . import plugin

        return getattr(plugin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
