"""The plan as data: loading, validation messages, graph algorithms, selectors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core.errors import PlanError, UsageError
from finks.graph import schedule, select, waves
from finks.loader import load_plan
from tests.planbuilder import session, write_plan

REAL_PLAN = Path(__file__).resolve().parent.parent / "sessions"

VALID = """\
id: s1
title: First session
week: 1
area: finks-test
estimate_hours: [1, 2]
depends_on: []
tasks:
  - title: do it
criteria:
  - text: it works
    checks:
      - id: ok
        shell: "true"
"""


def _second(deps: str = "[s1]", sid: str = "s2") -> str:
    return VALID.replace("id: s1", f"id: {sid}").replace("depends_on: []", f"depends_on: {deps}")


# name -> (files, expected message fragments (file:line included))
BROKEN = {
    "syntax": ({"s1.yaml": VALID.replace("tasks:\n", "tasks:\n  - title: [unclosed\n")},
               ["s1.yaml:9", "invalid YAML"]),
    "missing-field": ({"s1.yaml": VALID.replace("title: First session\n", "")},
                      ["s1.yaml:1", "missing required field 'title'"]),
    "unknown-field": ({"s1.yaml": VALID + "colour: blue\n"}, ["s1.yaml:14", "unknown field 'colour'"]),
    "bad-estimate": ({"s1.yaml": VALID.replace("[1, 2]", "[5, 2]")},
                     ["s1.yaml:5", "estimate high (2) is below low (5)"]),
    "estimate-shape": ({"s1.yaml": VALID.replace("[1, 2]", "[1, 2, 3]")}, ["s1.yaml:5", "[low, high]"]),
    "duplicate-id": ({"s1.yaml": VALID, "s1b.yaml": VALID}, ["s1b.yaml:1", "duplicate session id 's1'"]),
    "unknown-dependency": ({"s1.yaml": VALID, "s2.yaml": _second("[s11]")},
                           ["s2.yaml:6", "unknown session 's11'", "did you mean s1?"]),
    "cycle": ({"s1.yaml": VALID.replace("depends_on: []", "depends_on: [s3]"),
               "s3.yaml": _second("[s5]", "s3"), "s5.yaml": _second("[s3]", "s5")},
              ["dependency cycle: s3 -> s5 -> s3"]),
    "bad-id": ({"s1.yaml": VALID.replace("id: s1", "id: Session_One")}, ["s1.yaml:1", "must be a short lowercase slug"]),
    "check-without-kind": ({"s1.yaml": VALID.replace('        shell: "true"\n', "")},
                           ["s1.yaml:12", "exactly one of python, pytest, shell"]),
    "duplicate-yaml-key": ({"s1.yaml": VALID + "week: 2\n"}, ["s1.yaml:14", "duplicate key 'week'"]),
    "no-criteria": ({"s1.yaml": VALID.split("criteria:")[0] + "criteria: []\n"}, ["s1.yaml:9", "criteria: needs at least one entry"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_plan_errors_name_file_line_and_problem(tmp_path: Path, case: str) -> None:
    files, expected = BROKEN[case]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(tmp_path)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_valid_minimal_plan_loads(tmp_path: Path) -> None:
    (tmp_path / "s1.yaml").write_text(VALID)
    plan = load_plan(tmp_path)
    assert list(plan.sessions) == ["s1"]
    assert plan.sessions["s1"].estimate_hours.high == 2


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such sessions directory"):
        load_plan(tmp_path / "nope")


# ---- the real plan -------------------------------------------------------------
@pytest.fixture(scope="module")
def real():
    return load_plan(REAL_PLAN)


def test_real_plan_has_all_23_sessions_with_the_diagram_edges(real) -> None:
    assert list(real.sessions) == [f"s{i}" for i in range(23)]
    edges = {(d, s) for s, x in real.sessions.items() for d in x.depends_on}
    diagram = {("s0", "s1"), ("s0", "s2"), ("s2", "s3"), ("s1", "s4"), ("s3", "s5"), ("s3", "s6"), ("s4", "s7"),
               ("s5", "s8"), ("s6", "s8"), ("s8", "s9"), ("s9", "s10"), ("s8", "s11"), ("s5", "s12"),
               ("s3", "s13"), ("s12", "s14"), ("s10", "s16"), ("s14", "s16"), ("s15", "s16"), ("s16", "s17"),
               ("s16", "s18"), ("s16", "s19"), ("s11", "s20"), ("s19", "s21"), ("s21", "s22")}
    assert edges == diagram | {("s13", "s16")}


def test_every_criterion_of_the_real_plan_names_a_check(real) -> None:
    for s in real.sessions.values():
        assert s.criteria, s.id
        for criterion in s.criteria:
            assert criterion.checks, (s.id, criterion.text)


def test_real_plan_estimates_and_weeks_follow_the_plan(real) -> None:
    assert (real.sessions["s8"].estimate_hours.low, real.sessions["s8"].estimate_hours.high) == (6, 7)
    assert (real.sessions["s16"].estimate_hours.low, real.sessions["s16"].estimate_hours.high) == (7, 8)
    assert real.sessions["s4"].estimate_hours.low == real.sessions["s4"].estimate_hours.high == 2
    assert [real.sessions[f"s{i}"].week for i in (0, 1, 5, 8, 12, 15, 19)] == [0, 1, 2, 3, 4, 5, 6]
    assert set(real.gates) == {f"week{i}" for i in range(1, 7)}


def test_critical_path_of_the_real_plan(real) -> None:
    high = schedule(real, "high")
    assert high.critical_path == ["s0", "s2", "s3", "s5", "s8", "s9", "s10", "s16", "s19", "s21", "s22"]
    assert high.total_hours == 2 + 5 + 5 + 5 + 7 + 4 + 3 + 8 + 5 + 5 + 4
    low = schedule(real, "low")
    assert low.total_hours == 1 + 4 + 4 + 4 + 6 + 3 + 2 + 7 + 4 + 4 + 3
    assert high.slack["s6"] == 1  # S6 (4h) runs beside S5 (5h) before S8
    assert all(high.slack[s] == 0 for s in high.critical_path)
    assert high.slack["s15"] > 0


def test_waves_respect_dependencies(real) -> None:
    position = {s: i for i, wave in enumerate(waves(real)) for s in wave}
    for s, x in real.sessions.items():
        for dep in x.depends_on:
            assert position[dep] < position[s]
    assert set(waves(real)[0]) == {"s0", "s15"}


@pytest.mark.parametrize(
    "selector, expected",
    [
        ("s8", ["s8"]),
        # With strict gates +s8 brings what gates week1 and week2 wait for: s1, s4, s7 too.
        ("+s8", ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]),
        ("s19+", ["s19", "s21", "s22"]),
        ("week2", ["s5", "s6", "s7"]),
        ("s1,s2", ["s1", "s2"]),
        ("S08", ["s8"]),
        ("area:finks-dbt", ["s12", "s14", "s17"]),
    ],
)
def test_selectors(real, selector: str, expected: list[str]) -> None:
    assert select(real, selector) == expected


@pytest.mark.parametrize("selector, fragment", [("s99", "matches no session"), ("s1 3", "matches no session"),
                                                ("week9", "no session in week 9"), ("area:cobol", "matches no area")])
def test_selector_that_matches_nothing_is_an_error(real, selector: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        select(real, selector)


def test_unknown_session_suggests_the_closest(real) -> None:
    with pytest.raises(UsageError, match="did you mean s13"):
        real.session("s133")


def test_gates_strictness_is_configurable(tmp_path: Path) -> None:
    write_plan(tmp_path, [session("s1"), session("s2", week=2)],
               gates={"strict": False, "gates": [{"id": "week1", "week": 1, "title": "w1"}]})
    assert load_plan(tmp_path).strict_gates is False
    text = textwrap.dedent("""\
        strict: maybe
        gates: []
    """)
    (tmp_path / "gates.yaml").write_text(text)
    with pytest.raises(PlanError, match="gates.yaml:1"):
        load_plan(tmp_path)


def test_every_python_and_plan_check_and_action_of_the_real_plan_exists(real) -> None:
    import importlib

    targets = {c.python or c.plan for s in real.sessions.values() for c in s.checks if c.python or c.plan}
    targets |= {t.action.python for s in real.sessions.values() for t in s.tasks if t.action and t.action.python}
    targets |= {c.python for g in real.gates.values() for c in g.checks if c.python}
    missing = []
    for target in sorted(targets):
        module, _, func = target.partition(":")
        if not callable(getattr(importlib.import_module(module), func, None)):
            missing.append(target)
    assert not missing, f"checks named in sessions/ but not implemented: {missing}"
    assert len(targets) > 80
