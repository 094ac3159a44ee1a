"""Benchmark: `finks status` on another team's plan of 200 sessions with free-form ids.

The plan is generated in a temporary directory: 200 session files
(``s100``, ``prefect-server-1``, ``dbt-models-2``, …, five weeks with a gate
each), one deliverable file per session, and a full history (every session
validated, with check records and fingerprints, written through finks' own
StateStore), so that the board does all of its work. Each command runs as a
fresh process, N times; we report medians beside ``python -c pass``:

    warm    the usual case: nothing changed since the last status (its memo answers)
    cold    no memo (removed before each run): typer, pydantic, 200 files loaded, the board
    fresh   no memo and no file-hash cache: every file hashed again
    claim   one live claim (1 h): its memo holds until "1 h left" would read differently

Target: `finks status` (warm) median under 0.1 s at 200 sessions.

    .venv/bin/python bench/bench_plan_size.py [--sessions 200] [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from statustiming import cache_resetters, python_start, summarise, time_command  # noqa: E402

STATUS_TARGET_S = 0.1
WORDS = ("prefect-server", "ingest", "dbt-models", "api", "quality-checks")
WEEKS = 5


def generate(root: Path, count: int) -> tuple[Path, list[str]]:
    """A plan of ``count`` sessions under root/team/sessions, its deliverables under root; returns (dir, ids)."""
    plan_dir = root / "team" / "sessions"
    plan_dir.mkdir(parents=True)
    (root / "work").mkdir()
    ids = [f"s{100 + i}" if i % 4 == 0 else f"{WORDS[i % len(WORDS)]}-{i}" for i in range(count)]
    per_week = -(-count // WEEKS)
    for i, sid in enumerate(ids):
        deliverable = f"work/{sid}.txt"
        (root / deliverable).write_text(f"{sid}\n" * 20)
        data = {
            "id": sid, "title": f"{WORDS[i % len(WORDS)].replace('-', ' ').title()} step {i}",
            "week": 1 + i // per_week, "area": WORDS[i % len(WORDS)], "estimate_hours": [1, 3],
            "depends_on": [ids[j] for j in sorted({i - 1, i - 7}) if j >= 0 and j // per_week == i // per_week],
            "tasks": [{"title": f"build {sid}"}],
            "criteria": [{"text": f"{sid} holds", "checks": [{"id": "holds", "shell": "true"}]},
                         {"text": f"{sid} is documented", "checks": [{"id": "documented", "shell": "true"}]}],
            "deliverables": [deliverable],
        }
        (plan_dir / f"{i:03d}-{sid}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    gates = {"strict": True, "gates": [{"id": f"week{w}", "week": w, "title": f"Week {w} done"}
                                       for w in range(1, WEEKS + 1)]}
    (plan_dir / "gates.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    return plan_dir, ids


def full_state(plan_dir: Path, root: Path, state: Path, env: str = "local") -> int:
    """Every session validated once, every gate passed, through finks' own store; returns the events written."""
    from finks.loader import load_plan
    from finks.state import StateStore
    from finks.status import StatusBoard
    from finks.verdicts import judge

    plan = load_plan(plan_dir, root=root)
    store = StateStore(state, env)
    board = StatusBoard(plan, store, root)
    written = 0
    for sid, session in plan.sessions.items():
        run_id = f"bench-{sid}"
        store.append({"type": "run_started", "run_id": run_id, "session": sid, "pid": os.getpid(),
                      "git": {"commit": None, "dirty": False}})
        records = []
        for criterion in session.criteria:
            for check in criterion.checks:
                record = {"check": check.id, "outcome": "passed", "grade": check.evidence_grade,
                          "message": "benchmark evidence", "figures": {}, "excerpt": "", "duration_s": 0.1}
                records.append(record)
                store.append({"type": "check", "run_id": run_id, "session": sid, "criterion": criterion.text,
                              "kind": check.kind, "target": check.target, **record})
        verdict = judge(session, records, env, plan.accepts_planned(env))
        fingerprint = board.fingerprint(sid)
        store.append({"type": "run_finished", "run_id": run_id, "session": sid, "outcome": "passed",
                      "duration_s": 1.0, "verdicts": verdict.counts, "fingerprint": fingerprint.to_dict(),
                      "upstream": board.upstream_fingerprints(sid), "deliverables_hash": fingerprint.deliverables})
        written += 2 + len(records)
    for gid in plan.gates:
        store.append({"type": "gate", "gate": gid, "outcome": "passed", "reason": "benchmark", "checks": []})
        written += 1
    board.hashes.save()
    return written




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, state = Path(tmp) / "root", Path(tmp) / "state"
        plan_dir, ids = generate(root, opts.sessions)
        events = full_state(plan_dir, root, state)
        env = {**os.environ, "FINKS_STATE_DIR": str(state), "FINKS_ROOT": str(root), "FINKS_SESSIONS": str(plan_dir),
               "NO_COLOR": "1"}
        env.pop("FINKS_HANDOFFS", None)
        env.pop("FINKS_ENV", None)
        time.sleep(2.1)  # the memo does not trust files younger than 2 s: the plan and history were just written
        check = subprocess.run([sys.executable, "-m", "finks", "status", "--json"], cwd=REPO, env=env,
                               capture_output=True, text=True, check=True)
        statuses = {s["status"] for s in json.loads(check.stdout)["sessions"]}
        time_command(["status"], 3, env)  # warm the page cache; the first one writes the memo
        results: dict[str, list[float]] = {"python -c pass": python_start(opts.runs)}
        no_memo, nothing_cached = cache_resetters(state)

        results["finks status (warm)"] = time_command(["status"], opts.runs, env)
        results["finks status (cold)"] = time_command(["status"], opts.runs, env, no_memo)
        results["finks status (fresh)"] = time_command(["status"], opts.runs, env, nothing_cached)
        claimed = subprocess.run([sys.executable, "-m", "finks", "claim", ids[-1], "--owner", "bench", "--lease", "1h"],
                                 cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if claimed.returncode != 0:
            raise SystemExit(f"finks claim exited {claimed.returncode}: {claimed.stderr.strip()}")
        time.sleep(2.1)  # the claim was just appended to the history
        time_command(["status"], 1, env)  # writes the memo, valid until the claim's time left reads differently
        results["finks status (claim)"] = time_command(["status"], opts.runs, env)
    report = summarise(results)
    warm = report["finks status (warm)"]["median_s"]
    if opts.json:
        print(json.dumps({"sessions": opts.sessions, "history_events": events, "statuses": sorted(statuses),
                          "target_s": STATUS_TARGET_S, "target_met": warm < STATUS_TARGET_S, **report}, indent=2))
        return 0
    print(f"plan: {opts.sessions} sessions with free-form ids ({ids[0]}, {ids[1]}, {ids[2]}, …), {WEEKS} gates; "
          f"history: {events} events; statuses: {', '.join(sorted(statuses))}")
    print(f"{'command':<24} {'median':>8} {'min':>8} {'max':>8}  vs python -c pass")
    for name, r in report.items():
        print(f"{name:<24} {r['median_s']:>8.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f}  {r['vs_python']:>5.1f}x")
    print(f"target `finks status` <{STATUS_TARGET_S} s median at {opts.sessions} sessions:",
          "met" if warm < STATUS_TARGET_S else "missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
