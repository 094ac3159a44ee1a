"""Where a whole-plan run spent its wall clock: each session's span and its slowest steps.

    .venv/bin/python bench/run_timeline.py                    # the latest `make run` (local)
    .venv/bin/python bench/run_timeline.py --env local --state .finks/state --top 3

Reads the run history finks writes (<state>/<env>/history.jsonl): every
session's run_started/run_finished and the action and check records inside
it. Prints, for the latest run of each session, when it started and ended
relative to the first session's start, its duration, and its slowest steps;
then the chain that ended last: from the last session back through what each
one waited for (a predecessor, or a session holding a resource it needs),
which is what a shorter `make run` must shorten.
The history stamps are whole seconds: the offsets are ±1 s.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"].replace("Z", "+00:00"))


def latest_runs(history: Path) -> dict[str, dict[str, Any]]:
    """Session id → its latest finished run: start, end, outcome and steps."""
    runs: dict[str, dict[str, Any]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for line in history.read_text().splitlines():
        event = json.loads(line)
        kind, run_id = event.get("type"), event.get("run_id")
        if kind == "run_started":
            by_id[run_id] = {"session": event["session"], "start": _at(event), "steps": []}
        elif kind in ("check", "action") and run_id in by_id:
            by_id[run_id]["steps"].append((event.get("check") or kind, float(event.get("duration_s") or 0.0)))
        elif kind == "run_finished" and run_id in by_id:
            run = by_id[run_id]
            run["end"], run["outcome"] = _at(event), event.get("outcome")
            run["start"] = min(run["start"], run["end"] - timedelta(seconds=float(event.get("duration_s") or 0)))
            runs[run["session"]] = run
    return runs


def chain(runs: dict[str, dict[str, Any]], waits_on: dict[str, set[str]]) -> list[str]:
    """From the session that ended last, back through what each one waited for: of its
    predecessors and the sessions it shares a resource with, the one that ended last before it
    started (stamps are whole seconds, hence the 1 s slack)."""
    if not runs:
        return []
    sid, out = max(runs, key=lambda s: runs[s]["end"]), []
    while sid:
        out.append(sid)
        start = runs[sid]["start"] + timedelta(seconds=1)
        before = [d for d in waits_on.get(sid, set()) if d in runs and runs[d]["end"] <= start and d not in out]
        sid = max(before, key=lambda s: runs[s]["end"]) if before else ""
    return out[::-1]


def plan_waits() -> dict[str, set[str]]:
    """What each session may wait for: its predecessors as finks enforces them (a strict plan's
    gates expanded to their sessions), and the sessions naming a resource it names."""
    from finks.graph import edges
    from finks.loader import load_plan

    plan = load_plan()
    graph = edges(plan, gates=True)

    def sessions(node: str) -> list[str]:
        return [node] if node not in plan.gates else [s for n in graph[node] for s in sessions(n)]

    out = {sid: {s for dep in graph[sid] for s in sessions(dep)} for sid in plan.sessions}
    for sid, session in plan.sessions.items():
        out[sid] |= {other for other, o in plan.sessions.items()
                     if other != sid and set(o.resources) & set(session.resources)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", default=str(ROOT / ".finks" / "state"))
    parser.add_argument("--env", default="local")
    parser.add_argument("--top", type=int, default=2, help="slowest steps shown per session")
    args = parser.parse_args()
    runs = latest_runs(Path(args.state) / args.env / "history.jsonl")
    if not runs:
        raise SystemExit(f"no finished runs in {args.state}/{args.env}/history.jsonl: run `make run` first")
    t0 = min(r["start"] for r in runs.values())
    for sid, run in sorted(runs.items(), key=lambda kv: kv[1]["start"]):
        begin, end = (run["start"] - t0).total_seconds(), (run["end"] - t0).total_seconds()
        slow = ", ".join(f"{name} {secs:.1f}" for name, secs in sorted(run["steps"], key=lambda s: -s[1])[:args.top])
        print(f"{sid:>4} {begin:6.0f} → {end:6.0f}  {end - begin:5.0f} s  {run['outcome']:<8} {slow}")
    total = (max(r["end"] for r in runs.values()) - t0).total_seconds()
    print(f"total {total:.0f} s; the chain that ended last: {' → '.join(chain(runs, plan_waits()))}")


if __name__ == "__main__":
    main()
