"""The base of plugins that hold settings or resources.

A plugin may be a module of hook functions (no state), or a class: the manager builds it
once per kernel as ``PluginClass(kernel, settings)``, after validating its
``plugins.toml`` section against the type its ``plugin_settings`` declares, and registers
the instance, so its hook implementations are methods that use ``self.settings`` and
the resources the constructor made. ``on_shutdown`` releases them. Declaration hooks
(``plugin_settings``, ``migrations``, ``cli_commands``) are ``@staticmethod``: they are
read before any instance exists.

A built-in plugin package names its class ``Plugin`` (``plugins/NAME/__init__.py``); an
entry point may point at the class itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from litestar import Router

    from kernel.core import Kernel

S = TypeVar("S")


class Plugin(Generic[S]):
    """Subclass this (``class Thumbnails(Plugin[ThumbnailSettings])``) or write any class
    whose constructor takes ``(kernel, settings)``."""

    def __init__(self, kernel: Kernel, settings: S) -> None:
        self.kernel = kernel
        self.settings = settings

    def router(self, handlers: Sequence[Any]) -> Router:
        """The plugin's route handlers mounted at ``/``, each able to declare
        ``plugin: NamedDependency[ThisClass]`` to receive this very instance (no lookup by
        name): what a ``routes`` hook of a plugin class returns."""
        from litestar import Router
        from litestar.di import NamedDependency, Provide

        def provide_plugin(user: Any) -> Plugin[S]:
            # ``user`` is not used: it orders the handler's dependencies (``provide_user``)
            return self

        # Litestar is imported here, not with this module, so that a process importing
        # only ``kernel`` (an EXIF worker: the parsers and ``kernel.types``) stays small;
        # the annotation is set as an object, which resolving it then needs no global.
        provide_plugin.__annotations__["user"] = NamedDependency[Any]

        provide = Provide(provide_plugin, sync_to_thread=False)
        return Router(path="/", route_handlers=list(handlers), dependencies={"plugin": provide})
