"""A minimal progress bar on stderr: drawn only when stderr is a terminal, silent otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress("calibrate", total) as bar: bar.update(n)``."""

    def __init__(self, label: str, total: int, stream=None, enabled: bool | None = None):
        self.label = label
        self.total = max(int(total), 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.enabled = isatty if enabled is None else enabled
        self._start = time.monotonic()

    def __enter__(self) -> "Progress":
        self._draw()
        return self

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // self.total
        elapsed = time.monotonic() - self._start
        self.stream.write(
            f"\r{self.label:12s} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done}/{self.total} {elapsed:5.1f}s"
        )
        self.stream.flush()

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
