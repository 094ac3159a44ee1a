"""The limiter: never more than the limit in any window, paces close to the limit, 429 slows it."""

from __future__ import annotations

import asyncio
import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.fmp.limiter import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def _max_in_window(times: list[float], window: float) -> int:
    """Most starts in any half-open window [t, t + window)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] + window <= t:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def _drive(limit: int, concurrency: int, calls: int, slowdowns: list[int], seed: int,
                 safety: float = 0.98, work_s: float = 0.5) -> tuple[list[float], FakeClock, RateLimiter]:
    clock = FakeClock()
    limiter = RateLimiter(limit, concurrency, clock=clock, sleep=clock.sleep, safety=safety)
    rng = random.Random(seed)
    starts: list[float] = []

    async def one(i: int) -> None:
        async with limiter.slot() as started:
            starts.append(started)
            await clock.sleep(rng.uniform(0, work_s))  # the request's own duration (serialised: worst case)
            if i in slowdowns:
                limiter.slow_down(pause_s=rng.uniform(0, 3))
            else:
                limiter.succeeded()

    await asyncio.gather(*(one(i) for i in range(calls)))
    return sorted(starts), clock, limiter


@settings(max_examples=150, deadline=None)
@example(limit=13, concurrency=1, calls=17, slowdowns=[], seed=0, safety=1.0)  # a one-ulp overrun, once
@given(
    limit=st.integers(1, 40),
    concurrency=st.integers(1, 16),
    calls=st.integers(1, 150),
    slowdowns=st.lists(st.integers(0, 150), max_size=5),
    seed=st.integers(0, 1000),
    safety=st.floats(0.5, 1.0),
)
def test_limiter_never_exceeds_the_limit_in_any_60_second_window(limit, concurrency, calls, slowdowns, seed,
                                                                  safety) -> None:
    starts, _, _ = asyncio.run(_drive(limit, concurrency, calls, slowdowns, seed, safety))
    assert len(starts) == calls
    assert _max_in_window(starts, 60.0) <= limit


def test_limiter_paces_at_least_95_percent_of_the_limit() -> None:
    starts, _, limiter = asyncio.run(_drive(300, 8, 1000, [], 1, work_s=0.0))
    rate = limiter.achieved_per_minute()
    assert rate is not None and 0.95 * 300 <= rate <= 300
    assert _max_in_window(starts, 60.0) <= 300


class LateClock(FakeClock):
    """Every sleep ends late, as a real event loop's do (a millisecond tick, a busy interpreter)."""

    def __init__(self, late_s: float) -> None:
        super().__init__()
        self.late_s = late_s

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds + self.late_s)


def test_late_wake_ups_do_not_lower_the_pace() -> None:
    """At 60,000/min slots are 1 ms apart and every sleep ends 2 ms late: the pace is still the
    limit's (a limiter that spaces calls from when the last one ran keeps only a third of it),
    the window still holds, and the catch-up is bounded: in any span of t seconds at most
    (t + catch_up_s) / interval + 1 calls start."""
    async def drive() -> tuple[list[float], RateLimiter]:
        clock = LateClock(0.002)
        limiter = RateLimiter(60_000, 8, clock=clock, sleep=clock.sleep)
        starts: list[float] = []

        async def one() -> None:
            async with limiter.slot() as started:
                starts.append(started)

        await asyncio.gather(*(one() for _ in range(3000)))
        return sorted(starts), limiter

    starts, limiter = asyncio.run(drive())
    rate = limiter.achieved_per_minute()
    assert rate is not None and 0.95 * 60_000 <= rate <= 60_000
    assert _max_in_window(starts, 60.0) <= 60_000
    for span in (0.001, 0.005, 0.02, 0.1, 1.0):
        assert _max_in_window(starts, span) <= (span + limiter.catch_up_s) / limiter.interval + 1


