"""The plan as one self-contained HTML page: graph, evidence, gates, runs, environments.

Pure: :func:`render_report` takes the plan and one :class:`EnvView` per
environment (its status board and the links the shell worked out) and returns
the page as text. The page needs no network and no JavaScript: the graph is
Graphviz's SVG inlined (:mod:`finks.diagram`), the styles are inline, the
context primes sit in ``<details>``.

A criterion shows its verdict (verified, planned, unverified, failed) as the
board judges it (``SessionStatus.verdict``); without one, what its check
records say (their ``verdict`` or ``grade``), else their outcomes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finks.diagram import GATE_COLOURS, STATUS_COLOURS, draw, emoji, inline_svg
from finks.graph import Schedule, schedule, topo_order
from finks.loader import Plan
from finks.outcomes import FAILING, SessionState
from finks.state import SessionRun
from finks.status import INDICATOR, StatusBoard

LAST_RUNS = 5
RUNS_TABLE = 200
OPEN_BY_DEFAULT = (SessionState.failed, SessionState.interrupted, SessionState.in_progress, SessionState.stale)


@dataclass(frozen=True)
class EnvView:
    """One environment's evidence, and where its handoff files are (href per session)."""

    env: str
    board: StatusBoard
    handoffs: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_history(self) -> bool:
        return bool(self.board.history.runs or self.board.history.gates)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _when(stamp: str | None) -> str:
    return _e(stamp.replace("T", " ").rstrip("Z")) if stamp else "–"


def grade(check: Mapping[str, Any]) -> str:
    """A check record as the page shows it: its verdict, else the grade of a pass, else its outcome."""
    if check.get("verdict"):
        return str(check["verdict"])
    if check.get("outcome") == "passed" and check.get("grade"):
        return str(check["grade"])
    return str(check.get("outcome") or "unknown")


def criterion_grade(checks: Sequence[Mapping[str, Any]]) -> str:
    """What a criterion's checks in one run come to, the way finks.verdicts judges it.

    failed (or error) if a check did not verify; else the best pass (verified
    over planned); else, every check skipped, unverified when the records carry
    grades and plain ``skipped`` when they predate them; ``not run`` without records.
    """
    if not checks:
        return "not run"
    outcomes = {str(c.get("outcome")) for c in checks}
    for failing in ("failed", "error"):
        if failing in outcomes:
            return failing
    passes = [grade(c) for c in checks if c.get("outcome") == "passed"]
    for best in ("verified", "planned", "passed"):
        if best in passes:
            return best
    if passes:
        return passes[0]
    verdicts = [str(c["verdict"]) for c in checks if c.get("verdict")]
    if verdicts:
        return verdicts[0]
    return "unverified" if any(c.get("grade") for c in checks) else "skipped"


def _badge(word: str, kind: str = "grade") -> str:
    return f'<span class="badge {kind}-{_e(word.replace(" ", "-"))}">{_e(word.replace("_", " "))}</span>'


def _status(status: SessionState) -> str:
    return f'<span class="ind">{emoji(INDICATOR.get(status, ""))}</span> {_badge(status.value, "status")}'


# ---- sections ----------------------------------------------------------------
def _legend() -> str:
    items = [f'<li><span class="swatch" style="background:{fill};border-color:{line}"></span>'
             f'{emoji(INDICATOR[state])} {_e(state.label)}</li>' for state, (fill, line) in STATUS_COLOURS.items()
             if state in INDICATOR]
    items.append('<li><span class="swatch critical"></span>critical path (no slack)</li>')
    items.append('<li><span class="swatch dashed"></span>optional session · gate</li>')
    gates = " ".join(f'<span class="chip" style="background:{fill};border-color:{line}">{_e(state.value)}</span>'
                     for state, (fill, line) in GATE_COLOURS.items())
    return (f'<div class="legend"><h3>Legend</h3><ul>{"".join(items)}</ul>'
            f'<p class="small">gates: {gates}</p><p class="small">Hover a node for its slack; click it for its '
            f'evidence.</p></div>')


def _counts(plan: Plan, view: EnvView) -> str:
    tally: dict[SessionState, int] = {}
    for row in view.board.all():
        tally[row.status] = tally.get(row.status, 0) + 1
    chips = [f'<span class="chip status-{s.value}">{emoji(INDICATOR.get(s, ""))} {n} {_e(s.label)}</span>'
             for s, n in sorted(tally.items(), key=lambda kv: list(SessionState).index(kv[0]))]
    return f'<p class="counts">{" ".join(chips)}</p>'


