"""The short text summaries that go with the MCP tools' structured results."""

from __future__ import annotations

from typing import Any


def status_text(doc: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for s in doc["sessions"]:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    passed = sum(1 for g in doc["gates"] if g["status"] == "passed")
    ready = [s["id"] for s in doc["sessions"] if s["status"] in ("ready", "optional", "failed", "interrupted", "stale")]
    return (f"env {doc['env']}: {len(doc['sessions'])} sessions — "
            + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
            + f"; gates {passed}/{len(doc['gates'])} passed" + (f"; to run: {', '.join(ready)}" if ready else ""))


def next_text(doc: dict[str, Any]) -> str:
    if not doc["sessions"]:
        return (f"every session is complete on {doc['env']}: nothing to do" if doc["all_complete"]
                else "nothing is ready: call `status` to see what blocks the plan")
    def tag(slack: float) -> str:
        return "critical" if slack == 0 else f"slack {slack:g}h"

    return "\n".join(f"{r['id']} {r['status']} ({tag(r['slack_hours'])}): {r['command']}"
                     + (f" — {r['note']}" if r.get("note") else "") for r in doc["sessions"])


def why_text(doc: dict[str, Any]) -> str:
    lines = []
    for link in doc["chain"]:
        lines.append("  " * link["depth"] + f"{link['id']}: {link['status']}"
                     + (f" — {link['reason']}" if link["reason"] else ""))
        for ev in link.get("evidence") or ():
            lines.append("  " * link["depth"] + f"    {ev['check']} {ev['outcome']}: {ev['message']}")
    return "\n".join(lines)


def run_text(doc: dict[str, Any]) -> str:
    c = doc["counts"]
    would = [s["id"] for s in doc["sessions"] if s["outcome"] == "would_run"]
    head = f"dry run: would run {', '.join(would)}" if would else (f"{c['passed']} passed, {c['failed']} failed, {c['skipped_upstream']} skipped (upstream did not pass), "
            f"{c['blocked']} blocked, {c['up_to_date']} already complete")
    rows = [f"{s['id']} {s['outcome']}" + (f": {s['reason']}" if s["reason"] else "") for s in doc["sessions"]]
    notes = [f"handoff {sid}: {path}" for sid, path in doc["handoffs"].items()]
    return "\n".join([head, *rows, *notes])


# ---- the server ----------------------------------------------------------------
