"""Handoff notes (the plan's "Handoff Documentation" format) and context primes.

A plan's notes live beside it: ``handoffs/<env>/`` next to its sessions
directory (for this repository, ``handoffs/`` at its root), or where its
``gates.yaml`` says (``handoffs: path``); FINKS_HANDOFFS overrides both.

Every note ends with one machine-readable line naming the run it was written
from (:data:`ORIGIN_MARK`). A prime presents a predecessor's note as current
only when this environment's history backs it (its latest run of that
predecessor is the note's run); any other note, such as one committed from
another machine, is labelled with its run, date and commit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finks.loader import Plan
from finks.outcomes import FAILING, Outcome, SessionOutcome, SessionState, Verdict
from finks.state import History, SessionRun, StateStore
from finks.status import StatusBoard
from finks.verdicts import LEGEND
from finks.verdicts import MARK as VERDICT_MARK

MARK = {Outcome.passed: "✅", Outcome.failed: "❌", Outcome.error: "❌", Outcome.skipped: "⏭️"}
VERDICT = {SessionOutcome.passed: "complete", SessionOutcome.not_applicable: "not applicable to this environment",
           SessionOutcome.unverified: "unverified"}
VERDICT_WORDS = {Verdict.verified: "verified", Verdict.planned: "planned (Pulumi mocks)",
                 Verdict.unverified: "unverified", Verdict.failed: "failed"}


# The last line of every note: where it came from, for primes to check against the history.
ORIGIN_MARK = "<!-- finks:handoff "
_ORIGIN_LINE = re.compile(r"^<!-- finks:handoff (\{.*\}) -->$", re.MULTILINE)
# Notes written before the origin line: their first bullet says as much.
_LEGACY_LINE = re.compile(r"^- Environment: `(?P<env>[^`]+)` · run `(?P<run_id>[^`]+)` · started (?P<started_at>\S+)"
                          r" · git (?P<commit>\S+)", re.MULTILINE)


def handoffs_dir(root: Path, plan: Plan | None = None) -> Path:
    """Where a plan's notes go: FINKS_HANDOFFS (tests, read-only checkouts), else the plan's own
    folder (beside its sessions directory, or the one its gates.yaml names), else root/handoffs."""
    override = os.environ.get("FINKS_HANDOFFS")
    if override:
        return Path(override)
    if plan is not None and plan.handoffs is not None:
        return plan.handoffs
    return root / "handoffs"


def handoff_path(root: Path, env: str, plan: Plan, sid: str) -> Path:
    return handoffs_dir(root, plan) / env / f"{plan.sessions[sid].file_stem}.md"


@dataclass(frozen=True)
class HandoffOrigin:
    """The run a note was written from (None: the note does not say)."""

    run_id: str | None
    started_at: str | None
    commit: str | None
    env: str | None = None


def read_origin(text: str) -> HandoffOrigin:
    """The origin a note records: its machine-readable line, else (an older note) its first bullet."""
    found = _ORIGIN_LINE.search(text)
    if found:
        try:
            data: dict[str, Any] = json.loads(found.group(1))
            return HandoffOrigin(data.get("run_id"), data.get("started_at"), data.get("commit"), data.get("env"))
        except ValueError:
            pass
    legacy = _LEGACY_LINE.search(text)
    if legacy:
        commit = legacy.group("commit")
        return HandoffOrigin(legacy.group("run_id"), legacy.group("started_at"),
                             None if commit == "unknown" else commit, legacy.group("env"))
    return HandoffOrigin(None, None, None)


def _without_origin(text: str) -> str:
    return _ORIGIN_LINE.sub("", text).strip()


def _git_words(git: dict[str, Any]) -> str:
    """``git 0381211abc12``, ``… (dirty: 2 files: a.py, b.py)``: the tree a run saw, finks' own notes aside."""
    words = f"git {git.get('commit') or 'unknown'}"
    if not git.get("dirty"):
        return words
    files = git.get("dirty_files")
    if not files:
        return words + " (dirty)"
    count = git.get("dirty_count", len(files))
    shown = ", ".join(f"`{f}`" for f in files[:5]) + (", …" if count > 5 else "")
    return words + f" (dirty: {count} file{'s' if count != 1 else ''}: {shown})"


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
    lines = [f"## {session.label} Handoff — {session.title}", ""]
    if run is None:
        return "\n".join(lines + ["No run recorded yet: run 'finks run " + sid + "'."]) + "\n"
    outcome = VERDICT.get(run.outcome, run.outcome) if run.outcome else "interrupted"
    judged = board.verdict(sid, run)
    lines += [
        f"- Environment: `{env}` · run `{run.run_id}` · started {run.started_at} · {_git_words(run.git)}",
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
    origin = {"session": sid, "env": env, "run_id": run.run_id, "started_at": run.started_at,
              "commit": run.git.get("commit"), "dirty": run.git.get("dirty")}
    lines += ["", ORIGIN_MARK + json.dumps(origin, separators=(",", ":")) + " -->"]
    return "\n".join(lines) + "\n"


def write_handoff(plan: Plan, env: str, root: Path, store: StateStore, sid: str) -> Path:
    """Write the note into this plan's handoffs folder (:func:`handoffs_dir`), atomically."""
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


def _provenance(dep: str, env: str, origin: HandoffOrigin, history: History) -> str:
    """Empty when this environment's history backs the note (its latest run of dep wrote it);
    otherwise the line that says where the note came from."""
    latest = history.latest(dep)
    if latest is not None and origin.run_id == latest.run_id:
        return ""
    if origin.run_id is None:
        where = "a note that names no run"
    else:
        where = (f"from run `{origin.run_id}` on {origin.started_at or 'an unknown date'} "
                 f"at commit {origin.commit or 'unknown'}")
    known = {r.run_id for r in history.runs.get(dep, [])}
    if origin.run_id is not None and origin.run_id in known and latest is not None:
        why = f"not the latest run of {dep} on `{env}` (that is `{latest.run_id}`, {latest.started_at})"
        todo = f"'finks handoff {dep} --env {env} --write' rewrites it"
    else:
        why = "not in this environment's history"
        todo = (f"this environment's latest run of {dep} is `{latest.run_id}`: 'finks handoff {dep} --env {env} "
                f"--write' rewrites the note from it" if latest is not None else
                f"run 'finks run {dep} --env {env}' for evidence of its own")
    return f"> ⚠️ Not this environment's evidence: {dep}'s handoff below is {where}, {why}; {todo}."


def render_prime(plan: Plan, env: str, root: Path, store: StateStore, sid: str) -> str:
    session = plan.sessions[sid]
    lines = [f"# Context prime — {session.label}: {session.title}", ""]
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
    history = store.history()
    judged = StatusBoard(plan, store, root, history).verdict(sid)
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
            text = path.read_text(encoding="utf-8")
            note = _provenance(dep, env, read_origin(text), history)
            lines += ["", *([note, ""] if note else []), _without_origin(text)]
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
