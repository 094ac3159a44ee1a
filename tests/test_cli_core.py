"""The core under the CLI, without typer: selections, the board's answers, typed events, reporters."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from finks.checks import CheckResult, Evidence, Outcome
from finks.events import (
    ActionFinished,
    ActionStarted,
    CheckFinished,
    CheckStarted,
    Event,
    GateEvaluated,
    SessionFinished,
    SessionSkipped,
    SessionStarted,
)
from finks.graph import named, resolve, schedule, whole_plan
from finks.loader import Plan, load_plan
from finks.outcomes import GateState, SessionOutcome, SessionState
from finks.reporters import QuietReporter, TextReporter
from finks.runner import Runner
from finks.state import StateStore
from finks.status import StatusBoard
from tests.planbuilder import session, write_plan

REAL_PLAN = Path(__file__).resolve().parent.parent / "sessions"


@pytest.fixture(scope="module")
def real() -> Plan:
    return load_plan(REAL_PLAN)


# ---- selections ------------------------------------------------------------------
@pytest.mark.parametrize("selector, explicit", [
    ("s8", {"s8"}),
    ("+s8", {"s8"}),  # its upstream comes along, but only where it is not complete
    ("+S8", {"s8"}),
    ("+s8,s13", {"s8", "s13"}),
    ("+s8 s19+", {"s8", "s19"}),
    ("s19+", {"s19", "s21", "s22"}),  # without an upstream part, every selected session is named
    ("week2", {"s5", "s6", "s7"}),
])
def test_resolve_names_what_the_selector_names(real: Plan, selector: str, explicit: set[str]) -> None:
    selection = resolve(real, selector)
    assert selection.explicit == explicit
    assert explicit <= set(selection.ids)


def test_whole_plan_names_nothing_and_named_keeps_dependency_order(real: Plan) -> None:
    assert whole_plan(real).explicit == frozenset() and len(whole_plan(real).ids) == 23
    selection = named(real, ["s16", "s3", "s99"])  # s99 left the plan since that batch
    assert selection.ids == ("s3", "s16") and selection.explicit == {"s3", "s16"}


# ---- the status board ------------------------------------------------------------
def _record_failed_run(store: StateStore, sid: str) -> None:
    store.append({"type": "run_started", "run_id": "r1", "session": sid, "pid": 1})
    store.append({"type": "check", "run_id": "r1", "session": sid, "check": "bad", "outcome": "failed",
                  "message": "the thing does not hold", "excerpt": "x" * 700 + "\nlast line"})
    store.append({"type": "check", "run_id": "r1", "session": sid, "check": "good", "outcome": "passed",
                  "message": "fine"})
    store.append({"type": "run_finished", "run_id": "r1", "session": sid, "outcome": "failed"})


def test_why_is_a_typed_chain_down_to_the_failing_check(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path / "plan", [
        session("s1"), session("s2", deps=("s1",)), session("s3", deps=("s2",), week=2)],
        gates={"gates": [{"id": "week1", "week": 1, "title": "w1"}]}))
    store = StateStore(tmp_path / "state", "local")
    _record_failed_run(store, "s2")
    why = StatusBoard(plan, store, tmp_path).why("s3")
    assert [(link.id, link.status, link.depth) for link in why.chain] == [
        ("s3", SessionState.blocked, 0), ("s2", SessionState.failed, 1), ("week1", GateState.pending, 1)]
    (evidence,) = why.chain[1].evidence or ()
    assert (evidence.check, evidence.outcome, evidence.message) == ("bad", "failed", "the thing does not hold")
    assert len(evidence.excerpt) == 600 and evidence.excerpt.endswith("last line")
    assert not why.unblocked
    payload = why.to_dict()
    assert payload["session"] == "s3" and "evidence" not in payload["chain"][0]
    assert json.loads(json.dumps(payload))["chain"][2] == {"id": "week1", "status": "pending",
                                                          "reason": "waiting for s1, s2", "depth": 1}


def test_next_sessions_put_the_critical_path_first(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path / "plan", [
        session("s1", estimate=(1, 1)), session("s2", estimate=(5, 5)), session("s3", deps=("s2",)),
        session("s4", estimate=(5, 5))]))
    board = StatusBoard(plan, StateStore(tmp_path / "state", "local"), tmp_path)
    sched = schedule(plan, "high")
    assert [r.sid for r in board.next_sessions(sched)] == ["s2", "s4", "s1"]  # slack 0, 2, 6
    assert not board.all_complete()


# ---- outcomes, events and reporters ------------------------------------------------
def test_outcomes_read_and_serialise_as_their_plain_words() -> None:
    assert json.dumps({"o": SessionOutcome.up_to_date, "s": SessionState.in_progress}) == \
        '{"o": "up_to_date", "s": "in_progress"}'
    assert f"{SessionOutcome.would_run:<11}|" == "would_run  |"
    assert Outcome("error") is Outcome.error and SessionOutcome.passed == "passed"
    assert [o for o in SessionOutcome if not o.ok] == ["failed", "unverified", "skipped_upstream", "blocked"]


def _result(outcome: Outcome) -> CheckResult:
    return CheckResult("bad", outcome, Evidence("it broke", excerpt="line 1\nline 2"), 0.25)


EVENTS: list[Event] = [
    SessionStarted("s1", "First", "run-1"),
    ActionStarted("s1", "prepare"),
    ActionFinished("s1", "prepare", _result(Outcome.passed)),
    CheckStarted("s1", "bad"),
    CheckFinished("s1", "it works", _result(Outcome.failed)),
    SessionFinished("s1", SessionOutcome.failed, 1.5, Path("handoffs/s01.md")),
    SessionSkipped("s2", SessionOutcome.skipped_upstream, "upstream did not pass: s1 (failed)"),
    GateEvaluated("week1", False, "incomplete: s2 (blocked)"),
]


def test_text_reporter_renders_each_event_type() -> None:
    out = io.StringIO()
    reporter = TextReporter(out, verbose=True)
    for event in EVENTS:
        reporter.handle(event)
    assert out.getvalue().splitlines() == [
        "▶ s1: First  (run run-1)",
        "  … prepare",
        "  PASSED  prepare [0.2s] it broke",
        "  FAILED  bad [0.2s] it broke",
        "      line 1",
        "      line 2",
        "■ s1 failed in 1.5s → handoffs/s01.md",
        "■ s2 skipped: upstream did not pass: s1 (failed)",
        "◆ gate week1 failed: incomplete: s2 (blocked)",
    ]


def test_quiet_reporter_shows_one_line_per_session() -> None:
    out = io.StringIO()
    reporter = QuietReporter(out)
    for event in EVENTS:
        reporter.handle(event)
    assert out.getvalue().splitlines() == ["s1 failed", "s2 skipped: upstream did not pass: s1 (failed)"]


def test_every_event_serialises_for_a_progress_stream() -> None:
    documents = [json.loads(json.dumps(event.to_dict())) for event in EVENTS]
    assert [d["event"] for d in documents] == ["session_started", "action_started", "action_finished",
                                              "check_started", "check_finished", "session_finished",
                                              "session_skipped", "gate_evaluated"]
    assert documents[4]["result"]["outcome"] == "failed" and documents[5]["handoff"] == "handoffs/s01.md"


class Recorder:
    """A reporter as a progress stream would write one: it only needs handle(event)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


def test_runner_emits_typed_events_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINKS_HANDOFFS", str(tmp_path / "handoffs"))
    plan = load_plan(write_plan(tmp_path / "plan", [
        session("s1", checks=[{"id": "no", "shell": "false"}], actions=[{"shell": "true"}]),
        session("s2", deps=("s1",))]))
    recorder = Recorder()
    summary = Runner(plan, "local", tmp_path, tmp_path / "state", recorder).run(whole_plan(plan))
    assert summary.results == {"s1": SessionOutcome.failed, "s2": SessionOutcome.skipped_upstream}
    assert [type(e).__name__ for e in recorder.events] == [
        "SessionStarted", "ActionStarted", "ActionFinished", "CheckStarted", "CheckFinished", "SessionFinished",
        "SessionSkipped"]
    finished = recorder.events[5]
    assert isinstance(finished, SessionFinished) and finished.outcome is SessionOutcome.failed
    assert finished.handoff.exists()
