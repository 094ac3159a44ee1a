"""Handoff notes (the plan's "Handoff Documentation" format) and context primes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from finks.loader import Plan
from finks.outcomes import FAILING, Outcome, SessionOutcome, SessionState, Verdict
from finks.state import SessionRun, StateStore
from finks.status import StatusBoard
from finks.verdicts import LEGEND
from finks.verdicts import MARK as VERDICT_MARK

MARK = {Outcome.passed: "✅", Outcome.failed: "❌", Outcome.error: "❌", Outcome.skipped: "⏭️"}
VERDICT = {SessionOutcome.passed: "complete", SessionOutcome.not_applicable: "not applicable to this environment",
           SessionOutcome.unverified: "unverified"}
VERDICT_WORDS = {Verdict.verified: "verified", Verdict.planned: "planned (Pulumi mocks)",
                 Verdict.unverified: "unverified", Verdict.failed: "failed"}


def handoffs_dir(root: Path) -> Path:
    """handoffs/ in the repository; FINKS_HANDOFFS moves it (tests, read-only checkouts)."""
    return Path(os.environ.get("FINKS_HANDOFFS") or root / "handoffs")


def handoff_path(root: Path, env: str, plan: Plan, sid: str) -> Path:
    session = plan.sessions[sid]
    return handoffs_dir(root) / env / f"s{session.number:02d}-{session.slug}.md"


def _changed_files(root: Path, since: str | None, paths: tuple[str, ...]) -> list[str]:
    """Files under the deliverables changed since a commit, plus uncommitted changes."""
    if not paths:
        return []
    cmds = [["git", "status", "--porcelain", "--", *paths]]
    if since:
        cmds.insert(0, ["git", "diff", "--name-only", f"{since}..HEAD", "--", *paths])
    changed: list[str] = []
    for cmd in cmds:
        try:
            out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.splitlines():
            name = line[3:] if cmd[1] == "status" else line
            if name and name not in changed:
                changed.append(name.strip())
    return changed


def render_handoff(plan: Plan, env: str, root: Path, store: StateStore, sid: str) -> str:
    session = plan.sessions[sid]
    history = store.history()
    run: SessionRun | None = history.latest(sid)
    board = StatusBoard(plan, store, root, history)
    lines = [f"## Session {session.number} Handoff — {session.title}", ""]
    if run is None:
        return "\n".join(lines + ["No run recorded yet: run 'finks run " + sid + "'."]) + "\n"
    outcome = VERDICT.get(run.outcome, run.outcome) if run.outcome else "interrupted"
    judged = board.verdict(sid, run)
    lines += [
        f"- Environment: `{env}` · run `{run.run_id}` · started {run.started_at}"
        f" · git {run.git.get('commit') or 'unknown'}{' (dirty)' if run.git.get('dirty') else ''}",
        f"- Outcome: **{outcome}** · {judged.summary()}" + (f" in {run.duration_s:.0f}s" if run.duration_s else ""),
        f"- Evidence policy: `{env}` {'accepts' if judged.accept_planned else 'does not accept'} planned evidence",
        "",
        "### Success criteria",
        "",
        f"_{LEGEND}_",
        "",
    ]
    by_criterion: dict[str, list[dict]] = {}
    for check in run.checks:
        by_criterion.setdefault(check.get("criterion", ""), []).append(check)
    verdicts = {c.text: c for c in judged.criteria}
    for criterion in session.criteria:
        cv = verdicts.get(criterion.text)
        if cv is None:
            lines.append(f"- ➖ {criterion.text} — not a criterion on `{env}` (only {', '.join(criterion.envs)})")
            continue
        label = "error" if cv.label == "error" else VERDICT_WORDS[cv.verdict]
        note = "" if cv.accepted or cv.verdict == Verdict.failed else f": {cv.remedy}"
        lines.append(f"- {VERDICT_MARK[cv.verdict]} {criterion.text} — {label}{note}")
        for c in by_criterion.get(criterion.text, []):
            figures = ", ".join(f"{k}={v}" for k, v in list(c.get("figures", {}).items())[:6])
            grade = f", {c.get('grade', 'verified')}" if c["outcome"] == Outcome.passed else ""
            lines.append(
                f"  - {MARK.get(c['outcome'], '?')} `{c['check']}` {c['outcome']}: {c['message']}"
                + (f" ({figures})" if figures else "")
                + f" [{c.get('duration_s', 0):.1f}s{grade}]"
            )
    if run.actions:
        lines += ["", "### Task actions"]
        for a in run.actions:
            lines.append(f"- {MARK.get(a['outcome'], '?')} {a['task']}: {a['message']}")
    lines += ["", "### 📁 Files delivered"]
    for rel in session.deliverables:
        lines.append(f"- `{rel}`" + ("" if (root / rel).exists() else " (missing)"))
    if not session.deliverables:
        lines.append("- (none: this session prepares the environment)")
    previous = [r for r in history.runs.get(sid, [])[:-1] if r.outcome == SessionOutcome.passed]
    since = previous[-1].git.get("commit") if previous else None
    changed = _changed_files(root, since, session.deliverables)
    lines += ["", "### Files changed" + (f" since {since}" if since else " (uncommitted)")]
    lines += [f"- `{name}`" for name in changed[:40]] or ["- none"]
    tests = [c for c in run.checks if c.get("kind") == "pytest"]
    lines += ["", "### Test results"]
    lines += [f"- `{c['target']}`: {c['message']}" for c in tests] or [
        f"- {sum(c['outcome'] == Outcome.passed for c in run.checks)} checks passed, "
        f"{sum(c['outcome'] in FAILING for c in run.checks)} failed, "
        f"{sum(c['outcome'] == Outcome.skipped for c in run.checks)} skipped"
    ]
    lines.append("- criteria: " + ", ".join(f"{n} {v}" for v, n in judged.counts.items()))
    lines += ["", "### ⚠️ Known issues"]
    lines += [f"- {issue}" for issue in session.known_issues] or ["- none recorded"]
    from finks.graph import dependents

    unlocked = [c for c in dependents(plan)[sid]
                if board.session(c).status in (SessionState.ready, SessionState.optional)]
    blocking = [c for c in run.checks + run.actions if c["outcome"] in FAILING]
    lines += ["", "### 🔗 Next"]
    lines += [f"- {c}: {plan.sessions[c].title} — `finks run {c} --env {env}`" for c in unlocked] or [
        "- no session newly unlocked" + (" (a gate may still need to pass: `finks status`)" if run.outcome == SessionOutcome.passed else "")
    ]
    lines += ["", "### Blocking issues"]
    for c in blocking:
        lines.append(f"- `{c.get('check') or c.get('task')}` {c['outcome']}: {c['message']}")
        if c.get("excerpt"):
            excerpt = c["excerpt"].strip().splitlines()[-8:]
            lines += ["  ```", *("  " + ln for ln in excerpt), "  ```"]
    for cv in judged.pending:
        lines.append(f"- {VERDICT_MARK[cv.verdict]} {cv.text}: {cv.remedy}")
    if not blocking and not judged.pending:
        lines.append("- none")
    return "\n".join(lines) + "\n"


def write_handoff(plan: Plan, env: str, root: Path, store: StateStore, sid: str) -> Path:
    path = handoff_path(root, env, plan, sid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render_handoff(plan, env, root, store, sid), encoding="utf-8")
    tmp.replace(path)
    return path


def _layout(root: Path, paths: tuple[str, ...], depth: int = 2) -> list[str]:
    out: list[str] = []
    for rel in paths:
        target = root / rel
        if target.is_dir():
            out.append(f"{rel.rstrip('/')}/")
            for child in sorted(target.rglob("*")):
                parts = child.relative_to(target).parts
                if len(parts) > depth or any(p.startswith((".", "__pycache__")) or p in ("target", "logs") for p in parts):
                    continue
                out.append("  " * len(parts) + child.name + ("/" if child.is_dir() else ""))
        else:
            out.append(rel + ("" if target.exists() else "  (to be created)"))
    return out


def render_prime(plan: Plan, env: str, root: Path, store: StateStore, sid: str) -> str:
    session = plan.sessions[sid]
    lines = [f"# Context prime — Session {session.number}: {session.title}", ""]
    lines.append(f"Week {session.week} · area `{session.area}` · estimate {session.estimate_hours}"
                 + (f" · difficulty {'⭐' * session.difficulty}" if session.difficulty else ""))
    lines.append(f"Depends on: {', '.join(session.depends_on) or 'nothing'} · environment `{env}`")
    if session.context_prime:
        lines += ["", "## Context", "", session.context_prime.strip()]
    if session.required_resources:
        lines += ["", "## Required resources"] + [f"- {r}" for r in session.required_resources]
    lines += ["", "## Tasks"]
    for i, task in enumerate(session.tasks, 1):
        lines.append(f"{i}. {task.title}" + (f" ({task.minutes} min)" if task.minutes else ""))
        lines += [f"   - {d}" for d in task.details]
    judged = StatusBoard(plan, store, root).verdict(sid)
    verdicts = {c.text: c for c in judged.criteria}
    lines += ["", "## Success criteria (each is checked by `finks run`)", "",
              f"_Verdicts on `{env}` from its latest run; {LEGEND}. `{env}` "
              f"{'accepts' if judged.accept_planned else 'needs verified evidence, not'} planned evidence._", ""]
    for criterion in session.criteria:
        targets = ", ".join(f"`{c.target}` ({c.evidence_grade}, {','.join(c.envs)})" for c in criterion.checks)
        cv = verdicts.get(criterion.text)
        if cv is None:
            lines.append(f"- ➖ {criterion.text} — not a criterion on `{env}` (only {', '.join(criterion.envs)})")
            continue
        box = "x" if cv.accepted else " "
        lines.append(f"- [{box}] {VERDICT_MARK[cv.verdict]} {cv.label}: {criterion.text} — {targets}")
    if session.pitfalls:
        lines += ["", "## Common pitfalls"] + [f"- {p}" for p in session.pitfalls]
    if session.recovery:
        lines += ["", "## Recovery strategy", session.recovery.strip()]
    lines += ["", "## Handoffs of its predecessors"]
    if not session.depends_on:
        lines.append("(none)")
    for dep in session.depends_on:
        path = handoff_path(root, env, plan, dep)
        if path.exists():
            lines += ["", path.read_text(encoding="utf-8").strip()]
        else:
            lines.append(f"- {dep}: no handoff yet for `{env}` (run 'finks run {dep} --env {env}')")
    lines += ["", "## Repository layout of this area", "```"] + _layout(root, session.deliverables) + ["```"]
    lines += [
        "",
        "## Validate",
        f"- `finks run {session.id} --env {env}` — actions, then every check; writes the handoff",
        f"- `finks why {session.id}` — what blocks it, down to the failing check",
        f"- `finks show {session.id}` — the session as data",
    ]
    pytest_targets = [c.pytest for c in session.checks if c.pytest]
    lines += [f"- `pytest {t}`" for t in pytest_targets]
    return "\n".join(lines) + "\n"
