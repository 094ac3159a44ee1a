"""Benchmark: wall time of `finks --help`, `finks status` and `finks plan` on the real plan.

Each command runs as a fresh process (what a user waits for), N times; we
report the median and the spread. `finks status` runs against a full state:
every session of the real plan validated three times over, with check
records, fingerprints and the gates passed (written through finks' own
StateStore, fingerprints from the working tree), so that the status board
does all of its work: verdicts, fingerprints of every session, upstream.

    status        the usual case: nothing changed since the last status (its memo answers)
    status-cold   no memo (removed before each run): typer, pydantic, the board, the file-hash cache
    status-fresh  no memo and no file-hash cache: every file hashed again

Targets: `finks status` median under 0.1 s; every other command under 0.3 s.

    .venv/bin/python bench/bench_cli.py [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from statustiming import cache_resetters, python_start, summarise, time_command  # noqa: E402

TARGET_S = 0.3
STATUS_TARGET_S = 0.1
RUNS_PER_SESSION = 3




def full_state(state: Path, env: str = "local") -> int:
    """Every session of the real plan validated, through finks' own store; returns the events written."""
    from finks.loader import load_plan
    from finks.state import StateStore
    from finks.status import StatusBoard
    from finks.verdicts import judge

    plan = load_plan(REPO / "sessions", root=REPO)
    store = StateStore(state, env)
    board = StatusBoard(plan, store, REPO)
    written = 0
    for n in range(RUNS_PER_SESSION):
        for sid, session in plan.sessions.items():
            run_id = f"bench-{n}-{sid}"
            store.append({"type": "run_started", "run_id": run_id, "session": sid, "pid": os.getpid(),
                          "git": {"commit": None, "dirty": True}})
            records = []
            for criterion in session.criteria:
                if not criterion.applies(env):
                    continue
                for check in criterion.checks:
                    outcome = "passed" if env in check.envs else "skipped"
                    record = {"check": check.id, "outcome": outcome, "grade": check.evidence_grade,
                              "message": "benchmark evidence", "figures": {"n": n}, "excerpt": "", "duration_s": 0.1}
                    records.append(record)
                    store.append({"type": "check", "run_id": run_id, "session": sid, "criterion": criterion.text,
                                  "kind": check.kind, "target": check.target, **record})
            verdict = judge(session, records, env, plan.accepts_planned(env))
            fingerprint = board.fingerprint(sid)
            store.append({"type": "run_finished", "run_id": run_id, "session": sid, "outcome": "passed",
                          "duration_s": 1.0, "verdicts": verdict.counts, "fingerprint": fingerprint.to_dict(),
                          "upstream": board.upstream_fingerprints(sid), "deliverables_hash": fingerprint.deliverables})
            written += 2 + len(records)
    for gid, gate in plan.gates.items():
        checks = [{"check": c.id, "outcome": "passed" if env in c.envs else "skipped", "grade": c.evidence_grade,
                   "message": "benchmark evidence"} for c in gate.checks]
        store.append({"type": "gate", "gate": gid, "outcome": "passed", "reason": "benchmark", "checks": checks})
        written += 1
    board.hashes.save()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        events = full_state(state)
        env = {**os.environ, "FINKS_STATE_DIR": str(state), "NO_COLOR": "1"}
        env.pop("FINKS_SESSIONS", None)
        env.pop("FINKS_ROOT", None)
        time.sleep(2.1)  # the memo does not trust files younger than 2 s: the history was just written
        time_command(["status"], 3, env)  # warm the page cache; the first one writes the memo
        results: dict[str, list[float]] = {"python -c pass": python_start(opts.runs)}
        no_memo, nothing_cached = cache_resetters(state)

        results["finks status"] = time_command(["status"], opts.runs, env)
        results["finks status --json"] = time_command(["status", "--json"], opts.runs, env)
        results["finks status-cold"] = time_command(["status"], opts.runs, env, no_memo)
        results["finks status-fresh"] = time_command(["status"], opts.runs, env, nothing_cached)
        for args in (["--help"], ["plan"]):
            results["finks " + " ".join(args)] = time_command(args, opts.runs, env)
    report = summarise(results)
    if opts.json:
        print(json.dumps({"history_events": events, **report}, indent=2))
        return 0
    print(f"full state: {events} events ({RUNS_PER_SESSION} validated runs of each session, gates passed)")
    print(f"{'command':<24} {'median':>8} {'min':>8} {'max':>8}  vs interpreter start")
    for name, r in report.items():
        print(f"{name:<24} {r['median_s']:>8.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f}  {r['vs_python']:>5.1f}x")
    status = report["finks status"]["median_s"]
    print(f"target `finks status` <{STATUS_TARGET_S} s median:", "met" if status < STATUS_TARGET_S else "missed")
    slow = [n for n, r in report.items() if n.startswith("finks") and "status" not in n and r["median_s"] > TARGET_S]
    print(f"target other commands <{TARGET_S} s median:", "met" if not slow else f"missed by {', '.join(slow)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
