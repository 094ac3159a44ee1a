"""Units of work: which call fetches which symbols into which part file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.fmp.client import FmpClient, FmpResponse


Call = Callable[["FmpClient"], Awaitable["FmpResponse"]]


@dataclass(frozen=True)
class Unit:
    index: int  # part number: stable for a request, so a resumed run never duplicates
    endpoint: str
    symbols: list[str] | None  # None: the whole market (bulk)
    call: Call

    @property
    def single(self) -> bool:
        """One symbol per call: the answer's rows all belong to it."""
        return self.symbols is not None and len(self.symbols) == 1 and not self.endpoint.endswith("eod-bulk")

    def label(self) -> str:
        if self.symbols is None:
            return "bulk"
        return self.symbols[0] if len(self.symbols) == 1 else f"{self.symbols[0]}..{self.symbols[-1]}"


class UnitPlan:
    """The calls of one ingestion, made lazily: memory stays flat however many symbols."""

    def __init__(self, dataset: str, day: str, symbols: list[str] | None, bulk: bool,
                 batch_size: int | None) -> None:
        from connectors.fmp.client import BATCH_QUOTE, BULK_EOD, HISTORICAL_EOD, PROFILE, QUOTE

        self.day, self.symbols, self.bulk = day, symbols, bulk
        self.batch = batch_size if (dataset == "quotes" and batch_size and batch_size > 1) else None
        if bulk:
            self.endpoint = BULK_EOD
        elif self.batch:
            self.endpoint = BATCH_QUOTE
        else:
            self.endpoint = {"quotes": QUOTE, "profiles": PROFILE, "eod": HISTORICAL_EOD}[dataset]
        self.dataset = dataset

    def __len__(self) -> int:
        if self.bulk:
            return 1
        assert self.symbols is not None
        return -(-len(self.symbols) // self.batch) if self.batch else len(self.symbols)

    @property
    def symbol_count(self) -> int:
        return len(self.symbols or ())

    def __iter__(self) -> Iterator[Unit]:
        day = self.day
        if self.bulk:
            yield Unit(0, self.endpoint, self.symbols, lambda c: c.bulk_eod(day))
            return
        assert self.symbols is not None
        if self.batch:
            for i in range(len(self)):
                chunk = self.symbols[i * self.batch:(i + 1) * self.batch]
                yield Unit(i, self.endpoint, chunk, _batch(chunk, day))
            return
        make = {"quotes": _quote, "profiles": _profile, "eod": _eod}[self.dataset]
        for i, symbol in enumerate(self.symbols):
            yield Unit(i, self.endpoint, [symbol], make(symbol, day))


def _quote(s: str, day: str) -> Call:
    return lambda c: c.quote(s, day)


def _profile(s: str, day: str) -> Call:
    return lambda c: c.profile(s, day)


def _eod(s: str, day: str) -> Call:
    return lambda c: c.historical_eod(s, day, day)


def _batch(chunk: list[str], day: str) -> Call:
    return lambda c: c.batch_quote(chunk, day)
