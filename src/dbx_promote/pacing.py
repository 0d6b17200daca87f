"""How fast the adapter sends: a concurrency limit that follows throttling, and a pacer
that spaces imports to the service's rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Throttle:
    """A concurrency limit that halves on 429 and creeps back up on success (AIMD).

    The service allows about 30 imports per second; hammering it with a fixed pool just
    produces a storm of 429s. Every worker takes a slot before a write and gives it back
    after, so the number in flight follows what the workspace currently accepts.
    """

    def __init__(self, limit: int) -> None:
        self.max_limit = max(1, limit)
        self.limit = self.max_limit
        self._in_flight = 0
        self._successes = 0
        self._cond = threading.Condition()
        self.throttled = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def on_throttled(self) -> None:
        with self._cond:
            self.throttled += 1
            self.limit = max(1, self.limit // 2)
            self._successes = 0

    def on_success(self) -> None:
        with self._cond:
            self._successes += 1
            if self.limit < self.max_limit and self._successes >= self.limit:
                self.limit += 1
                self._successes = 0
                self._cond.notify_all()


class Pacer:
    """Spaces imports at most ``rate`` per second, shared by every worker thread.

    Each call reserves the next free slot and sleeps until it, once: sending at the
    service's pace avoids the 429s (and the halved concurrency) that bursting would cause.
    """

    def __init__(
        self,
        rate: float | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._sleep = sleep
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)
