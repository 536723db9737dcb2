"""Calling hooks from async code.

pluggy calls implementations synchronously and knows nothing of coroutines, so the kernel
walks the implementations itself, in pluggy's order (``tryfirst`` first, later
registrations before earlier ones), and:

* awaits ``async def`` implementations (and runs blocking sync ones in a worker thread
  for notification and decision hooks, so a plugin never stalls the event loop);
* for notification hooks, isolates each plugin: an exception or a timeout is logged with
  the plugin's name and the next implementation still runs;
* for ``firstresult`` hooks, returns the first non-None result *after* awaiting it, which
  pluggy alone cannot do for coroutines.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import pluggy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HookFailure:
    """One plugin's failure in a notification hook, for callers that record it."""

    plugin: str
    hook: str
    error: str


class Dispatcher:
    """Hook calling with the kernel's semantics; ``kernel`` is passed to every hook.

    Called only from ``kernel.hooks`` (the typed facade); the hook's kind was checked
    against each implementation when the plugin manager was built."""

    def __init__(self, pm: pluggy.PluginManager, timeout: float = 120.0) -> None:
        self.pm = pm
        self.timeout = timeout
        self.bound: dict[str, Any] = {}
        #: ``observe(plugin, hook)`` → a context manager around each awaited hook call
        #: (metrics, tracing); with none, a call costs one truth test more.
        self.observers: list[Callable[[str, str], AbstractContextManager[Any]]] = []
        #: A read transaction for the hooks that only read the database (``file_extras``)
        #: to share; the kernel sets ``kernel.db.read``.
        self.snapshot: Callable[[], AbstractContextManager[Any]] | None = None

    def bind(self, **kwargs: Any) -> None:
        """Arguments passed to every hook that accepts them (the kernel itself)."""
        self.bound.update(kwargs)

    def implementations(self, hook_name: str) -> list[pluggy.HookImpl]:
        """Implementations in the order pluggy would call them."""
        caller = getattr(self.pm.hook, hook_name)
        return list(reversed(caller.get_hookimpls()))

    def has_implementations(self, hook_name: str) -> bool:
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def _arguments(self, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.bound, **kwargs}
        try:
            return {name: merged[name] for name in (*impl.argnames, *impl.kwargnames)}
        except KeyError as exc:
            raise TypeError(
                f"plugin {impl.plugin_name!r} implements {impl.function.__name__} with"
                f" argument {exc.args[0]!r}, which the hook does not pass"
            ) from None

    def _observed(self, impl: pluggy.HookImpl) -> AbstractContextManager[Any]:
        """The observers' context managers around one implementation's call (metrics,
        tracing); nothing to enter when there are none, one without an ExitStack."""
        if not self.observers:
            return nullcontext()
        hook = impl.opts.get("specname") or impl.function.__name__
        if len(self.observers) == 1:  # the usual case (metrics or tracing)
            return self.observers[0](impl.plugin_name, hook)
        stack = ExitStack()
        for observe in self.observers:
            stack.enter_context(observe(impl.plugin_name, hook))
        return stack

    async def _run(self, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        with self._observed(impl):
            return await self._call(impl, kwargs)

    async def _call(self, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        function: Callable[..., Any] = impl.function
        arguments = self._arguments(impl, kwargs)
        if inspect.iscoroutinefunction(function):
            return await function(**arguments)
        result = await asyncio.to_thread(function, **arguments)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def notify(self, hook_name: str, **kwargs: Any) -> list[HookFailure]:
        """Run every implementation; failures are logged and returned, never raised."""
        return (await self._notify(hook_name, (), kwargs))[1]

    async def notify_results(
        self, hook_name: str, skip: Collection[str] = (), **kwargs: Any
    ) -> dict[str, Any]:
        """Like ``notify`` but returns each plugin's result (None for a failed one);
        the plugins named in ``skip`` are not called."""
        return (await self._notify(hook_name, skip, kwargs))[0]

    async def _notify(
        self, hook_name: str, skip: Collection[str], kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], list[HookFailure]]:
        results: dict[str, Any] = {}
        failures: list[HookFailure] = []
        for impl in self.implementations(hook_name):
            if impl.plugin_name in skip:
                continue
            results[impl.plugin_name] = None
            try:
                # asyncio.timeout keeps a cancellation that lands as the hook returns;
                # Python 3.11's wait_for drops it
                async with asyncio.timeout(self.timeout):
                    results[impl.plugin_name] = await self._run(impl, kwargs)
            except TimeoutError:
                message = f"timed out after {self.timeout:g} s"
                log.error("plugin %s: %s %s", impl.plugin_name, hook_name, message)
                failures.append(HookFailure(impl.plugin_name, hook_name, message))
            except Exception as exc:  # isolation is the point: log, record, go on
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
                failures.append(HookFailure(impl.plugin_name, hook_name, repr(exc)))
        return results, failures

    async def first(self, hook_name: str, *, after: object = None, **kwargs: Any) -> Any:
        """``firstresult``: the first non-None awaited result, or None. Errors propagate.

        ``after`` (a registered plugin object) asks only the implementations that come
        after that plugin's: how a decision refines the answer of the ones behind it. A
        plugin that does not implement the hook leaves none to ask."""
        impls = self.implementations(hook_name)
        if after is not None:
            mine = next((n for n, impl in enumerate(impls) if impl.plugin is after), len(impls))
            impls = impls[mine + 1 :]
        for impl in impls:
            result = await self._run(impl, kwargs)
            if result is not None:
                return result
        return None

    def collect(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Contribution hooks called synchronously: non-None results, errors propagate."""
        results: list[Any] = []
        for impl in self.implementations(hook_name):
            result = impl.function(**self._arguments(impl, kwargs))
            if inspect.isawaitable(result):
                raise TypeError(f"plugin {impl.plugin_name!r}: {hook_name} must not be async")
            if result is not None:
                results.append(result)
        return results

    def collect_flat(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """``collect`` for hooks returning sequences, flattened in plugin order."""
        return [item for result in self.collect(hook_name, **kwargs) for item in result]

    def collect_flat_by_plugin(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``collect_flat`` with the name of the plugin each item came from."""
        found: list[tuple[str, Any]] = []
        for impl in self.implementations(hook_name):
            result = impl.function(**self._arguments(impl, kwargs))
            found.extend((impl.plugin_name, item) for item in result or ())
        return found

    def first_sync(self, hook_name: str, **kwargs: Any) -> Any:
        """``firstresult`` for synchronous-only hooks, callable outside the event loop."""
        for impl in self.implementations(hook_name):
            result = impl.function(**self._arguments(impl, kwargs))
            if result is not None:
                return result
        return None

    async def acollect(
        self, hook_name: str, *, in_snapshot: bool = False, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Contribution hooks that may be async: ``(plugin, result)`` for non-None results,
        one implementation after the other (run at once, they only fought over the GIL and
        each warmed a database connection of its own).

        Synchronous implementations next to each other in that order run in one worker
        thread, one after the other, instead of a thread hop each (a listing asks four to
        six plugins for its extras; each hop woke the event loop once more). With
        ``in_snapshot``, that thread holds ``snapshot`` (``kernel.db.read``) around them:
        their reads are one transaction."""
        results: list[tuple[str, Any]] = []
        impls = self.implementations(hook_name)
        for is_async, group in groupby(impls, lambda i: inspect.iscoroutinefunction(i.function)):
            batch = list(group)
            if is_async:
                found = [(impl, await self._run(impl, kwargs)) for impl in batch]
            else:
                together = self.snapshot if in_snapshot else None
                found = await asyncio.to_thread(self._run_in_thread, batch, kwargs, together)
            for impl, result in found:
                if inspect.isawaitable(result):
                    result = await result
                if result is not None:
                    results.append((impl.plugin_name, result))
        return results

    def sync_only(self, hook_name: str) -> bool:
        """Whether every implementation of a hook is a plain function (``collect_here``)."""
        return not any(
            inspect.iscoroutinefunction(i.function) for i in self.implementations(hook_name)
        )

    def collect_here(
        self, hook_name: str, *, in_snapshot: bool = False, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """``acollect`` of a ``sync_only`` hook, called in the worker thread the caller is
        already in: a listing reads its page and its plugins' extras in one thread hop
        instead of two. A result that is awaitable is returned as it is, for the caller
        to await on the event loop, as ``acollect`` would."""
        together = self.snapshot if in_snapshot else None
        found = self._run_in_thread(self.implementations(hook_name), kwargs, together)
        return [(impl.plugin_name, result) for impl, result in found if result is not None]

    def _run_in_thread(
        self,
        impls: list[pluggy.HookImpl],
        kwargs: dict[str, Any],
        together: Callable[[], AbstractContextManager[Any]] | None,
    ) -> list[tuple[pluggy.HookImpl, Any]]:
        """Synchronous implementations called in order in this (worker) thread, each
        observed as ``_run`` observes it."""
        found = []
        with together() if together is not None else nullcontext():
            for impl in impls:
                with self._observed(impl):
                    found.append((impl, impl.function(**self._arguments(impl, kwargs))))
        return found
