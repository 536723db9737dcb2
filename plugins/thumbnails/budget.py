"""A bound on the pixels that renders hold decoded at once, across the render threads.

A 169-megapixel PNG costs about 550 MiB while it is decoded; with one render thread per
CPU, a folder of such files would take that times the number of threads. Each decode
takes its decoded pixel count from the budget before it loads (JPEGs count at their
drafted size, a fraction of the full one) and gives it back when the picture has been
shrunk. Small pictures render side by side; a picture larger than the whole budget
waits until it can run alone, and then runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PixelBudget:
    def __init__(self, pixels: int) -> None:
        self.limit = max(1, pixels)
        self.in_use = 0
        self.peak = 0  # the most ever held at once (for tests and benchmarks)
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Wait until ``pixels`` fit beside what others hold (or nothing is held), keep
        them for the block."""
        wanted = min(max(pixels, 0), self.limit)
        with self._changed:
            while self.in_use and self.in_use + wanted > self.limit:
                self._changed.wait()
            self.in_use += wanted
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= wanted
                self._changed.notify_all()
