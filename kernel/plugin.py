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

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from kernel.core import Kernel

S = TypeVar("S")


class Plugin(Generic[S]):
    """Subclass this (``class Thumbnails(Plugin[ThumbnailSettings])``) or write any class
    whose constructor takes ``(kernel, settings)``."""

    def __init__(self, kernel: Kernel, settings: S) -> None:
        self.kernel = kernel
        self.settings = settings
