"""`finks report` and `finks graph --format svg|png`: one self-contained page, drawn by Graphviz.

The page is rendered for a partial run of the real plan (weeks 0-2 under way
on local, a little of dev), recorded through StateStore exactly as the runner
records it, then opened from disk in headless Chromium with every request
routed: only file:// may load. The screenshot stays in tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finks.cli import app
from finks.graph import schedule
from finks.loader import Plan, load_plan
from finks.outcomes import SessionState
from finks.report import EnvView, criterion_grade, render_report
from finks.state import StateStore
from finks.status import StatusBoard
from tests.planbuilder import session, write_plan

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's 'dot' is not installed (apt-get install graphviz)")
REAL_EDGES = 25  # sum of depends_on over sessions/*.yaml; asserted against the plan below

# What a partial run of weeks 0-2 leaves behind: (session, outcome, duration, failing checks).
LOCAL_RUNS: list[tuple[str, str, float, dict[str, str]]] = [
    ("s0", "passed", 4.2, {}),
    ("s1", "passed", 96.5, {}),
    ("s2", "passed", 41.0, {}),
    ("s3", "failed", 12.3, {"__first__": "bronze bucket is not versioned (finks-local-bronze)"}),
    ("s3", "passed", 18.9, {}),
    ("s4", "passed", 2.1, {}),
    ("s5", "passed", 33.4, {}),
    ("s6", "failed", 27.8, {"__first__": "RDS instance is single-AZ: multi_az=False (finks-local-db)"}),
]
DEV_RUNS: list[tuple[str, str, float, dict[str, str]]] = [
    ("s0", "passed", 5.0, {}),
    ("s2", "passed", 52.3, {}),
]


def record(store: StateStore, plan: Plan, runs: list[tuple[str, str, float, dict[str, str]]],
           day: str = "2026-03-02", graded: bool = True, died: str | None = None) -> None:
    """Append runs as the runner does: run_started, one check per criterion's check, run_finished.

    ``died``: a session whose run started and whose process died (interrupted, not failed).
    """
    board = StatusBoard(plan, store, REPO)
    for n, (sid, outcome, duration, failing) in enumerate(runs):
        at = f"{day}T09:{n * 3:02d}:00Z"
        run_id = f"{day.replace('-', '')}T09{n * 3:02d}00Z-{n:06x}"
        store.append({"type": "run_started", "run_id": run_id, "session": sid, "pid": 4242, "at": at,
                      "git": {"commit": "6cbaadb622a42289", "dirty": False}})
        first = True
        for criterion in plan.sessions[sid].criteria:
            # Checks for other environments skip, unless none is for this one: the fixture runs them anyway.
            here = [spec.id for spec in criterion.checks if store.env in spec.envs] or [c.id for c in criterion.checks]
            for spec in criterion.checks:
                bad = failing.get(spec.id) or (failing.get("__first__") if first else None)
                first = False
                result = "failed" if bad else "passed" if spec.id in here else "skipped"
                message = bad or (f"{spec.id} holds" if spec.id in here else f"not for env {store.env}")
                event = {"type": "check", "run_id": run_id, "session": sid, "criterion": criterion.text,
                         "kind": spec.kind, "target": spec.target, "check": spec.id, "outcome": result,
                         "message": message, "figures": {}, "excerpt": "AssertionError: " + bad if bad else "",
                         "duration_s": 0.4, "at": at}
                if graded:  # what checks.CheckResult records: the kind of evidence a pass gives
                    event["grade"] = "planned" if spec.target.startswith("validation.infra") else "verified"
                store.append(event)
        # What the session was judged on, as the runner records it: complete stays complete.
        store.append({"type": "run_finished", "run_id": run_id, "session": sid, "outcome": outcome,
                      "duration_s": duration, "at": at, "fingerprint": board.fingerprint(sid).to_dict(),
                      "upstream": board.upstream_fingerprints(sid)})
    if store.env == "local":
        store.append({"type": "gate", "gate": "week1", "outcome": "passed", "at": f"{day}T10:00:00Z",
                      "reason": "all sessions complete, gate checks passed",
                      "checks": [{"check": spec.id, "outcome": "passed", "grade": "verified", "message": "ok"}
                                 for spec in plan.gates["week1"].checks]})
    if died:
        store.append({"type": "run_started", "run_id": f"{day.replace('-', '')}T1005Z-dead00", "session": died,
                      "pid": 1, "at": f"{day}T10:05:00Z"})


@pytest.fixture()
def partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Plan, Path]:
    state = tmp_path / "state"
    monkeypatch.setenv("FINKS_STATE_DIR", str(state))
    monkeypatch.setenv("FINKS_HANDOFFS", str(tmp_path / "handoffs"))
    monkeypatch.delenv("FINKS_SESSIONS", raising=False)
    plan = load_plan(None)
    record(StateStore(state, "local"), plan, LOCAL_RUNS)
    record(StateStore(state, "dev"), plan, DEV_RUNS, day="2026-03-03", died="s1")
    handoff = tmp_path / "handoffs" / "local" / "s00-environment-and-credentials-setup.md"
    handoff.parent.mkdir(parents=True)
    handoff.write_text("## Session 0 Handoff\n", encoding="utf-8")
    return plan, state


def _views(plan: Plan, state: Path) -> list[EnvView]:
    return [EnvView(env, StatusBoard(plan, StateStore(state, env), REPO)) for env in ("local", "dev")]


# ---- grading ---------------------------------------------------------------------
def test_a_criterion_takes_its_verdict_when_graded_else_the_outcome() -> None:
    assert criterion_grade([{"outcome": "passed"}]) == "passed"
    assert criterion_grade([{"outcome": "passed", "grade": "verified"},
                            {"outcome": "passed", "grade": "planned"}]) == "verified"
    assert criterion_grade([{"outcome": "passed", "grade": "planned"}]) == "planned"
    assert criterion_grade([{"outcome": "passed", "grade": "verified"}, {"outcome": "failed"}]) == "failed"
    assert criterion_grade([{"outcome": "skipped", "grade": "verified"}]) == "unverified"
    assert criterion_grade([{"outcome": "skipped", "verdict": "unverified"}]) == "unverified"
    assert criterion_grade([{"outcome": "passed", "verdict": "planned"}]) == "planned"
    assert criterion_grade([{"outcome": "skipped"}]) == "skipped"
    assert criterion_grade([]) == "not run"


# ---- the page as text ------------------------------------------------------------------
@needs_dot
def test_the_page_loads_nothing_from_elsewhere(partial: tuple[Plan, Path]) -> None:
    plan, state = partial
    page = render_report(plan, _views(plan, state), primes={"s0": "# prime of s0 http://localhost:4200"})
    external = re.compile(r"""(?:\b(?:src|href|action|xlink:href|srcset|data)\s*=\s*["']?\s*(?:https?:)?//)"""
                          r"""|url\(\s*["']?\s*(?:https?:)?//|@import|<link\b|<script\b[^>]*\bsrc""", re.I)
    assert not external.findall(page)
    assert "http://www.w3.org" not in page  # Graphviz's prolog and namespaces are stripped when inlined
    assert page.count('class="node session ') == 23


@needs_dot
def test_the_page_shows_statuses_grades_gates_and_both_environments(partial: tuple[Plan, Path]) -> None:
    plan, state = partial
    page = render_report(plan, _views(plan, state), sources={"s0": "../../sessions/s00.yaml"})
    assert 'id="s6" class="node session status-failed' in page
    assert 'id="s7" class="node session status-ready' in page
    assert 'data-env="dev"><span class="ind">⚠️</span> <span class="badge status-interrupted">' in page
    assert 'id="s0" class="node session status-complete critical"' in page
    assert 'id="gate-week1" class="node gate gate-passed"' in page
    assert "RDS instance is single-AZ" in page  # the failing check's evidence message
    assert "grade-planned" in page and "grade-verified" in page
    assert 'id="environments"' in page and 'data-env="dev"' in page
    assert '<title>S16 Orchestration Flows — blocked&#10;estimate 7-8h · earliest start' in page
    assert 'href="../../sessions/s00.yaml"' in page


@needs_dot
def test_one_environment_has_no_side_by_side_table(partial: tuple[Plan, Path]) -> None:
    plan, state = partial
    assert 'id="environments"' not in render_report(plan, _views(plan, state)[:1])


@needs_dot
def test_a_plan_without_gates_or_history_still_renders(tmp_path: Path) -> None:
    directory = write_plan(tmp_path / "plan", [session("s0", week=0), session("s1", deps=("s0",)),
                                                session("s2", deps=("s0",), optional=True)])
    plan = load_plan(directory)
    page = render_report(plan, [EnvView("local", StatusBoard(plan, StateStore(tmp_path / "state", "local"), tmp_path))])
    assert page.count('class="node session ') == 3
    assert 'id="s0" class="node session status-ready critical"' in page
    assert 'id="gates"' not in page
    assert "No run recorded on this environment yet" in page


# ---- the commands ----------------------------------------------------------------------
@needs_dot
def test_report_command_writes_index_html_under_the_state_dir(partial: tuple[Plan, Path]) -> None:
    _, state = partial
    result = CliRunner().invoke(app, ["report", "--env", "local"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    target = state / "report" / "index.html"
    assert result.stdout.strip() == str(target)
    page = target.read_text(encoding="utf-8")
    assert "finks prime s0" in page and "Context prime" in page
    assert 'class="handoff" href="../../handoffs/local/s00-environment-and-credentials-setup.md"' in page


def test_report_command_names_a_bad_environment() -> None:
    result = CliRunner().invoke(app, ["report", "--env", "moon"])
    assert result.exit_code == 2
    assert "unknown environment 'moon'" in result.output


@needs_dot
def test_graph_draws_svg_and_png(partial: tuple[Plan, Path], tmp_path: Path) -> None:
    svg = CliRunner().invoke(app, ["graph", "--format", "svg"], catch_exceptions=False)
    assert svg.exit_code == 0 and "<svg" in svg.stdout and 'class="node session status-failed' in svg.stdout
    out = tmp_path / "plan.png"
    png = CliRunner().invoke(app, ["graph", "--format", "png", "--out", str(out)], catch_exceptions=False)
    assert png.exit_code == 0
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_status_never_imports_graphviz() -> None:
    code = ("import sys; from finks.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['status']); print('graphviz' in sys.modules, 'finks.diagram' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "FINKS_STATE_DIR": "/nonexistent-finks-state"}).stdout
    assert out.split() == ["False", "False"]


# ---- the page in a browser ---------------------------------------------------------------
@needs_dot
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_page_renders_in_chromium_offline(partial: tuple[Plan, Path]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    plan, state = partial
    assert sum(len(s.depends_on) for s in plan.sessions.values()) == REAL_EDGES
    result = CliRunner().invoke(app, ["report"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    index = state / "report" / "index.html"
    board = StatusBoard(plan, StateStore(state, "local"), REPO)
    critical = schedule(plan, "high").critical_path
    foreign: list[str] = []
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def guard(route) -> None:  # type: ignore[no-untyped-def]
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    foreign.append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            page.on("request", lambda r: None if r.url.startswith(("file://", "data:")) else foreign.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(index.as_uri(), wait_until="load")
            nodes = page.locator("svg.plan-graph g.node.session")
            assert nodes.count() == 23
            for row in board.all():
                assert f"status-{row.status.value}" in (page.locator(f"g#{row.sid}").get_attribute("class") or "")
            assert page.locator("svg.plan-graph g.edge.dep").count() == REAL_EDGES
            assert page.locator("svg.plan-graph g.node.session.critical").count() == len(critical)
            assert page.locator("svg.plan-graph g.edge.dep.critical").count() == len(critical) - 1
            assert page.locator("svg.plan-graph g.node.gate").count() == len(plan.gates)
            assert page.locator(".legend").is_visible()
            layout = page.evaluate(_LAYOUT_PROBE)
            assert layout["graphWidth"] > 400, layout
            assert layout["smallestFont"] >= 9, layout
            assert layout["overflowing"] == [], layout  # every label fits inside its node as drawn
            page.locator("g#s3 a").click()  # a node links to its evidence, and opens it
            assert page.evaluate("location.hash") == "#session-s3"
            assert page.evaluate("document.getElementById('session-s3').open") is True
            page.mouse.move(0, 0)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(shot), full_page=True)
            # The first screen and the whole graph: what docs/report.png shows in the README.
            bottom = page.evaluate("document.querySelector('#graph').getBoundingClientRect().bottom + scrollY")
            page.screenshot(path=str(ARTIFACTS / "report-overview.png"), full_page=True,
                            clip={"x": 0, "y": 0, "width": 1400, "height": bottom + 16})
        finally:
            browser.close()
    print(f"\nreport screenshots: {shot}, {ARTIFACTS / 'report-overview.png'}")
    assert foreign == []
    assert errors == []
    assert board.session("s6").status == SessionState.failed


# Measures what a reader sees: the graph's size, the smallest label, labels that spill out of their box.
_LAYOUT_PROBE = """() => {
  const svg = document.querySelector('svg.plan-graph');
  const width = svg.getBoundingClientRect().width;
  const scale = width / svg.viewBox.baseVal.width;  // the SVG shrinks to fit: fonts shrink with it
  const out = {graphWidth: width, smallestFont: 99, overflowing: []};
  for (const g of svg.querySelectorAll('g.node')) {
    const shape = g.querySelector('path, polygon').getBoundingClientRect();
    for (const t of g.querySelectorAll('text')) {
      const box = t.getBoundingClientRect();
      out.smallestFont = Math.min(out.smallestFont, scale * parseFloat(t.getAttribute('font-size')));
      if (box.left < shape.left - 1 || box.right > shape.right + 1) out.overflowing.push(g.id + ': ' + t.textContent);
    }
  }
  return out;
}"""


@needs_dot
def test_a_plan_with_free_form_ids_is_drawn(tmp_path: Path) -> None:
    from finks.diagram import draw

    write_plan(tmp_path, [session("prefect-server"), session("api-layer", depends_on=["prefect-server"])])
    svg = draw(load_plan(tmp_path), "svg").decode()
    assert 'id="prefect-server"' in svg and 'id="api-layer"' in svg
    assert 'id="e-prefect-server-api-layer"' in svg
