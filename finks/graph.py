"""The session graph: order, waves, critical path, selectors.

Pure functions over a :class:`~finks.loader.Plan`; no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import UsageError
from finks.loader import Plan, _suggest


def edges(plan: Plan, gates: bool = False) -> dict[str, list[str]]:
    """Each node and what it needs first.

    Without ``gates``: sessions and their dependencies, as the diagram draws
    them. With ``gates`` and a strict plan: what finks enforces, where a
    session of week N+1 also needs gate week N (a node of its own), and a
    gate needs its sessions.
    """
    if not (gates and plan.strict_gates):
        return {sid: list(s.depends_on) for sid, s in plan.sessions.items()}
    out = {sid: plan.needs(sid) for sid in plan.sessions}
    out.update({gid: plan.gate_members(g) for gid, g in plan.gates.items()})
    return out


def _key(plan: Plan, node: str) -> tuple[int, int]:
    """Among nodes ready at once: sessions in plan order, then gates by week."""
    return (0, plan.position(node)) if node in plan.sessions else (1, plan.gates[node].week)


def _children(graph: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {node: [] for node in graph}
    for node, needs in graph.items():
        for dep in needs:
            out[dep].append(node)
    return out


def _closure(graph: dict[str, list[str]], start: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def upstream(plan: Plan, sid: str, gates: bool = False) -> set[str]:
    """Every session sid needs, transitively (with ``gates``: through the gates before it too)."""
    graph = edges(plan, gates)
    return {node for node in _closure(graph, graph[sid]) if node in plan.sessions}


def dependents(plan: Plan) -> dict[str, list[str]]:
    return _children(edges(plan))


def downstream(plan: Plan, sid: str) -> set[str]:
    return _closure(dependents(plan), dependents(plan)[sid])


def _order(plan: Plan, graph: dict[str, list[str]], nodes: set[str]) -> list[str]:
    import heapq

    waiting = {n: {d for d in graph[n] if d in nodes} for n in nodes}
    children = _children(graph)
    heap = [(_key(plan, n), n) for n, deps in waiting.items() if not deps]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, node = heapq.heappop(heap)
        order.append(node)
        for child in children[node]:
            if child in waiting and node in waiting[child]:
                waiting[child].discard(node)
                if not waiting[child]:
                    heapq.heappush(heap, (_key(plan, child), child))
    if len(order) != len(nodes):  # pragma: no cover - the loader rejects cycles
        raise UsageError("dependency cycle in selection")
    return order


def topo_order(plan: Plan, subset: set[str] | None = None, gates: bool = False) -> list[str]:
    """Sessions in dependency order (with ``gates``: in the order finks enforces); lowest number first."""
    graph = edges(plan, gates)
    nodes = set(plan.sessions) if subset is None else set(subset)
    nodes |= set(graph) - set(plan.sessions)  # the gates, when they count
    return [n for n in _order(plan, graph, nodes) if n in plan.sessions]


def waves(plan: Plan, gates: bool = False) -> list[list[str]]:
    """Groups of sessions that can run in parallel: by dependencies alone, or (``gates``)
    as finks enforces them, where a gate is a step of its own between the weeks."""
    graph = edges(plan, gates)
    level: dict[str, int] = {}
    for node in _order(plan, graph, set(graph)):
        level[node] = 1 + max((level[d] for d in graph[node]), default=-1)
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node, lvl in level.items():
        out[lvl].append(node)
    return [sorted(w, key=lambda n: _key(plan, n)) for w in out]


@dataclass(frozen=True)
class Schedule:
    """Critical-path analysis for one choice of estimates (low or high).

    With ``gates`` the gates are steps of the path (zero hours each).
    """

    basis: str
    total_hours: float
    critical_path: list[str]
    earliest_start: dict[str, float]
    slack: dict[str, float]
    gates: bool = False


def _hours(plan: Plan, sid: str, basis: str) -> float:
    if sid not in plan.sessions:
        return 0.0  # a gate's checks take minutes: no estimate
    estimate = plan.sessions[sid].estimate_hours
    return estimate.high if basis == "high" else estimate.low


def sum_of_estimates(plan: Plan, basis: str = "high") -> float:
    """The hours of work in the plan, one session after another."""
    return sum(_hours(plan, sid, basis) for sid in plan.sessions)


def schedule(plan: Plan, basis: str = "high", gates: bool = False) -> Schedule:
    """Earliest starts, slack and the critical path: as the diagram draws it, or
    (``gates``) as finks enforces it with strict gates."""
    graph = edges(plan, gates)
    dur = {node: _hours(plan, node, basis) for node in graph}
    order = _order(plan, graph, set(graph))
    es: dict[str, float] = {}
    for node in order:
        es[node] = max((es[d] + dur[d] for d in graph[node]), default=0.0)
    total = max((es[n] + dur[n] for n in order), default=0.0)
    children = _children(graph)
    lf: dict[str, float] = {}
    for node in reversed(order):
        lf[node] = min((lf[c] - dur[c] for c in children[node]), default=total)
    slack = {node: round(lf[node] - dur[node] - es[node], 6) for node in order}
    # Walk the zero-slack chain from a start to the end, following the longest edge;
    # through a gate when one is on it (a gate takes no time: it and its successor tie).
    path: list[str] = []
    current = min((n for n in order if slack[n] == 0 and es[n] == 0), key=functools.partial(_key, plan), default=None)
    while current is not None:
        path.append(current)
        nxt = [c for c in children[current] if slack[c] == 0 and abs(es[c] - (es[current] + dur[current])) < 1e-9]
        current = min(nxt, key=lambda n: (-_key(plan, n)[0], _key(plan, n)[1])) if nxt else None
    return Schedule(basis, total, path, es, slack, gates and plan.strict_gates)


def plan_data(plan: Plan) -> dict[str, Any]:
    """`finks plan --json`: waves, critical path and totals as finks enforces them
    (gates included when strict), and as the diagram draws them (dependencies only)."""
    enforced = {b: schedule(plan, b, gates=True) for b in ("low", "high")}
    drawn = {b: schedule(plan, b) for b in ("low", "high")}
    return {
        "gates": "strict" if plan.strict_gates else "advisory",
        "waves": waves(plan, gates=True),
        "critical_path": {b: enforced[b].critical_path for b in enforced},
        "total_hours": {b: enforced[b].total_hours for b in enforced},
        "slack_hours": {s: {b: enforced[b].slack[s] for b in enforced} for s in plan.sessions},
        "diagram": {
            "waves": waves(plan),
            "critical_path": {b: drawn[b].critical_path for b in drawn},
            "total_hours": {b: drawn[b].total_hours for b in drawn},
        },
        "sum_of_estimates": {b: sum_of_estimates(plan, b) for b in ("low", "high")},
    }


@dataclass(frozen=True)
class Selection:
    """Sessions to run, in dependency order, and the ones the user named.

    A named (explicit) session runs even when it is complete; any other
    selected session only when it is not.
    """

    ids: tuple[str, ...]
    explicit: frozenset[str]


def resolve(plan: Plan, selector: str) -> Selection:
    """:func:`select`, plus what the selector names explicitly.

    With an upstream part (``+s8``) a selector names only its session parts
    (``s8`` of ``+s8``, ``s3`` of ``s3``, ``s5`` of ``s5+``): the upstream they
    bring along runs only where it is not complete. Any other selector names
    every session it selects.
    """
    ids = select(plan, selector)
    tokens = selector.replace(",", " ").split()
    if not any(token.startswith("+") for token in tokens):
        return Selection(tuple(ids), frozenset(ids))
    cores = (token.strip("+").lower() for token in tokens)
    return Selection(tuple(ids), frozenset(plan.session(core).id for core in cores if not _is_group(core)))


def _is_group(token: str) -> bool:
    """A selector word for many sessions (all, weekN, area:NAME), not a session id.

    No session may be called ``all`` or ``weekN`` (finks.models), and ``:`` is
    no part of an id; ``-`` is, so ``prefect-server`` is one id, never a range.
    """
    return token in ("all", "*") or (token.startswith("week") and token[4:].isdigit()) or token.startswith("area:")


def whole_plan(plan: Plan) -> Selection:
    """Every session, none named: what is complete stays as it is (``--all``)."""
    return Selection(tuple(topo_order(plan, gates=True)), frozenset())


def named(plan: Plan, sids: Iterable[str]) -> Selection:
    """These sessions (those still in the plan), in dependency order, each named."""
    chosen = set(sids) & set(plan.sessions)
    return Selection(tuple(topo_order(plan, chosen, gates=True)), frozenset(chosen))


def select(plan: Plan, selector: str) -> list[str]:
    """Resolve a selector to sessions in dependency order.

    ``s8`` (any session id, ``prefect-server`` too); ``+s8`` (with its
    upstream: with strict gates, also every session the gates before it wait
    for); ``s8+`` (with its downstream, by dependencies); ``week3``;
    ``area:dbt`` (substring of the area); ``all``; comma- or space-separated
    lists of these. A selector that matches nothing is an error. The order is
    the one finks enforces.
    """
    chosen: set[str] = set()
    for part in selector.replace(",", " ").split():
        chosen |= _select_one(plan, part)
    if not chosen:
        raise UsageError(f"selector {selector!r} matches no session", hint="try 'finks status' for the ids")
    return topo_order(plan, chosen, gates=True)


def _select_one(plan: Plan, part: str) -> set[str]:
    token = part.lower()
    if token in ("all", "*"):
        return set(plan.sessions)
    if token.startswith("week") and token[4:].isdigit():
        week = int(token[4:])
        found = {sid for sid, s in plan.sessions.items() if s.week == week}
        if not found:
            raise UsageError(f"selector {part!r}: no session in week {week}")
        return found
    if token.startswith("area:"):
        needle = token[5:]
        found = {sid for sid, s in plan.sessions.items() if needle and needle in s.area.lower()}
        if not found:
            areas = sorted({s.area for s in plan.sessions.values()})
            raise UsageError(f"selector {part!r} matches no area", hint=f"areas: {', '.join(areas)}")
        return found
    with_up, with_down = token.startswith("+"), token.endswith("+")
    core = token.strip("+")
    try:
        sid = plan.session(core).id
    except UsageError:
        hint = _suggest(core, list(plan.sessions))
        raise UsageError(
            f"selector {part!r} matches no session", hint=hint or "use ID, +ID, ID+, weekN, area:NAME or all"
        ) from None
    found = {sid}
    if with_up:
        found |= upstream(plan, sid, gates=True)
    if with_down:
        found |= downstream(plan, sid)
    return found


def to_data(plan: Plan) -> dict[str, Any]:
    """Nodes and edges (``[dependency, dependent]``), for JSON."""
    return {
        "nodes": [{"id": sid, "title": s.title, "week": s.week} for sid, s in plan.sessions.items()],
        "edges": [[dep, sid] for sid, s in plan.sessions.items() for dep in s.depends_on],
    }


def _mermaid_id(sid: str) -> str:
    # A '-' in a Mermaid node id can read as the start of an edge: S16 stays S16, a-b is A_B.
    return sid.upper().replace("-", "_")


def _dot_id(sid: str) -> str:
    # A Graphviz id with a '-' must be quoted; s16 stays bare.
    return sid if sid.replace("_", "").isalnum() else f'"{sid}"'


def to_mermaid(plan: Plan) -> str:
    lines = ["graph TD"]
    for sid, s in plan.sessions.items():
        lines.append(f'    {_mermaid_id(sid)}["{sid.upper()}: {s.title}"]')
    for sid, s in plan.sessions.items():
        for dep in s.depends_on:
            lines.append(f"    {_mermaid_id(dep)} --> {_mermaid_id(sid)}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    lines = ["digraph finks {", "  rankdir=LR;", "  node [shape=box];"]
    for sid, s in plan.sessions.items():
        label = f"{sid.upper()}\\n{s.title}".replace('"', "'")
        lines.append(f'  {_dot_id(sid)} [label="{label}"];')
    for sid, s in plan.sessions.items():
        for dep in s.depends_on:
            lines.append(f"  {_dot_id(dep)} -> {_dot_id(sid)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