def test_a_stall_is_not_followed_by_a_burst() -> None:
    """A pause far longer than the catch-up: the calls after it are spaced at the pace again."""
    async def drive() -> list[float]:
        clock = FakeClock()
        limiter = RateLimiter(600, 1, clock=clock, sleep=clock.sleep)   # 100 ms apart
        starts = [await limiter.acquire() for _ in range(3)]
        clock.now += 30.0                                                # idle half a minute
        starts += [await limiter.acquire() for _ in range(5)]
        return starts

    after = asyncio.run(drive())[3:]
    gaps = [b - a for a, b in zip(after, after[1:], strict=False)]
    assert min(gaps) >= 0.1 / 0.98 - 0.01 - 1e-9


def test_429_slows_the_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, 4, clock=clock, sleep=clock.sleep)
    before = limiter.interval
    limiter.slow_down(pause_s=2.0)
    assert limiter.interval == 2 * before
    start = asyncio.run(limiter.acquire())
    assert start >= 1002.0  # everyone waits out the pause
    for _ in range(200):
        limiter.succeeded()
    assert limiter.interval == before  # and the pace comes back


def test_concurrency_is_bounded() -> None:
    async def run() -> int:
        limiter = RateLimiter(None, 3)
        active = peak = 0

        async def one() -> None:
            nonlocal active, peak
            async with limiter.slot():
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.001)
                active -= 1

        await asyncio.gather(*(one() for _ in range(30)))
        return peak

    assert asyncio.run(run()) == 3


def test_the_window_keeps_the_rate() -> None:
    """FMP_RATE_WINDOW_S shortens the window, not the rate: 480/min is 40 per 5 s, 480 per minute."""
    from core.settings import load_settings, window_limit

    assert window_limit(480, 5.0) == 40 and window_limit(480, 60.0) == 480
    assert window_limit(10, 1.0) == 1  # never a window that allows nothing
    settings = load_settings(env="local", fmp_calls_per_minute=240, fmp_rate_window_s=15)
    assert settings.fmp_window_limit == 60


def _three_loops_at_once(limit: int, window_s: float, calls: int, shared: bool) -> list[float]:
    """Three limiters, each on its own thread and event loop (as the flow's three datasets ingest)."""
    import threading

    from connectors.fmp.limiter import Budget

    budget = Budget() if shared else None
    starts: list[float] = []
    lock = threading.Lock()

    def ingest() -> None:
        limiter = RateLimiter(limit, 4, window_s=window_s, budget=budget or Budget())

        async def run() -> None:
            async def one() -> None:
                async with limiter.slot() as started:
                    with lock:
                        starts.append(started)

            await asyncio.gather(*(one() for _ in range(calls)))

        asyncio.run(run())

    threads = [threading.Thread(target=ingest) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(starts)


def test_limiters_on_one_key_keep_its_limit_together() -> None:
    """One budget: 3 × 30 calls at 20 per 0.4 s take more than four windows and never exceed 20 in one."""
    starts = _three_loops_at_once(limit=20, window_s=0.4, calls=30, shared=True)
    assert len(starts) == 90
    assert _max_in_window(starts, 0.4) <= 20
    assert starts[-1] - starts[0] >= 0.4 * 4 * 0.98


def test_limiters_with_budgets_of_their_own_would_triple_the_rate() -> None:
    """What the shared budget prevents (the test above fails without it): three limits' worth at once."""
    starts = _three_loops_at_once(limit=20, window_s=0.4, calls=30, shared=False)
    assert _max_in_window(starts, 0.4) > 20


def test_the_process_keeps_one_budget_per_key_endpoint_and_limit() -> None:
    from connectors.fmp.limiter import shared_budget

    a = shared_budget("http://fmp", "key-1", 300, 60.0)
    assert shared_budget("http://fmp", "key-1", 300, 60.0) is a
    assert shared_budget("http://fmp", "key-2", 300, 60.0) is not a
    assert shared_budget("http://other", "key-1", 300, 60.0) is not a
    assert shared_budget("http://fmp", "key-1", 40, 5.0) is not a
