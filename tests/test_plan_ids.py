"""Any team's plan: free-form session ids, plan order, selectors, and handoffs written beside the plan."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from core.errors import PlanError, UsageError
from finks.cli import app
from finks.graph import resolve, select, to_dot, to_mermaid, topo_order
from finks.handoff import handoff_path
from finks.loader import load_plan
from tests.planbuilder import session

REPO = Path(__file__).resolve().parent.parent
WORDS = ("prefect-server", "ingest", "dbt-models", "api", "quality-checks")


def big_plan(directory: Path, count: int = 200) -> list[str]:
    """A plan of ``count`` sessions with free-form ids (s100, prefect-server-1, …), one file each,
    named so that file order is plan order; each session needs the one before it (and one further back)."""
    directory.mkdir(parents=True)
    ids = [f"s{100 + i}" if i % 4 == 0 else f"{WORDS[i % len(WORDS)]}-{i}" for i in range(count)]
    for i, sid in enumerate(ids):
        deps = tuple(ids[j] for j in {i - 1, i - 7} if j >= 0)
        data = session(sid, week=1 + i // 40, deps=deps)
        data["area"] = WORDS[i % len(WORDS)]
        (directory / f"{i:03d}-{sid}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return ids


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another team's plan in tmp (team/sessions), this repository as the root, no FINKS_HANDOFFS."""
    for key in ("FINKS_HANDOFFS", "FINKS_SESSIONS", "FINKS_ROOT", "FINKS_ENV"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path / "team" / "sessions"


def test_a_200_session_plan_with_free_form_ids_loads_in_file_order(team: Path) -> None:
    ids = big_plan(team)
    plan = load_plan(team, root=REPO)
    assert list(plan.sessions) == ids
    assert topo_order(plan) == ids  # a chain: dependency order is plan order
    assert plan.handoffs == (team.parent / "handoffs").resolve()
    status = json.loads(invoke("--sessions", str(team), "status", "--json").stdout)
    assert [s["id"] for s in status["sessions"]] == ids
    assert status["sessions"][0]["status"] == "ready" and status["sessions"][1]["status"] == "blocked"


def test_runs_of_a_big_plan_write_handoffs_beside_it_and_leave_this_repositorys_alone(team: Path) -> None:
    ids = big_plan(team)

    def repo_handoffs() -> str:
        return subprocess.run(["git", "status", "--porcelain", "--", "handoffs"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout

    before = repo_handoffs()
    out = invoke("--sessions", str(team), "run", f"+{ids[2]}")
    assert out.exit_code == 0, out.stderr
    assert "3 passed" in out.stdout
    written = sorted(p.name for p in (team.parent / "handoffs" / "local").iterdir())
    assert written == sorted(f"{sid}-session-{sid}-title.md" for sid in ids[:3])
    note = (team.parent / "handoffs" / "local" / f"{ids[1]}-session-{ids[1]}-title.md").read_text()
    assert note.startswith(f"## Session {ids[1]} Handoff — Session {ids[1]} title")
    assert repo_handoffs() == before
    status = {s["id"]: s["status"] for s in json.loads(invoke("--sessions", str(team), "status", "--json").stdout)
              ["sessions"]}
    assert [status[sid] for sid in ids[:4]] == ["complete", "complete", "complete", "ready"]


def test_a_plan_may_name_its_handoffs_folder_and_finks_handoffs_still_overrides(
        team: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big_plan(team, 2)
    (team / "gates.yaml").write_text("handoffs: ../notes\n")
    plan = load_plan(team, root=REPO)
    assert handoff_path(REPO, "dev", plan, "s100") == (team.parent / "notes" / "dev" / "s100-session-s100-title.md")
    monkeypatch.setenv("FINKS_HANDOFFS", str(tmp_path / "elsewhere"))
    assert handoff_path(REPO, "dev", plan, "s100") == tmp_path / "elsewhere" / "dev" / "s100-session-s100-title.md"


def test_this_repositorys_plan_keeps_its_order_and_its_handoffs_at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINKS_HANDOFFS", raising=False)
    monkeypatch.delenv("FINKS_ROOT", raising=False)
    plan = load_plan(REPO / "sessions", root=REPO)
    assert list(plan.sessions) == [f"s{n}" for n in range(23)]
    assert handoff_path(REPO, "local", plan, "s16") == REPO / "handoffs" / "local" / "s16-orchestration-flows.md"
    assert plan.session("s08").id == "s8" and plan.session("S16").id == "s16"
    assert plan.sessions["s16"].label == "Session 16"


def _small(directory: Path) -> Path:
    directory.mkdir(parents=True)
    plan = [session("setup", week=1), session("prefect-server", week=1, deps=("setup",)),
            session("prefect-worker", week=2, deps=("prefect-server",)), session("s100", week=2, deps=("setup",))]
    plan[1]["area"] = plan[2]["area"] = "orchestration"
    for i, data in enumerate(plan):
        (directory / f"{i:02d}-{data['id']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def test_selectors_take_hyphenated_ids_whole(tmp_path: Path) -> None:
    plan = load_plan(_small(tmp_path / "sessions"), root=tmp_path)
    assert select(plan, "prefect-server") == ["prefect-server"]
    up = resolve(plan, "+prefect-worker")
    assert up.ids == ("setup", "prefect-server", "prefect-worker") and up.explicit == {"prefect-worker"}
    assert select(plan, "prefect-server+") == ["prefect-server", "prefect-worker"]
    assert select(plan, "s100,prefect-server") == ["prefect-server", "s100"]
    assert select(plan, "week2") == ["prefect-worker", "s100"]
    assert select(plan, "area:orchestration") == ["prefect-server", "prefect-worker"]
    mixed = resolve(plan, "+s100 area:orch")
    assert mixed.explicit == {"s100"}
    with pytest.raises(UsageError, match="did you mean prefect-server"):
        select(plan, "prefect-serve")


def test_graph_formats_quote_or_rewrite_hyphenated_ids(tmp_path: Path) -> None:
    plan = load_plan(_small(tmp_path / "sessions"), root=tmp_path)
    assert '    PREFECT_SERVER["PREFECT-SERVER: Session prefect-server title"]' in to_mermaid(plan)
    assert "    SETUP --> PREFECT_SERVER" in to_mermaid(plan)
    assert '  "prefect-server" -> "prefect-worker";' in to_dot(plan) and "  setup -> s100;" in to_dot(plan)


@pytest.mark.parametrize(("bad", "why"), [
    ("week3", "selector word"), ("all", "selector word"), ("Prefect_Server", "lowercase slug"),
    ("-x", "lowercase slug"), ("x" * 41, "lowercase slug"), ("trailing-", "lowercase slug"), ("9lives", "lowercase slug"),
])
def test_an_id_that_is_no_slug_or_a_selector_word_is_refused_with_file_and_line(tmp_path: Path, bad: str,
                                                                                 why: str) -> None:
    directory = tmp_path / "sessions"
    directory.mkdir()
    (directory / "one.yaml").write_text(yaml.safe_dump(session(bad), sort_keys=False))
    with pytest.raises(PlanError) as caught:
        load_plan(directory, root=tmp_path)
    assert f"{directory / 'one.yaml'}:1: id: session id {bad!r}" in str(caught.value) and why in str(caught.value)