def _schedule_table(plan: Plan, view: EnvView, sched: Schedule) -> str:
    rows = []
    for sid in topo_order(plan):
        s, st = plan.sessions[sid], view.board.session(sid)
        critical = sid in sched.critical_path
        rows.append(
            f'<tr class="{"critical" if critical else ""}"><td><a href="#session-{sid}">{sid.upper()}</a></td>'
            f'<td>{_e(s.title)}</td><td>{s.week}</td><td>{_status(st.status)}</td><td>{_e(s.estimate_hours)}</td>'
            f'<td class="num">{sched.earliest_start[sid]:g}h</td><td class="num slack">{sched.slack[sid]:g}h</td>'
            f'<td title="{"on the critical path" if critical else ""}">{"◆" if critical else ""}</td></tr>')
    path = " → ".join(s.upper() for s in sched.critical_path)
    return (f'<h3>Schedule ({sched.basis} estimates)</h3><p>Critical path, {sched.total_hours:g}h with unlimited '
            f'parallelism: <b>{_e(path)}</b></p><table class="schedule"><thead><tr><th>session</th><th>title</th>'
            f'<th>week</th><th>status</th><th>estimate</th><th>earliest start</th><th>slack</th><th></th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>')


def _gates(plan: Plan, view: EnvView) -> str:
    if not plan.gates:
        return ""
    rows = []
    for gid, gate in plan.gates.items():
        st = view.board.gate(gid)
        checks = (st.record or {}).get("checks") or []
        detail = "".join(f"<li><code>{_e(c.get('check'))}</code> {_badge(grade(c))} {_e(c.get('message', ''))}</li>"
                         for c in checks)
        rows.append(f'<tr id="gate-row-{gid}"><td><b>{_e(gid)}</b></td><td>{_e(gate.title)}</td>'
                    f'<td>{_badge(st.status.value, "gate")}</td><td>{_e(st.reason)}'
                    f'{f"<ul>{detail}</ul>" if detail else ""}</td>'
                    f'<td>{", ".join(_e(s) for s in view.board.gate_sessions(gate))}</td></tr>')
    strict = "" if plan.strict_gates else " (advisory: strict: false)"
    return (f'<section id="gates"><h3>Gates{strict}</h3><table><thead><tr><th>gate</th><th>title</th>'
            f'<th>status</th><th>reason and checks</th><th>sessions</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _timeline(plan: Plan, view: EnvView) -> str:
    runs = [r for sid in plan.sessions for r in view.board.history.runs.get(sid, [])]
    if not runs:
        return ('<section id="timeline"><h2>Runs</h2><p>No run recorded on this environment yet: '
                f'<code>finks run --all --env {_e(view.env)}</code>.</p></section>')
    latest = [(sid, view.board.history.latest(sid)) for sid in topo_order(plan)]
    bars = [(sid, run) for sid, run in latest if run is not None]
    longest = max((run.duration_s or 0.0 for _, run in bars), default=0.0) or 1.0
    row_h, label_w, bar_w = 22, 260, 520
    parts = [f'<svg class="bars" width="{label_w + bar_w + 160}" height="{row_h * len(bars) + 8}" role="img" '
             f'aria-label="duration of each session\'s latest run">']
    for i, (sid, run) in enumerate(bars):
        y = 4 + i * row_h
        word = run.outcome.value if run.outcome else "interrupted"
        width = max(2.0, bar_w * (run.duration_s or 0.0) / longest) if run.finished else 6.0
        title = f"{sid.upper()} run {run.run_id}: {word}, {_dur(run.duration_s)}, started {run.started_at}"
        parts.append(
            f'<g class="bar outcome-{_e(word)}"><title>{_e(title)}</title>'
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{sid.upper()} '
            f'{_e(_clip(plan.sessions[sid].title, 30))}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row_h - 7}" rx="3"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 15}">{_e(_dur(run.duration_s))} {_e(word)}</text></g>')
    parts.append("</svg>")
    ordered = sorted(runs, key=lambda r: r.started_at, reverse=True)[:RUNS_TABLE]
    rows = "".join(
        f'<tr><td>{_when(r.started_at)}</td><td><a href="#session-{r.session}">{r.session.upper()}</a></td>'
        f'<td>{_badge(r.outcome.value if r.outcome else "interrupted", "outcome")}</td>'
        f'<td class="num">{_e(_dur(r.duration_s))}</td><td>{_check_tally(r)}</td><td><code>{_e(r.run_id)}</code>'
        f'</td><td><code>{_e((r.git.get("commit") or "")[:10])}</code></td></tr>' for r in ordered)
    return (f'<section id="timeline"><h2>Runs on {_e(view.env)}</h2><h3>Latest run of each session</h3>'
            f'{"".join(parts)}<h3>Every run, newest first</h3><table class="runs"><thead><tr><th>started</th>'
            f'<th>session</th><th>outcome</th><th>duration</th><th>checks</th><th>run</th><th>git</th></tr>'
            f'</thead><tbody>{rows}</tbody></table></section>')


def _check_tally(run: SessionRun) -> str:
    passed = sum(c.get("outcome") == "passed" for c in run.checks)
    failing = sum(c.get("outcome") in FAILING for c in run.checks)
    skipped = sum(c.get("outcome") == "skipped" for c in run.checks)
    return f"{passed} passed · {failing} failed · {skipped} skipped" if run.checks else "–"


def _environments(plan: Plan, views: Sequence[EnvView]) -> str:
    shown = [v for v in views if v.has_history]
    if len(shown) < 2:
        return ""
    head = "".join(f"<th>{_e(v.env)}</th>" for v in shown)
    rows = []
    for sid in topo_order(plan):
        cells = []
        for v in shown:
            st = v.board.session(sid)
            when = f'<br/><span class="small">{_when(st.last_run.started_at)}</span>' if st.last_run else ""
            cells.append(f'<td class="env-cell" data-env="{_e(v.env)}">{_status(st.status)}{when}</td>')
        rows.append(f'<tr><td>{sid.upper()} {_e(plan.sessions[sid].title)}</td>{"".join(cells)}</tr>')
    for gid in plan.gates:
        gate_cells = "".join(f'<td>{_badge(v.board.gate(gid).status.value, "gate")}</td>' for v in shown)
        rows.append(f"<tr><td>gate {_e(gid)}</td>{gate_cells}</tr>")
    return (f'<section id="environments"><h2>Environments side by side</h2><table class="envs"><thead><tr>'
            f'<th>session</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


def _criteria(plan: Plan, sid: str, run: SessionRun | None, verdict: Any = None) -> str:
    """Each criterion with its verdict (the board's, when it judges them) and its checks' evidence."""
    judged = {c.text: c for c in verdict.criteria} if verdict is not None else {}
    env = getattr(verdict, "env", "")
    by_criterion: dict[str, list[dict[str, Any]]] = {}
    for check in run.checks if run else []:
        by_criterion.setdefault(str(check.get("criterion", "")), []).append(check)
    rows = []
    for criterion in plan.sessions[sid].criteria:
        checks = by_criterion.get(criterion.text, [])
        recorded = {str(c.get("check")) for c in checks}
        items = [f'<li><code>{_e(c.get("check"))}</code> {_badge(grade(c))} {_e(c.get("message", ""))}'
                 f' <span class="small">{_e(_dur(c.get("duration_s")))}</span>'
                 + (f'<pre class="excerpt">{_e(str(c["excerpt"])[-1200:])}</pre>'
                    if c.get("excerpt") and c.get("outcome") in FAILING else "") + "</li>" for c in checks]
        items += [f'<li><code>{_e(spec.id)}</code> {_badge("not run")} <span class="small">{_e(spec.kind)} '
                  f'{_e(spec.target)}</span></li>' for spec in criterion.checks if spec.id not in recorded]
        found = judged.get(criterion.text)
        if found is not None:
            refused = not found.accepted and found.label not in ("failed", "error")
            word = _badge(str(found.label)) + (f' <span class="small">not accepted on {_e(env)}</span>'
                                               if refused else "")
            word += f'<div class="small">{_e(found.remedy)}</div>' if found.remedy else ""
        elif verdict is not None and run is not None:
            word = _badge("not on this env", "grade")
        else:
            word = _badge(criterion_grade(checks))
        rows.append(f'<tr><td>{_e(criterion.text)}</td><td>{word}</td>'
                    f'<td><ul class="checks">{"".join(items)}</ul></td></tr>')
    return (f'<table class="criteria"><thead><tr><th>criterion</th><th>verdict</th><th>checks of the latest run'
            f'</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _session(plan: Plan, view: EnvView, sid: str, sched: Schedule, prime: str | None,
             source: str | None) -> str:
    s, st = plan.sessions[sid], view.board.session(sid)
    runs = list(reversed(view.board.history.runs.get(sid, [])))[:LAST_RUNS]
    links = []
    if source:
        links.append(f'<a href="{_e(source)}">plan file</a>')
    if sid in view.handoffs:
        links.append(f'<a class="handoff" href="{_e(view.handoffs[sid])}">handoff ({_e(view.env)})</a>')
    meta = (f"week {s.week} · area <code>{_e(s.area)}</code> · estimate {_e(s.estimate_hours)} · slack "
            f"{sched.slack[sid]:g}h{' (critical path)' if sid in sched.critical_path else ''} · depends on "
            + (", ".join(f'<a href="#session-{d}">{d.upper()}</a>' for d in s.depends_on) or "nothing")
            + (" · optional" if s.optional else "") + (" · " + " · ".join(links) if links else ""))
    run_rows = "".join(
        f"<tr><td>{_when(r.started_at)}</td><td>{_badge(r.outcome.value if r.outcome else 'interrupted', 'outcome')}"
        f"</td><td>{_e(_dur(r.duration_s))}</td><td>{_check_tally(r)}</td><td><code>{_e(r.run_id)}</code></td></tr>"
        for r in runs)
    last = (f'<table class="runs"><thead><tr><th>started</th><th>outcome</th><th>duration</th><th>checks</th>'
            f'<th>run</th></tr></thead><tbody>{run_rows}</tbody></table>') if runs else "<p>No run yet.</p>"
    actions = "".join(f"<li>{_badge(grade(a))} {_e(a.get('task'))}: {_e(a.get('message', ''))}</li>"
                      for a in (runs[0].actions if runs else []))
    prime_html = (f'<details class="prime"><summary>Context prime (<code>finks prime {sid}</code>)</summary>'
                  f'<pre>{_e(prime)}</pre></details>') if prime else ""
    opened = " open" if st.status in OPEN_BY_DEFAULT else ""
    verdict = getattr(st, "verdict", None)
    counts = f' <span class="small">· {_e(verdict.summary())}</span>' if verdict is not None else ""
    return (f'<details class="session status-{st.status.value}" id="session-{sid}"{opened}><summary>'
            f'<b>{sid.upper()}</b> {_e(s.title)} {_status(st.status)}{counts} <span class="reason">{"— " + _e(st.reason) if st.reason else ""}</span>'
            f'</summary><div class="body"><p class="meta">{meta}</p>'
            f'{_criteria(plan, sid, runs[0] if runs else None, verdict)}'
            + (f"<h4>Task actions of the latest run</h4><ul>{actions}</ul>" if actions else "")
            + f"<h4>Last runs</h4>{last}{prime_html}</div></details>")


def render_report(plan: Plan, views: Sequence[EnvView], *, primes: Mapping[str, str] | None = None,
                  sources: Mapping[str, str] | None = None, generated_at: str = "") -> str:
    """The report page for ``views[0]``'s environment, the others side by side."""
    view = views[0]
    sched = schedule(plan, "high")
    svg = inline_svg(draw(plan, "svg", view.board, link=True))
    primes, sources = primes or {}, sources or {}
    sessions = "".join(_session(plan, view, sid, sched, primes.get(sid), sources.get(sid)) for sid in plan.sessions)
    others = [v.env for v in views[1:] if v.has_history]
    anchors = ["graph", "gates", "timeline", *(["environments"] if others else []), "sessions"]
    nav = " · ".join(f'<a href="#{a}">{a}</a>' for a in anchors)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Finks plan · {_e(view.env)}</title><style>{CSS}</style></head>
<body><header><h1>Finks — the plan on <code>{_e(view.env)}</code></h1>
<p class="small">{len(plan.sessions)} sessions from <code>{_e(plan.directory)}</code>
{f"· generated {_when(generated_at)} UTC" if generated_at else ""}
{f"· also recorded: {', '.join(_e(o) for o in others)}" if others else ""}</p>
{_counts(plan, view)}<nav>{nav}</nav></header>
<main><section id="graph" class="overview"><figure class="graph">{svg}</figure><div class="side">{_legend()}
{_schedule_table(plan, view, sched)}{_gates(plan, view)}</div></section>
{_timeline(plan, view)}{_environments(plan, views)}
<section id="sessions"><h2>Sessions</h2>{sessions}</section></main>
<footer class="small">Written by <code>finks report</code>: statuses are derived from the evidence in
the history of each environment, never set by hand.</footer>
<script>{SCRIPT}</script></body></html>
"""


# The one enhancement: a click on a node opens that session's (closed) <details>.
SCRIPT = ("function openTarget(){var t=document.getElementById(decodeURIComponent(location.hash.slice(1)));"
          "if(t&&t.tagName==='DETAILS')t.open=true}addEventListener('hashchange',openTarget);openTarget();")


CSS = """
:root{--fg:#1f2933;--muted:#607080;--line:#d9e0e6;--bg:#ffffff;--soft:#f5f7fa;--critical:#c2185b}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg)}header{padding:16px 24px 8px;border-bottom:1px solid var(--line);background:var(--soft)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);
padding-bottom:4px}h3{font-size:15px;margin:16px 0 8px}h4{font-size:13px;margin:12px 0 6px;color:var(--muted)}
main{padding:0 24px 24px}footer{padding:12px 24px;border-top:1px solid var(--line)}nav a{margin-right:4px}
a{color:#1558b0;text-decoration:none}a:hover{text-decoration:underline}.graph a:hover{text-decoration:none}code{font:12px ui-monospace,Menlo,monospace}
.small{font-size:12px;color:var(--muted)}.schedule td:nth-child(4){white-space:nowrap}.overview{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.graph{margin:12px 0;flex:0 1 auto;max-width:100%}.graph svg{max-width:100%;height:auto}.side{flex:1 1 520px;min-width:0}
.graph .node.session:hover path,.graph .node.session:hover polygon{stroke-width:3}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}th,td{border-bottom:1px solid var(--line);padding:4px 6px;
text-align:left;vertical-align:top}th{font-size:12px;color:var(--muted);font-weight:600}td.num{text-align:right;
white-space:nowrap}tr.critical td:first-child{border-left:3px solid var(--critical)}
.legend ul{list-style:none;padding:0;margin:0;columns:2}.legend li{margin:2px 0}
.swatch{display:inline-block;width:14px;height:14px;border:2px solid;border-radius:3px;vertical-align:-2px;margin-right:6px}
.swatch.critical{border-color:var(--critical);border-width:3px}.swatch.dashed{border-style:dashed;border-color:#78909c}
.chip{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:1px 8px;margin:2px 2px;font-size:12px}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;background:#eceff1;color:#37474f;white-space:nowrap}
.badge.status-complete,.badge.grade-passed,.badge.grade-verified,.badge.outcome-passed,.badge.gate-passed
{background:#c8f0c8;color:#1b5e20}.badge.grade-planned{background:#d6e4ff;color:#0d3c8c}
.badge.status-failed,.badge.grade-failed,.badge.grade-error,.badge.outcome-failed,.badge.gate-failed{background:#ffcdd2;color:#8e0000}
.badge.status-blocked{background:#f9d4d4;color:#b71c1c}.badge.status-ready,.badge.gate-ready{background:#fff3b0;color:#6b5900}
.badge.grade-unverified,.badge.status-stale,.badge.gate-stale{background:#ffe0b2;color:#8a3b00}
.badge.status-unverified{background:#e6d3c3;color:#4e342e}.badge.status-not_applicable{background:#e0e0e0;color:#424242}
.badge.status-in_progress{background:#cfe3ff;color:#0d47a1}.badge.status-interrupted,.badge.outcome-interrupted
{background:#ead7f5;color:#5e1380}.badge.grade-not-run,.badge.grade-skipped{background:#eceff1;color:#607080}
details.session{border:1px solid var(--line);border-left:5px solid #b0bec5;border-radius:6px;margin:6px 0;background:#fff}
details.session:target{outline:2px solid var(--critical)}details.session>summary{padding:6px 10px;cursor:pointer}details.session .body{padding:0 12px 10px}
details.status-complete{border-left-color:#2e7d32}details.status-failed{border-left-color:#8e0000}
details.status-blocked{border-left-color:#c62828}details.status-ready{border-left-color:#c9a800}
details.status-stale{border-left-color:#e65100}details.status-interrupted{border-left-color:#7b1fa2}
details.status-in_progress{border-left-color:#1565c0}details.status-unverified{border-left-color:#6d4c41}.reason{color:var(--muted);font-size:12px}
ul.checks{margin:0;padding-left:16px}pre{white-space:pre-wrap;background:var(--soft);padding:8px;border-radius:4px;
font:12px/1.4 ui-monospace,Menlo,monospace;max-height:420px;overflow:auto}pre.excerpt{max-height:160px;margin:4px 0}
.bars text{font-size:12px;fill:#37474f}.bars rect{fill:#90a4ae}.bars .outcome-passed rect{fill:#43a047}
.bars .outcome-failed rect{fill:#c62828}.bars .outcome-not_applicable rect{fill:#b0bec5}
.bars .outcome-interrupted rect{fill:#8e24aa}.ind{font-size:13px}
@media print{details{break-inside:avoid}details.session{display:block}}
"""
