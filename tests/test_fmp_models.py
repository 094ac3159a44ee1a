"""Schemas: the recorded samples parse; FMP's loose types are tolerated; the simulator matches them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from connectors.fmp.models import EodBar, Profile, Quote, validate_records

SAMPLES = Path(__file__).resolve().parent.parent / "connectors" / "fmp" / "samples"


@pytest.mark.parametrize(("name", "model"), [("quote", Quote), ("profile", Profile), ("hist", EodBar)])
def test_recorded_samples_parse(name: str, model: type[Quote | Profile | EodBar]) -> None:
    records = json.loads((SAMPLES / f"{name}_stable.json").read_text())
    parsed = [model.model_validate(r) for r in records]
    assert parsed and all(p.symbol == "AAPL" for p in parsed)


def test_profile_employee_count_string_becomes_an_integer() -> None:
    record = json.loads((SAMPLES / "profile_stable.json").read_text())[0]
    assert Profile.model_validate(record).full_time_employees == 164000


@pytest.mark.parametrize("missing", [None, "", "NA", "N/A", " na "])
def test_missing_values_become_none(missing: object) -> None:
    quote = Quote.model_validate({"symbol": "X", "price": missing, "volume": missing, "exchange": missing})
    assert (quote.price, quote.volume, quote.exchange) == (None, None, None)


def test_numeric_strings_are_numbers() -> None:
    quote = Quote.model_validate({"symbol": "X", "price": "12.5", "volume": "1,200", "timestamp": "1700000000"})
    assert (quote.price, quote.volume, quote.timestamp) == (12.5, 1200, 1700000000)


def test_invalid_records_are_reported_with_the_reason() -> None:
    valid, bad = validate_records("quotes", [{"symbol": "A", "price": 1}, {"symbol": "", "price": "abc"}, 7])
    assert valid == 1
    assert [i for i, _ in bad] == [1, 2]
    assert "price" in bad[0][1] and "not a number" in bad[0][1]
    assert "expected a JSON object" in bad[1][1]


def test_impossible_bar_is_invalid() -> None:
    _, bad = validate_records("eod", [{"symbol": "A", "date": "2024-01-02", "high": 1, "low": 2}])
    assert "below low" in bad[0][1]


def _shape(record: dict) -> dict[str, str]:
    kinds = {bool: "bool", int: "number", float: "number", str: "str", type(None): "null"}
    return {k: kinds[type(v)] for k, v in record.items()}


@pytest.mark.parametrize(("sample", "path", "params"), [
    ("quote", "/stable/quote", {"symbol": "AAPL"}),
    ("profile", "/stable/profile", {"symbol": "AAPL"}),
    ("hist", "/stable/historical-price-eod/full", {"symbol": "AAPL", "from": "2023-01-03", "to": "2023-01-10"}),
])
def test_simulator_answers_with_the_recorded_fields_and_types(fmp_sim, sample: str, path: str, params: dict) -> None:
    recorded = json.loads((SAMPLES / f"{sample}_stable.json").read_text())
    answer = httpx.get(fmp_sim.base_url + path, params=params).json()
    assert isinstance(answer, list) and answer
    assert _shape(answer[0]) == _shape(recorded[0])
    if sample == "hist":
        assert [r["date"] for r in answer] == [r["date"] for r in recorded]  # trading days, newest first


def test_simulator_is_deterministic_across_instances(make_fmp_sim) -> None:
    a, b = make_fmp_sim(), make_fmp_sim()
    params = {"symbol": "MSFT", "from": "2024-01-01", "to": "2024-02-01"}
    path = "/stable/historical-price-eod/full"
    assert httpx.get(a.base_url + path, params=params).json() == httpx.get(b.base_url + path, params=params).json()
    assert len(a.data.symbols) >= 500
