"""Time, passed in: the master's logic asks a Clock instead of the time module, so tests and
simulators can run polls and timeouts step by step, without waiting."""
from __future__ import annotations

import threading
import time
from typing import Callable


class Clock:
    """The real time."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM = Clock()


class ManualClock(Clock):
    """Time that moves only when told. ``sleep`` moves it at once, so a poll loop runs its rounds
    without waiting; ``on_advance`` callbacks see each new time (a simulated node may finish a
    sync meanwhile)."""

    def __init__(self, start: float = 1_000_000_000.0):
        self._now = start
        self._lock = threading.Lock()
        self.on_advance: list[Callable[[float], None]] = []

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
            now = self._now
        for callback in list(self.on_advance):
            callback(now)
