"""The imageapi microkernel.

Plugins import what they need from here: the ``hookimpl`` marker and the types that
cross the plugin boundary. Everything else a plugin uses lives in a kernel submodule
(``kernel.db``, ``kernel.libraries``, ...).
"""

from kernel.markers import hookimpl, hookspec
from kernel.plugin import Plugin
from kernel.types import (
    FileRef,
    InvalidParameter,
    RenderResult,
    SearchFilter,
    SearchParam,
    SearchQuery,
    SearchSort,
    SortPlan,
    Tool,
    ToolContext,
)

__all__ = [
    "FileRef",
    "InvalidParameter",
    "Plugin",
    "RenderResult",
    "SearchFilter",
    "SearchParam",
    "SearchQuery",
    "SearchSort",
    "SortPlan",
    "Tool",
    "ToolContext",
    "hookimpl",
    "hookspec",
]
