"""Named symbol universes.

``default`` is a small, well-known set (fast local runs, the sample day);
``sim500`` / ``sim1000`` are the simulator's synthetic universe; any existing
file path is read as one symbol per line (``#`` starts a comment).
"""

from __future__ import annotations

import random
import string
from functools import lru_cache
from pathlib import Path

from core.errors import UsageError

WELL_KNOWN: tuple[str, ...] = (
    "AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "BRK-B", "JPM", "V",
    "JNJ", "WMT", "PG", "MA", "XOM", "UNH", "HD", "KO", "PEP", "COST",
    "DIS", "NFLX", "INTC", "CSCO", "ORCL",
)
SIM_UNIVERSE_SIZE = 1000


@lru_cache(maxsize=4)
def synthetic_symbols(count: int, seed: int = 7) -> tuple[str, ...]:
    """The well-known tickers, then deterministic made-up ones up to ``count``."""
    rng = random.Random(seed)
    symbols = list(WELL_KNOWN[:count])
    seen = set(symbols)
    while len(symbols) < count:
        candidate = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice((3, 4))))
        if candidate not in seen:
            seen.add(candidate)
            symbols.append(candidate)
    return tuple(symbols)


UNIVERSES: dict[str, int] = {"default": len(WELL_KNOWN), "sim100": 100, "sim500": 500, "sim1000": 1000}


def resolve(name: str) -> list[str]:
    """Symbols of a named universe or of a file; UsageError naming the choices otherwise."""
    if name in UNIVERSES:
        return list(synthetic_symbols(SIM_UNIVERSE_SIZE)[: UNIVERSES[name]])
    path = Path(name)
    if path.is_file():
        symbols = [line.split("#", 1)[0].strip().upper() for line in path.read_text().splitlines()]
        symbols = [s for s in symbols if s]
        if not symbols:
            raise UsageError(f"universe file {path} lists no symbols")
        return symbols
    raise UsageError(
        f"unknown universe {name!r}",
        hint=f"use one of {', '.join(UNIVERSES)} or a file with one symbol per line",
    )


def parse_symbols(text: str) -> list[str]:
    """``"aapl, MSFT"`` → ``["AAPL", "MSFT"]`` (order kept, duplicates dropped)."""
    symbols = list(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    bad = [s for s in symbols if not all(c.isalnum() or c in ".-^" for c in s)]
    if bad or not symbols:
        raise UsageError(f"invalid --symbols {text!r}", hint="give tickers separated by commas, e.g. AAPL,MSFT")
    return symbols
