"""The imageapi microkernel.

Plugins import what they need from here: the ``hookimpl`` marker and the types that
cross the plugin boundary. Everything else a plugin uses lives in a kernel submodule
(``kernel.db``, ``kernel.libraries``, ...).
"""

from kernel.markers import hookimpl, hookspec
from kernel.types import (
    FileRef,
    InvalidParameter,
    RenderResult,
    SearchFilter,
    SearchQuery,
    SearchSort,
    SortPlan,
    Tool,
)

__all__ = [
    "FileRef",
    "InvalidParameter",
    "RenderResult",
    "SearchFilter",
    "SearchQuery",
    "SearchSort",
    "SortPlan",
    "Tool",
    "hookimpl",
    "hookspec",
]
