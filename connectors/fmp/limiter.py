"""One rate limiter shared by every concurrent request of a run.

Two guarantees, enforced together:
  * a hard one: never more than ``limit`` calls started in any ``window_s``
    window (a log of start times, checked before each call);
  * a smooth one: calls are spaced ``window_s / (limit * safety)`` apart, so
    that FMP's own counter (which sees our calls a little later than we start
    them) never sees a burst at a window's edge.

Spacing is a schedule, not a sleep after each call: a sleep ends late (the
event loop wakes on a millisecond tick, and threads wait for the interpreter),
and a call that starts late moves the next slot only one interval on from
where it should have been, not from when it ran. Lateness is made up for at
most ``catch_up_s`` back (a stall of a second is not followed by a second's
burst): in any span of t seconds at most (t + catch_up_s) / interval + 1 calls
start. At 300 calls/min, where slots are 200 ms apart, this changes nothing,
at 60,000/min (1 ms apart) it is the difference between the pace asked for
and a third of it.

A 429 halves the pace (``slow_down``); successes win it back gradually.
Clock and sleep are injectable so a property test can run minutes of calls
in milliseconds.

FMP counts calls per API key, not per run: the daily flow ingests its three
datasets at once, each on its own event loop and thread. Their limiters draw
on one :class:`Budget` per key (:func:`shared_budget`), so together they keep
the plan's limit, and a 429 seen by one slows them all.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class Budget:
    """The call log and pace of one API key: thread-safe, shared by every limiter drawing on it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: deque[float] = deque()
        self.next_at = 0.0
        self.factor = 1.0


_BUDGETS: dict[tuple[str, int | None, float], Budget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(base_url: str, api_key: str | None, limit: int | None, window_s: float) -> Budget:
    """This process's budget for one key at one endpoint and limit (the key is hashed, never kept)."""
    account = hashlib.sha256(f"{base_url}\0{api_key or ''}".encode()).hexdigest()
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault((account, limit, window_s), Budget())


class RateLimiter:
    def __init__(
        self,
        calls_per_minute: int | None,
        max_concurrency: int = 8,
        *,
        window_s: float = 60.0,
        safety: float = 0.98,
        min_factor: float = 0.1,
        catch_up_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        budget: Budget | None = None,
    ) -> None:
        if calls_per_minute is not None and calls_per_minute < 1:
            raise ValueError("calls_per_minute must be >= 1")
        self.limit = calls_per_minute
        self.max_concurrency = max_concurrency
        self.window_s = window_s
        self.safety = safety
        self.min_factor = min_factor
        self.catch_up_s = catch_up_s
        self.budget = budget or Budget()
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._sem = asyncio.Semaphore(max_concurrency)
        self.calls = 0
        self.slowdowns = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    @property
    def factor(self) -> float:
        return self.budget.factor

    @property
    def interval(self) -> float:
        """Current spacing between call starts (0 when unlimited)."""
        if self.limit is None:
            return 0.0
        return self.window_s / (self.limit * self.safety * self.factor)

    async def acquire(self) -> float:
        """Wait for a call slot; returns the (clock) time the call may start."""
        budget = self.budget
        async with self._lock:  # FIFO: this loop's waiters are served in arrival order
            while True:
                with budget.lock:  # other threads' limiters on the same key test and book here too
                    now = self._clock()
                    wait = budget.next_at - now
                    if self.limit is not None:
                        # One expression for both the test and the wait: `a <= b - w` and
                        # `a + w - b` can disagree by one ulp and let a call through early.
                        while budget.log and budget.log[0] + self.window_s <= now:
                            budget.log.popleft()
                        if len(budget.log) >= self.limit:
                            wait = max(wait, budget.log[0] + self.window_s - now)
                    if wait <= 0:
                        if self.limit is not None:
                            budget.log.append(now)
                        # the slot after this one: on schedule, unless that is further back
                        # than catch_up_s (an idle or stalled spell is not made up for)
                        budget.next_at = max(budget.next_at, now - self.catch_up_s) + self.interval
                        break
                await self._sleep(max(wait, 1e-6))  # never a sleep too small to move the clock
            self.calls += 1
            self.first_at = now if self.first_at is None else self.first_at
            self.last_at = now
            return now

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Bounded concurrency plus pacing: ``async with limiter.slot(): ...``."""
        async with self._sem:
            yield await self.acquire()

    def slow_down(self, pause_s: float = 1.0) -> None:
        """A 429: halve the pace and hold every caller back for ``pause_s``."""
        self.slowdowns += 1
        with self.budget.lock:
            self.budget.factor = max(self.min_factor, self.budget.factor / 2)
            self.budget.next_at = max(self.budget.next_at, self._clock() + pause_s)

    def succeeded(self) -> None:
        """Recover the pace slowly after a slowdown (20 successes ~ doubles it)."""
        if self.budget.factor < 1.0:
            with self.budget.lock:
                self.budget.factor = min(1.0, self.budget.factor * 1.035)

    def achieved_per_minute(self) -> float | None:
        """Calls per minute between the first and the last call start."""
        if self.first_at is None or self.last_at is None or self.calls < 2:
            return None
        span = self.last_at - self.first_at
        return (self.calls - 1) / span * 60.0 if span > 0 else None
