"""memories: "on this day" — photos and videos taken in the same day, week or month of
the year as today, in earlier years, grouped by year, newest year first.

Dates come from the ``date_taken_table`` hook (the exif plugin answers it) and fall
back to the files' mtime when no plugin does; this plugin never imports another one.
Each item is the kernel's file entry (``kernel.catalog.entries``: size, mtime, content
hash and every plugin's extras) with memories' own ``date_taken``. Folders in
``EXCLUDED_DIRS`` are left out (``/private`` and below, or any folder named ``@eaDir``
anywhere).

The plugin is a class: the kernel builds one ``Plugin`` per kernel with the validated
``[plugins.memories]`` section as ``self.settings``; its route reaches the instance
through a Router dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

import kernel
from kernel import hookimpl
from kernel.versioned import VersionedCache

from .answers import MAX_ANSWERS, MAX_BYTES
from .settings import MemoriesSettings

if TYPE_CHECKING:
    from kernel.core import Kernel

__all__ = ["MemoriesSettings", "Plugin"]


class Plugin(kernel.Plugin[MemoriesSettings]):
    """The memories plugin of one kernel."""

    def __init__(self, kernel: Kernel, settings: MemoriesSettings) -> None:
        super().__init__(kernel, settings)
        #: encoded answers, until the database changes
        self.answers = VersionedCache[bytes](MAX_ANSWERS, weigh=len, max_weight=MAX_BYTES)

    @staticmethod
    @hookimpl
    def plugin_settings() -> type[msgspec.Struct]:
        return MemoriesSettings

    @hookimpl
    def routes(self) -> list[object]:
        """``GET /memories``; its handler receives this instance as ``plugin``."""
        from .routes import memories  # the web module is loaded with the app, not before

        return [self.router([memories])]
