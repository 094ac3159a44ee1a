"""The session graph: order, waves, critical path, selectors.

Pure functions over a :class:`~finks.loader.Plan`; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import UsageError
from finks.loader import Plan, _suggest


def upstream(plan: Plan, sid: str) -> set[str]:
    """Every session sid depends on, transitively."""
    seen: set[str] = set()
    todo = list(plan.sessions[sid].depends_on)
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(plan.sessions[dep].depends_on)
    return seen


def dependents(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {sid: [] for sid in plan.sessions}
    for sid, session in plan.sessions.items():
        for dep in session.depends_on:
            out[dep].append(sid)
    return out


def downstream(plan: Plan, sid: str) -> set[str]:
    children = dependents(plan)
    seen: set[str] = set()
    todo = list(children[sid])
    while todo:
        child = todo.pop()
        if child not in seen:
            seen.add(child)
            todo.extend(children[child])
    return seen


def topo_order(plan: Plan, subset: set[str] | None = None) -> list[str]:
    """Sessions in dependency order; among those ready, the lowest number first."""
    import heapq

    nodes = set(plan.sessions) if subset is None else set(subset)
    waiting = {s: {d for d in plan.sessions[s].depends_on if d in nodes} for s in nodes}
    children = dependents(plan)
    heap = [(plan.sessions[s].number, s) for s, deps in waiting.items() if not deps]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, sid = heapq.heappop(heap)
        order.append(sid)
        for child in children[sid]:
            if child in waiting and sid in waiting[child]:
                waiting[child].discard(sid)
                if not waiting[child]:
                    heapq.heappush(heap, (plan.sessions[child].number, child))
    if len(order) != len(nodes):  # pragma: no cover - the loader rejects cycles
        raise UsageError("dependency cycle in selection")
    return order


def waves(plan: Plan) -> list[list[str]]:
    """Groups of sessions that can run in parallel (by dependencies alone)."""
    level: dict[str, int] = {}
    for sid in topo_order(plan):
        deps = plan.sessions[sid].depends_on
        level[sid] = 1 + max((level[d] for d in deps), default=-1)
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for sid, lvl in level.items():
        out[lvl].append(sid)
    return [sorted(w, key=lambda s: plan.sessions[s].number) for w in out]


@dataclass(frozen=True)
class Schedule:
    """Critical-path analysis for one choice of estimates (low or high)."""

    basis: str
    total_hours: float
    critical_path: list[str]
    earliest_start: dict[str, float]
    slack: dict[str, float]


def _hours(plan: Plan, sid: str, basis: str) -> float:
    estimate = plan.sessions[sid].estimate_hours
    return estimate.high if basis == "high" else estimate.low


def sum_of_estimates(plan: Plan, basis: str = "high") -> float:
    """The hours of work in the plan, one session after another."""
    return sum(_hours(plan, sid, basis) for sid in plan.sessions)


def schedule(plan: Plan, basis: str = "high") -> Schedule:
    dur = {sid: _hours(plan, sid, basis) for sid in plan.sessions}
    order = topo_order(plan)
    es: dict[str, float] = {}
    for sid in order:
        es[sid] = max((es[d] + dur[d] for d in plan.sessions[sid].depends_on), default=0.0)
    total = max((es[s] + dur[s] for s in order), default=0.0)
    children = dependents(plan)
    lf: dict[str, float] = {}
    for sid in reversed(order):
        lf[sid] = min((lf[c] - dur[c] for c in children[sid]), default=total)
    slack = {sid: round(lf[sid] - dur[sid] - es[sid], 6) for sid in order}
    # Walk the zero-slack chain from a start to the end, following the longest edge.
    path: list[str] = []
    current = min((s for s in order if slack[s] == 0 and es[s] == 0), key=lambda s: plan.sessions[s].number, default=None)
    while current is not None:
        path.append(current)
        nxt = [c for c in children[current] if slack[c] == 0 and abs(es[c] - (es[current] + dur[current])) < 1e-9]
        current = min(nxt, key=lambda s: plan.sessions[s].number) if nxt else None
    return Schedule(basis, total, path, es, slack)


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
    return Selection(tuple(ids), frozenset(plan.session(core).id for core in cores if core.startswith("s")))


def whole_plan(plan: Plan) -> Selection:
    """Every session, none named: what is complete stays as it is (``--all``)."""
    return Selection(tuple(topo_order(plan)), frozenset())


def named(plan: Plan, sids: Iterable[str]) -> Selection:
    """These sessions (those still in the plan), in dependency order, each named."""
    chosen = set(sids) & set(plan.sessions)
    return Selection(tuple(topo_order(plan, chosen)), frozenset(chosen))


def select(plan: Plan, selector: str) -> list[str]:
    """Resolve a selector to sessions in dependency order.

    ``s8``; ``+s8`` (with its upstream); ``s8+`` (with its downstream);
    ``week3``; ``area:dbt`` (substring of the area); ``all``; comma- or
    space-separated lists of these. A selector that matches nothing is an error.
    """
    chosen: set[str] = set()
    for part in selector.replace(",", " ").split():
        chosen |= _select_one(plan, part)
    if not chosen:
        raise UsageError(f"selector {selector!r} matches no session", hint="try 'finks status' for the ids")
    return topo_order(plan, chosen)


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
            f"selector {part!r} matches no session", hint=hint or "use sN, +sN, sN+, weekN, area:NAME or all"
        ) from None
    found = {sid}
    if with_up:
        found |= upstream(plan, sid)
    if with_down:
        found |= downstream(plan, sid)
    return found


def to_data(plan: Plan) -> dict[str, Any]:
    """Nodes and edges (``[dependency, dependent]``), for JSON."""
    return {
        "nodes": [{"id": sid, "title": s.title, "week": s.week} for sid, s in plan.sessions.items()],
        "edges": [[dep, sid] for sid, s in plan.sessions.items() for dep in s.depends_on],
    }


def to_mermaid(plan: Plan) -> str:
    lines = ["graph TD"]
    for sid, s in plan.sessions.items():
        lines.append(f'    {sid.upper()}["{sid.upper()}: {s.title}"]')
    for sid, s in plan.sessions.items():
        for dep in s.depends_on:
            lines.append(f"    {dep.upper()} --> {sid.upper()}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    lines = ["digraph finks {", "  rankdir=LR;", "  node [shape=box];"]
    for sid, s in plan.sessions.items():
        label = f"{sid.upper()}\\n{s.title}".replace('"', "'")
        lines.append(f'  {sid} [label="{label}"];')
    for sid, s in plan.sessions.items():
        for dep in s.depends_on:
            lines.append(f"  {dep} -> {sid};")
    lines.append("}")
    return "\n".join(lines) + "\n"
