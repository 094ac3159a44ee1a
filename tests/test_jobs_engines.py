"""The DuckDB engine reads each bronze file once, and broken files still cost one
quarantine row each: the cases the generator does not write."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.datasets import EOD
from jobs.engines import DuckDBEngine, EngineOutput

DAY = "2024-03-15"


def _eod(symbol: str, close: float | str = 10.0) -> dict[str, object]:
    return {"symbol": symbol, "date": DAY, "open": 9.9, "high": 10.5, "low": 9.5, "close": close,
            "volume": 1000, "vwap": 10.1, "change": 0.1, "changePercent": 1.0}


def _write(folder: Path, name: str, body: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(body))
    return str(path)


@pytest.fixture
def ingestion(tmp_path: Path) -> Path:
    return tmp_path / "fmp" / "eod" / f"date={DAY}" / "ingested_at=20240315T213000Z"


def _transform(files: list[str], out: Path) -> EngineOutput:
    engine = DuckDBEngine(threads=2)
    try:
        return engine.transform(EOD, DAY, files, out)
    finally:
        engine.close()


def test_every_broken_file_is_one_unparseable_row_and_the_others_are_read(ingestion: Path,
                                                                          tmp_path: Path) -> None:
    many = json.dumps([_eod(f"S{i:04d}") for i in range(3000)])
    files = [
        _write(ingestion, "part-0.json.gz", json.dumps([_eod("AAPL"), _eod("MSFT")]).encode()),
        _write(ingestion, "part-1.json.gz", many[:-40].encode()),            # cut off near the end
        _write(ingestion, "part-2.json.gz", b'[{"symbol": "AAPL", "date": "20'),  # cut off at once
        _write(ingestion, "part-3.json.gz", json.dumps(_eod("NVDA")).encode()),  # an object, not an array
        _write(ingestion, "part-4.json.gz", b"[]"),
        _write(ingestion, "part-5.json.gz", b'[\n  {"symbol": "META", "date": "2024-03-15", "close": 5},\n'
                                            b'  "Limit Reach", null, [1, 2], {}\n]'),
    ]
    out = _transform(files, tmp_path / "out")
    assert out.reasons == {"unparseable_file": 3, "not_an_object": 3, "missing_symbol": 1}
    assert (out.rows_read, out.rows_written, out.deduplicated) == (2 + 3 + 5, 3, 0)
    assert out.quarantine_file is not None
    rows = pq.read_table(out.quarantine_file).to_pylist()
    broken = sorted(r["source_file"] for r in rows if r["reason"] == "unparseable_file")
    assert broken == [f"fmp/eod/date={DAY}/ingested_at=20240315T213000Z/part-{n}.json.gz" for n in (1, 2, 3)]
    assert all(r["record"] is None for r in rows if r["reason"] == "unparseable_file")
    assert sorted(r["record"] for r in rows if r["reason"] != "unparseable_file") == [
        '"Limit Reach"', "[1, 2]", "null", "{}"]


def test_rejects_keep_their_record_as_written_and_numbers_are_read_as_text(ingestion: Path,
                                                                        tmp_path: Path) -> None:
    body = '[{"symbol":  "AAPL", "close": "n/a", "date": "2024-03-15"},\n {"symbol": "MSFT", ' \
           '"date": "2024-03-15", "close": 1e2, "volume": 12.0, "high": "11", "low": 9}]'
    out = _transform([_write(ingestion, "part-0.json.gz", body.encode())], tmp_path / "out")
    assert out.reasons == {"malformed_number": 1}
    assert out.quarantine_file is not None and out.silver_file is not None
    [reject] = pq.read_table(out.quarantine_file).to_pylist()
    assert reject["record"] == '{"symbol":  "AAPL", "close": "n/a", "date": "2024-03-15"}'
    [kept] = pq.read_table(out.silver_file).to_pylist()
    # numbers as text, then TRY_CAST: a quoted number is a number, 12.0 a whole volume
    assert (kept["close"], kept["volume"], kept["high"], kept["low"]) == (100.0, 12, 11.0, 9.0)


def test_culprit_is_confirmed_by_probing_not_taken_from_the_message(ingestion: Path) -> None:
    import duckdb

    good = _write(ingestion, "part-0.json.gz", json.dumps([_eod("AAPL")]).encode())
    bad = _write(ingestion, "part-1.json.gz", b"[{")
    engine = DuckDBEngine()
    try:
        blamed = duckdb.InvalidInputException(f'Malformed JSON in file "{good}", at byte 1')
        assert engine._culprits(blamed, [good, bad]) == [bad]
        assert engine._culprits(duckdb.InvalidInputException("no file named"), [good, bad]) == [bad]
        assert engine._culprits(duckdb.InvalidInputException("not a file's fault"), [good]) == []
    finally:
        engine.close()


def test_one_row_per_key_the_latest_ingestion_first_then_the_ranking(tmp_path: Path) -> None:
    day = tmp_path / "fmp" / "eod" / f"date={DAY}"
    files = [
        _write(day / "ingested_at=20240315T213000Z", "part-0.json.gz", json.dumps(
            [_eod("AAPL", 10.0), _eod("AAPL", 11.0), _eod("MSFT", 5.0), _eod("NVDA", 7.0)]).encode()),
        _write(day / "ingested_at=20240316T013000Z", "part-0.json.gz",
               json.dumps([_eod("MSFT", 4.0)]).encode()),
    ]
    out = _transform(files, tmp_path / "out")
    assert (out.rows_read, out.rows_written, out.deduplicated) == (5, 3, 2)
    assert out.silver_file is not None
    rows = {r["symbol"]: r for r in pq.read_table(out.silver_file).to_pylist()}
    assert rows["AAPL"]["close"] == 11.0            # one ingestion, one file: the higher close
    assert (rows["MSFT"]["close"], rows["MSFT"]["ingested_at"].hour) == (4.0, 1)   # the restatement
    assert rows["NVDA"]["close"] == 7.0
