"""Load the plan from ``sessions/``: YAML → validated models, errors with file:line.

Every problem names the file, the line and what to do: a malformed YAML, a
missing or invalid field, a duplicate id, an unknown dependency (with a
"did you mean" suggestion), a dependency cycle (shown as a path, gates
included when they are strict) and a deliverable that does not exist.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from core.errors import PlanError, UsageError
from finks.models import EnvPolicy, Gate, GateFile, Session, default_policies

GATES_FILE = "gates.yaml"


class _LineMap(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineList(list):  # type: ignore[type-arg]
    """A sequence that remembers the line of each item (1-based)."""

    item_lines: list[int]


# libyaml's parser when present: ~8x faster than pure Python on the real plan.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineMap:
    mapping = _LineMap()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[str(key)] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    items = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    items.item_lines = [child.start_mark.line + 1 for child in node.value]
    return items


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = exc.problem or str(exc)
        raise PlanError([f"{where}: invalid YAML: {what}; fix the syntax at that line"]) from exc


def _line_of(data: Any, loc: tuple[Any, ...]) -> int:
    """Walk a pydantic error location through line-mapped YAML to the nearest line."""
    line = getattr(data, "line", 1)
    node = data
    for part in loc:
        if isinstance(node, _LineMap):
            line = node.key_lines.get(str(part), node.line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            line = getattr(node, "line", line)
        else:
            break
    return line


def _describe(err: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    if err["type"] == "missing":
        return f"missing required field '{loc}'; add it"
    if err["type"] == "too_short":
        return f"{loc}: needs at least one entry"
    if err["type"] == "extra_forbidden":
        return f"unknown field '{loc}'; remove it or check its spelling"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _validation_problems(path: Path, data: Any, exc: ValidationError) -> list[str]:
    problems = []
    errors = exc.errors()
    locs = [tuple(err["loc"]) for err in errors]
    for err in errors:
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        # A bad item makes its container "too short" too; report the item only.
        if err["type"] == "too_short" and any(o[: len(err["loc"])] == tuple(err["loc"]) and o != tuple(err["loc"]) for o in locs):
            continue
        problems.append(f"{path}:{_line_of(data, loc)}: {_describe(err)}")
    return problems


@dataclass
class Plan:
    """The loaded plan: sessions by id (in plan order) and the gates.

    Plan order is the order of the session files, compared naturally
    (``s2.yaml`` before ``s10.yaml``): ``s00-…`` … ``s22-…`` here, whatever
    order a team gives its files elsewhere. ``handoffs``: where this plan's
    handoff notes go (``gates.yaml`` ``handoffs:``, else ``handoffs/`` beside
    the plan directory); FINKS_HANDOFFS overrides it (finks.handoff).
    """

    directory: Path
    sessions: dict[str, Session]
    gates: dict[str, Gate] = field(default_factory=dict)
    strict_gates: bool = True
    files: dict[str, Path] = field(default_factory=dict)
    policies: dict[str, EnvPolicy] = field(default_factory=default_policies)
    handoffs: Path | None = None
    _positions: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def position(self, sid: str) -> int:
        """The session's place in plan order: what breaks ties between sessions ready at once."""
        if len(self._positions) != len(self.sessions):
            self._positions = {s: i for i, s in enumerate(self.sessions)}
        return self._positions[sid]

    def accepts_planned(self, env: str) -> bool:
        """Whether planned evidence (Pulumi mocks) suffices on ``env`` (gates.yaml ``environments:``)."""
        policy = self.policies.get(env)
        return policy.accept_planned if policy is not None else env == "local"

    def session(self, sid: str) -> Session:
        key = sid.lower()
        if key not in self.sessions and key.startswith("s") and key[1:].isdigit():
            key = f"s{int(key[1:])}"  # s08 is s8
        if key not in self.sessions:
            hint = _suggest(key, list(self.sessions))
            raise UsageError(f"unknown session {sid!r}", hint=hint or "run 'finks status' to list them")
        return self.sessions[key]

    def gate(self, gate_id: str) -> Gate:
        gid = gate_id.lower()
        if gid not in self.gates:
            raise UsageError(f"unknown gate {gate_id!r}", hint=f"gates: {', '.join(self.gates)}")
        return self.gates[gid]

    def gate_for_week(self, week: int) -> Gate | None:
        return next((g for g in self.gates.values() if g.week == week), None)

    def gate_before(self, session: Session) -> Gate | None:
        """The gate of the previous week, which must pass before this session runs."""
        return self.gate_for_week(session.week - 1) if session.week > 0 else None

    def gate_members(self, gate: Gate) -> list[str]:
        """The sessions a gate covers: those it names, else every session of its week."""
        return list(gate.sessions) or [sid for sid, s in self.sessions.items() if s.week == gate.week]

    def needs(self, sid: str) -> list[str]:
        """What must be complete before ``sid`` runs: its dependencies and, with strict
        gates, the gate before it (a gate id, which needs its members in turn)."""
        out = list(self.sessions[sid].depends_on)
        gate = self.gate_before(self.sessions[sid]) if self.strict_gates else None
        if gate is not None:
            out.append(gate.id)
        return out


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """Digits compare as numbers: ``s2`` before ``s10``, ``s10`` before ``s100``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text.lower()) if part]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"did you mean {close[0]}?" if close else ""


def default_sessions_dir() -> Path:
    from core.paths import repo_root

    return Path(os.environ.get("FINKS_SESSIONS") or repo_root() / "sessions")


def load_plan(directory: Path | None = None, root: Path | None = None) -> Plan:
    """Load and validate every session file and the gates in ``directory``.

    Deliverables are paths under ``root`` (default: the repository root).
    """
    directory = Path(directory or default_sessions_dir())
    if not directory.is_dir():
        raise PlanError([f"{directory}: no such sessions directory; pass --sessions DIR or set FINKS_SESSIONS"])
    problems: list[str] = []
    sessions: dict[str, Session] = {}
    raw: dict[str, tuple[Path, _LineMap]] = {}
    files = sorted((p for p in directory.glob("*.y*ml") if p.name != GATES_FILE), key=lambda p: (natural_key(p.name), p.name))
    if not files:
        raise PlanError([f"{directory}: no session files (*.yaml) found"])
    for path in files:
        try:
            data = _read_yaml(path)
        except PlanError as exc:
            problems.extend(exc.problems)
            continue
        if not isinstance(data, _LineMap):  # every YAML mapping loads as a _LineMap
            problems.append(f"{path}:1: expected a mapping describing one session")
            continue
        try:
            session = Session.model_validate(data)
        except ValidationError as exc:
            problems.extend(_validation_problems(path, data, exc))
            continue
        if session.id in sessions:
            first = raw[session.id][0]
            problems.append(
                f"{path}:{data.key_lines.get('id', 1)}: duplicate session id {session.id!r} "
                f"(first defined in {first.name}); give one of them another id"
            )
            continue
        sessions[session.id] = session
        raw[session.id] = (path, data)

    gate_file = _load_gates(directory / GATES_FILE, problems)
    gates = {g.id: g for g in gate_file.gates}
    problems.extend(_deliverable_problems(sessions, raw, _root(root)))
    if not problems:
        problems.extend(_dependency_problems(sessions, raw))
    if not problems:
        problems.extend(_gate_problems(gates, sessions, directory / GATES_FILE))
    ordered = sessions  # in file order, which is plan order
    handoffs = directory / gate_file.handoffs if gate_file.handoffs else directory.parent / "handoffs"
    plan = Plan(directory, ordered, gates, gate_file.strict, {sid: raw[sid][0] for sid in ordered},
                gate_file.policies(), handoffs.resolve())
    if not problems and plan.strict_gates:
        problems.extend(_gated_cycle(plan, directory / GATES_FILE))
    if problems:
        raise PlanError(problems)
    return plan


def _root(root: Path | None) -> Path:
    from core.paths import repo_root

    return Path(root) if root is not None else repo_root()


def _load_gates(path: Path, problems: list[str]) -> GateFile:
    if not path.exists():
        return GateFile()
    try:
        data = _read_yaml(path)
    except PlanError as exc:
        problems.extend(exc.problems)
        return GateFile()
    try:
        return GateFile.model_validate(data or {})
    except ValidationError as exc:
        problems.extend(_validation_problems(path, data, exc))
        return GateFile()


def _deliverable_problems(sessions: dict[str, Session], raw: dict[str, tuple[Path, _LineMap]],
                          root: Path) -> list[str]:
    """A deliverable the plan names but the repository lacks: a typo, or a file that moved."""
    problems = []
    for sid, session in sessions.items():
        path, data = raw[sid]
        items = data.get("deliverables")
        lines = items.item_lines if isinstance(items, _LineList) else []
        for index, rel in enumerate(session.deliverables):
            if not (root / rel).exists():
                line = lines[index] if index < len(lines) else data.key_lines.get("deliverables", data.line)
                problems.append(f"{path}:{line}: {sid} delivers {rel!r}, which does not exist under {root}; "
                                "fix the path or create the file")
    return problems


def _gated_cycle(plan: Plan, path: Path) -> list[str]:
    """With strict gates a gate waits for its members: a member of a later week waits for that gate."""
    edges = {sid: plan.needs(sid) for sid in plan.sessions}
    edges.update({gid: plan.gate_members(g) for gid, g in plan.gates.items()})
    cycle = find_cycle(edges)
    if not cycle:
        return []
    return [f"{path}: with strict gates, a cycle through a gate: {' -> '.join(cycle)}; "
            "list only sessions of the gate's own week (or earlier) in its sessions"]


def _dependency_problems(sessions: dict[str, Session], raw: dict[str, tuple[Path, _LineMap]]) -> list[str]:
    problems = []
    for sid, session in sessions.items():
        path, data = raw[sid]
        line = data.key_lines.get("depends_on", 1)
        for dep in session.depends_on:
            if dep not in sessions:
                hint = _suggest(dep, list(sessions))
                problems.append(
                    f"{path}:{line}: {sid} depends on unknown session {dep!r}"
                    + (f"; {hint}" if hint else "; remove it or add that session")
                )
            elif dep == sid:
                problems.append(f"{path}:{line}: {sid} depends on itself; remove it from depends_on")
    if problems:
        return problems
    cycle = find_cycle({sid: list(s.depends_on) for sid, s in sessions.items()})
    if cycle:
        path, data = raw[cycle[0]]
        problems.append(
            f"{path}:{data.key_lines.get('depends_on', 1)}: dependency cycle: {' -> '.join(cycle)}; "
            "remove one of these edges"
        )
    return problems


def _gate_problems(gates: dict[str, Gate], sessions: dict[str, Session], path: Path) -> list[str]:
    problems = []
    for gate in gates.values():
        for sid in gate.sessions:
            if sid not in sessions:
                hint = _suggest(sid, list(sessions))
                problems.append(f"{path}: gate {gate.id} names unknown session {sid!r}" + (f"; {hint}" if hint else ""))
    return problems


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """Return one dependency cycle as a path (first node repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    colour = {node: white for node in edges}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for dep in edges.get(node, []):
            if colour.get(dep) == grey:
                return stack[stack.index(dep) :] + [dep]
            if colour.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in sorted(edges, key=lambda s: (len(s), s)):
        if colour[node] == white:
            found = visit(node)
            if found:
                # Edges point from a session to what it depends on; show the
                # cycle in dependency order (s3 -> s5 means s5 depends on s3).
                return list(reversed(found))
    return None
