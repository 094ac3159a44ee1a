"""The plan's diagram drawn by Graphviz: weeks as bands, gates between them, status colours.

:func:`status_dot` writes the DOT source (pure); :func:`render` hands it to
Graphviz's ``dot`` through the ``graphviz`` package, in memory. Layout is
always Graphviz's: nothing here computes geometry.

In the SVG every session is ``<g id="s16" class="node session status-complete
critical">``, every dependency ``<g class="edge dep">`` (``critical`` on the
critical path) and every gate ``<g id="gate-week3" class="node gate
gate-passed">``, so that tests and stylesheets can find them. Each node's
``<title>`` (the browser's hover text) holds its status, estimate and slack.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

from core.errors import ConfigError
from finks.graph import Schedule, schedule
from finks.loader import Plan
from finks.outcomes import GateState, SessionState

if TYPE_CHECKING:
    from finks.status import StatusBoard

# fill, border: the colour of each status indicator of the plan (🔴🟡🟢🔵⚪ and ours).
STATUS_COLOURS: dict[SessionState, tuple[str, str]] = {
    SessionState.complete: ("#c8f0c8", "#2e7d32"),
    SessionState.not_applicable: ("#e0e0e0", "#424242"),
    SessionState.ready: ("#fff3b0", "#a68a00"),
    SessionState.blocked: ("#f9d4d4", "#c62828"),
    SessionState.in_progress: ("#cfe3ff", "#1565c0"),
    SessionState.optional: ("#ffffff", "#9e9e9e"),
    SessionState.stale: ("#ffe0b2", "#e65100"),
    SessionState.unverified: ("#e6d3c3", "#6d4c41"),
    SessionState.failed: ("#ef9a9a", "#8e0000"),
    SessionState.interrupted: ("#ead7f5", "#7b1fa2"),
}
GATE_COLOURS: dict[GateState, tuple[str, str]] = {
    GateState.passed: ("#c8f0c8", "#2e7d32"),
    GateState.ready: ("#fff3b0", "#a68a00"),
    GateState.pending: ("#eeeeee", "#757575"),
    GateState.failed: ("#ef9a9a", "#8e0000"),
    GateState.stale: ("#ffe0b2", "#e65100"),
    GateState.unverified: ("#e6d3c3", "#6d4c41"),
}
PLAIN = ("#f5f7fa", "#455a64")  # a session without a status (`finks graph` of the plan alone)
CRITICAL = "#c2185b"
FONT = "Helvetica,Arial,sans-serif"


def emoji(mark: str) -> str:
    """An indicator drawn as an emoji: ⚪ alone has text presentation (a small circle) in most fonts."""
    return mark + "\ufe0f" if len(mark) == 1 else mark


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _week_label(plan: Plan, week: int) -> str:
    return f"Week {week}" + (" · preparation" if week == 0 else "")


def status_dot(plan: Plan, sched: Schedule, statuses: Mapping[str, SessionState] | None = None,
               gates: Mapping[str, GateState] | None = None, indicators: Mapping[SessionState, str] | None = None,
               link: bool = False) -> str:
    """DOT source: one cluster per week, a gate node after each week's cluster.

    ``statuses``/``gates`` colour the nodes (none: the plan alone); ``link``
    makes each session a link to ``#session-<id>`` in the report page.
    """
    indicators = indicators or {}
    critical = set(sched.critical_path)
    critical_edges = set(zip(sched.critical_path, sched.critical_path[1:]))
    weeks: dict[int, list[str]] = {}
    for sid, s in plan.sessions.items():
        weeks.setdefault(s.week, []).append(sid)
    out = [
        "digraph finks {",
        f'  graph [rankdir=TB, compound=true, newrank=true, nodesep=0.25, ranksep=0.35, fontname={_q(FONT)},'
        ' fontsize=13, bgcolor="transparent", labeljust=l];',
        f'  node [shape=box, style="rounded,filled", fontname={_q(FONT)}, fontsize=11, margin="0.08,0.04"];',
        f'  edge [color="#78909c", arrowsize=0.7, fontname={_q(FONT)}];',
    ]
    for week in sorted(weeks):
        out.append(f"  subgraph cluster_week{week} {{")
        out.append(f'    label={_q(_week_label(plan, week))}; id="week{week}"; class="week";'
                   ' style="rounded,filled"; fillcolor="#f7f9fb"; color="#cfd8dc"; fontcolor="#37474f";')
        for sid in weeks[week]:
            out.append("    " + _session_node(plan, sid, sched, statuses, indicators, sid in critical, link))
        out.append("  }")
    for gate in plan.gates.values():
        out.append("  " + _gate_node(gate.id, gate.week, gate.title, gates))
    for sid, s in plan.sessions.items():
        for dep in s.depends_on:
            on_path = (dep, sid) in critical_edges
            attrs = [f'id="e-{dep}-{sid}"', f'class="dep{" critical" if on_path else ""}"',
                     f"tooltip={_q(f'{dep} → {sid}' + (' (critical path)' if on_path else ''))}"]
            if on_path:
                attrs += [f'color="{CRITICAL}"', "penwidth=3"]
            out.append(f'  "{dep}" -> "{sid}" [{", ".join(attrs)}];')
    out += _gate_edges(plan, weeks)
    out.append("}")
    return "\n".join(out) + "\n"


def _session_node(plan: Plan, sid: str, sched: Schedule, statuses: Mapping[str, SessionState] | None,
                  indicators: Mapping[SessionState, str], critical: bool, link: bool) -> str:
    s = plan.sessions[sid]
    status = statuses.get(sid) if statuses else None
    fill, border = STATUS_COLOURS.get(status, PLAIN) if status else PLAIN
    title = "<br/>".join(_h(line) for line in textwrap.wrap(s.title, 22)[:3])
    mark = emoji(indicators.get(status, "")) if status else ""
    head = f"<b>{sid.upper()}</b>" + (f"&#160;{mark}" if mark else "")  # Graphviz drops plain spaces here
    facts = f"{status.label} · {s.estimate_hours}" if status else f"{s.estimate_hours}"
    label = f'<{head}<br/>{title}<br/><font point-size="9">{_h(facts)}</font>>'
    slack = sched.slack.get(sid, 0.0)
    tip = (f"{sid.upper()} {s.title}" + (f" — {status.label}" if status else "")
           + f"\nestimate {s.estimate_hours} · earliest start {sched.earliest_start.get(sid, 0):g}h"
           + f" · slack {slack:g}h" + (" · on the critical path" if critical else ""))
    classes = ["session", f"status-{status.value if status else 'unknown'}"] + (["critical"] if critical else [])
    attrs = [f'id="{sid}"', f'class="{" ".join(classes)}"', f"label={label}", f'fillcolor="{fill}"',
             f'color="{CRITICAL if critical else border}"', f"penwidth={3 if critical else 1.4}",
             f"tooltip={_q(tip)}"]
    if s.optional:
        attrs[3:3] = ['style="rounded,filled,dashed"']
    if link:
        attrs.append(f'URL="#session-{sid}"')
    return f'"{sid}" [{", ".join(attrs)}];'


def _gate_node(gid: str, week: int, title: str, gates: Mapping[str, GateState] | None) -> str:
    state = gates.get(gid) if gates else None
    fill, border = GATE_COLOURS.get(state, PLAIN) if state else PLAIN
    words = "<br/>".join(_h(line) for line in textwrap.wrap(title, 40)[:2])
    head = f"<b>◆ Gate {gid}</b>" + (f"&#160;· {_h(state.value)}" if state else "")
    label = f'<{head}<br/><font point-size="9">{words}</font>>'
    classes = ["gate", f"gate-{state.value if state else 'unknown'}"]
    tip = f"gate {gid}: {title}" + (f" — {state.value}" if state else "")
    return (f'gate_{gid} [id="gate-{gid}", class="{" ".join(classes)}", shape=box, style="filled,dashed",'
            f' fillcolor="{fill}", color="{border}", label={label}, tooltip={_q(tip)}];')


def _gate_edges(plan: Plan, weeks: dict[int, list[str]]) -> list[str]:
    """Week N's band → gate N → week N+1's band; invisible edges keep each gate between them."""
    out: list[str] = []
    for gate in plan.gates.values():
        before = weeks.get(gate.week, [])
        after = weeks.get(gate.week + 1, [])
        for sid in before:
            out.append(f'  "{sid}" -> gate_{gate.id} [style=invis];')
        for sid in after:
            out.append(f'  gate_{gate.id} -> "{sid}" [style=invis];')
        attrs = 'class="gate-link", style=dashed, color="#90a4ae", arrowhead=none'
        if before:
            out.append(f'  "{before[-1]}" -> gate_{gate.id} [ltail=cluster_week{gate.week}, {attrs}];')
        if after:
            out.append(f'  gate_{gate.id} -> "{after[0]}" [lhead=cluster_week{gate.week + 1}, {attrs}];')
    return out


def draw(plan: Plan, fmt: str = "svg", board: StatusBoard | None = None, link: bool = False) -> bytes:
    """The plan drawn by Graphviz; with a board, coloured by its statuses (high-estimate slack)."""
    from finks.status import INDICATOR

    sched = schedule(plan, "high")
    if board is None:
        return render(status_dot(plan, sched, link=link), fmt)
    statuses = {row.sid: row.status for row in board.all()}
    gates = {gid: board.gate(gid).status for gid in plan.gates}
    return render(status_dot(plan, sched, statuses, gates, INDICATOR, link=link), fmt)


def render(source: str, fmt: str = "svg") -> bytes:
    """Lay out and draw DOT source with Graphviz (``svg`` or ``png``), in memory."""
    try:
        import graphviz
    except ImportError as exc:
        raise ConfigError("the graphviz Python package is not installed",
                          hint="pip install graphviz (and apt-get install graphviz for 'dot')") from exc
    try:
        data = graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise ConfigError("Graphviz's 'dot' is not on PATH",
                          hint="install Graphviz: apt-get install graphviz (brew install graphviz)") from None
    # Graphviz escapes every hyphen, in ids and classes too: "status&#45;failed" is "status-failed".
    return data.replace(b"&#45;", b"-") if fmt == "svg" else data


_TITLE = re.compile(r'(<g id="(?P<id>[^"]+)" class="(?P<cls>[^"]*)">\n<title>)[^<]*(</title>)')
_TIP = re.compile(r'<g id="a_(?P<id>[^"]+)"><a (?:xlink:href="(?P<href>[^"]*)" )?xlink:title="(?P<tip>[^"]*)">')


def inline_svg(svg: bytes) -> str:
    """Graphviz's SVG made fit for inlining in HTML: no prolog, scalable, hover text in <title>.

    Graphviz puts a node's tooltip on a wrapping ``<a xlink:title>``; the
    ``<title>`` (what every browser shows on hover) only holds the node name,
    so the tooltip is copied there.
    """
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
    # Namespace names are not fetched, but an HTML parser needs none: keep the page free of URLs.
    text = re.sub(r' xmlns(?::xlink)?="[^"]*"', "", text)
    tips = {m["id"]: m["tip"] for m in _TIP.finditer(text)}
    text = _TITLE.sub(lambda m: m.group(1) + tips.get(m["id"], html.escape(m["id"])) + m.group(4), text)
    size = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', text)
    if size:
        width, height = size.groups()
        text = text.replace(size.group(0), f'<svg width="{width}pt" height="{height}pt" role="img" '
                            f'aria-label="session dependency graph" class="plan-graph"', 1)
    return text
