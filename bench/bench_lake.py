"""The lake's small-object calls on S3: a kept client (core.aws.shared_client, what core.lake
uses) against a client built for every call (what core.lake did before), side by side in one
run, against a moto server in a process of its own.

    python bench/bench_lake.py              # 200 reads, coverage over 250 partitions, 5 rounds
    python bench/bench_lake.py --rounds 9

Scenarios:
  read      read_json of one small object (records, _published.json, latest.json)
  coverage  flows.quality_coverage.silver_dates over N day-partitions: one listing per day

Figures (JSON on stdout; progress on stderr): per scenario the median seconds of each way
over the rounds (the two ways alternate within every round) and their ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _per_call_read(settings: Any, uri: str) -> Any:
    """read_json as core.lake did it before: a new client for the call."""
    from core import lake
    from core.aws import client

    name, key = lake.split(uri)
    return json.loads(client(settings, "s3").get_object(Bucket=name, Key=key)["Body"].read())


def _per_call_names(settings: Any, prefix_uri: str) -> list[str]:
    """list_names as core.lake did it before: a new client (and paginator) for the call."""
    from core import lake
    from core.aws import client

    name, key = lake.split(prefix_uri.rstrip("/") + "/")
    names: set[str] = set()
    for page in client(settings, "s3").get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=key, Delimiter="/"):
        names.update(p["Prefix"][len(key):].rstrip("/") for p in page.get("CommonPrefixes", []))
        names.update(o["Key"][len(key):] for o in page.get("Contents", []))
    return sorted(names)


def _per_call_silver_dates(settings: Any) -> set[dt.date]:
    from core import lake
    from flows.quality_coverage import PARTITION, partition_date

    base = lake.join(lake.zone_uri(settings, "silver"), "eod_prices")
    found = set()
    for name in _per_call_names(settings, base):
        day = partition_date(name)
        if day is not None and PARTITION in _per_call_names(settings, lake.join(base, name)):
            found.add(day)
    return found


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=250)
    args = parser.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from core import lake
    from core.aws import client
    from core.settings import load_settings
    from flows.quality_coverage import PARTITION, silver_dates
    from validation.emulator import moto_server

    with moto_server() as url, tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env="local", storage="s3", state_dir=Path(tmp), s3_endpoint_url=url,
                                 bucket_prefix=f"finks-b{uuid.uuid4().hex[:8]}")
        s3 = client(settings, "s3")
        silver = lake.bucket(settings, "silver")
        s3.create_bucket(Bucket=silver, CreateBucketConfiguration={"LocationConstraint": settings.region})
        record = lake.join(lake.zone_uri(settings, "silver"), "_records", "record.json")
        lake.write_text(settings, record, json.dumps({"ok": True}))
        day = dt.date(2024, 1, 1)
        for n in range(args.partitions):
            key = f"eod_prices/date={(day + dt.timedelta(days=n)).isoformat()}/{PARTITION}"
            s3.put_object(Bucket=silver, Key=key, Body=b"")
        assert silver_dates(settings) == _per_call_silver_dates(settings)  # the same answer both ways

        scenarios: dict[str, dict[str, Callable[[], Any]]] = {
            "read": {"kept": lambda: [lake.read_json(settings, record) for _ in range(args.reads)],
                     "per_call": lambda: [_per_call_read(settings, record) for _ in range(args.reads)]},
            "coverage": {"kept": lambda: silver_dates(settings),
                         "per_call": lambda: _per_call_silver_dates(settings)},
        }
        times: dict[str, dict[str, list[float]]] = {s: {"kept": [], "per_call": []} for s in scenarios}
        for ways in scenarios.values():  # warm both ways once (models loaded, first connection)
            for fn in ways.values():
                fn()
        for r in range(args.rounds):
            for name, ways in scenarios.items():
                order = ("kept", "per_call") if r % 2 == 0 else ("per_call", "kept")
                for way in order:
                    times[name][way].append(_time(ways[way]))
            print(f"[bench] round {r + 1}/{args.rounds}", file=sys.stderr)

    result: dict[str, Any] = {"rounds": args.rounds, "reads": args.reads, "partitions": args.partitions}
    for name, ways in times.items():
        kept, per_call = statistics.median(ways["kept"]), statistics.median(ways["per_call"])
        result[name] = {"kept_s": round(kept, 4), "per_call_s": round(per_call, 4),
                        "per_call_over_kept": round(per_call / kept, 2)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
