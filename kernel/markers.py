"""The pluggy markers and the hook kinds, exported from one place so every plugin and
every spec spells them the same.

A spec is declared with the decorator of its kind; the kind is code, not prose: the
plugin manager refuses, at start-up, an implementation that does not fit it (an
``async def`` for a synchronous hook, a wrapper), and ``kernel.hooks`` calls each kind
with its own semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pluggy

PROJECT_NAME = "imageapi"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Kind = Literal["declaration", "notification", "contribution", "decision"]
F = TypeVar("F", bound=Callable[..., Any])
CONTRACT_ATTRIBUTE = "imageapi_contract"


@dataclass(frozen=True)
class Contract:
    """How a hook is called and how its results combine.

    * ``declaration``: read off the plugin object (module, or class as a staticmethod)
      before any kernel exists; synchronous.
    * ``notification``: every implementation runs, isolated from the others.
    * ``contribution``: every implementation runs; the non-None results are collected.
    * ``decision``: ``firstresult``; the first non-None answer wins.

    ``sync``: implementations must be plain functions (they build things, not do I/O).
    """

    kind: Kind
    sync: bool


def _spec(kind: Kind, sync: bool, firstresult: bool = False) -> Callable[[F], F]:
    def mark(function: F) -> F:
        setattr(function, CONTRACT_ATTRIBUTE, Contract(kind, sync))
        return hookspec(firstresult=firstresult)(function)

    return mark


def declaration(function: F) -> F:
    """A hook read from the plugin object itself, once, before the kernel is built."""
    return _spec("declaration", True)(function)


def notification(function: F) -> F:
    """Every implementation runs; one failing is logged and the others still run."""
    return _spec("notification", False)(function)


def contribution(*, sync: bool = False) -> Callable[[F], F]:
    """Every implementation runs; non-None results are collected in plugin order."""
    return _spec("contribution", sync)


def decision(*, sync: bool = False) -> Callable[[F], F]:
    """``firstresult``: implementations run in order, the first non-None answer wins."""
    return _spec("decision", sync, firstresult=True)


def contract_of(spec_function: Callable[..., Any]) -> Contract | None:
    return getattr(spec_function, CONTRACT_ATTRIBUTE, None)
