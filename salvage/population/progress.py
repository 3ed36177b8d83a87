"""Progress of long runs on stderr: counts, rates and the time left; silent when not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Meter:
    """Counts things (resources, patients, files) and prints a rate and an estimate of the time
    left at most every `interval` seconds, only when the stream is a terminal (logs and pipes
    stay quiet). `total` may be unknown (None): then no estimate is given."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        stream: TextIO | None = None,
        interval: float = 1.0,
        force: bool | None = None,
    ) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = force if force is not None else bool(isatty and isatty())
        self.started = time.monotonic()
        self._last = 0.0
        self.note = ""

    def add(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self._print(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"salvage: {self.done:,} {self.what} ({rate:,.0f}/s)"
        if self.total:
            text = f"salvage: {self.done:,}/{self.total:,} {self.what} ({rate:,.0f}/s)"
            if rate > 0 and self.done < self.total:
                text += f", about {_duration((self.total - self.done) / rate)} left"
        return text + (f" {self.note}" if self.note else "")

    def _print(self, now: float) -> None:
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._last:
            self._print(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
