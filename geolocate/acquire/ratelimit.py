"""A requests-per-minute ceiling shared by every request to the Mapillary API.

A token bucket that lets a burst of one second's worth of requests through, then spaces the
rest evenly. Each caller reserves its slot under a lock and sleeps outside it, so waiting never
blocks the others' bookkeeping and an injected fake `sleep` (tests) never spins.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """At most `per_minute` acquisitions per minute on average, bursts up to `per_minute / 60`.

    Args:
        per_minute: the ceiling.
        clock: monotonic seconds (injectable for tests).
        sleep: the coroutine used to wait (injectable for tests).
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._rate = per_minute / 60.0  # tokens per second
        self._capacity = max(1.0, self._rate)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a slot; returns how long this caller had to wait (seconds)."""
        async with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            self._tokens -= 1.0  # may go negative: later callers queue behind this reservation
            wait = max(0.0, -self._tokens / self._rate)
        if wait > 0:
            await self._sleep(wait)
        return wait
