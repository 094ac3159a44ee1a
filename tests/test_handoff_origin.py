"""Handoffs that tell the truth about their origin: a clean tree despite finks' own notes, and primes
that present a predecessor's note as current only when this environment's history backs it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from finks.cli import app
from finks.gitinfo import git_info
from finks.handoff import read_origin
from tests.planbuilder import session, write_plan

REPO = Path(__file__).resolve().parent.parent
FOREIGN = "Not this environment's evidence"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=finks", "-c", "user.email=finks@example.com", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


def history(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "state" / "local" / "history.jsonl").read_text().splitlines()]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding a plan (sessions/), its handoffs beside it (handoffs/), state outside."""
    root = tmp_path / "repo"
    write_plan(root / "sessions", [session("s1", deliverables=("work.txt",)), session("s2", deps=("s1",))])
    (root / "work.txt").write_text("v1\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "plan")
    for key in ("FINKS_HANDOFFS", "FINKS_ENV", "FINKS_SESSIONS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FINKS_ROOT", str(root))
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    return root


def test_the_dirty_flag_ignores_finks_own_handoffs_and_names_the_dirty_files(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert invoke("run", "s1").exit_code == 0
    assert (repo / "handoffs" / "local" / "s01-session-s1-title.md").is_file()  # untracked, in the tree
    assert invoke("run", "s1").exit_code == 0
    second = [e for e in history(state) if e["type"] == "run_started"][-1]["git"]
    assert second["dirty"] is False and second["dirty_files"] == [] and second["commit"]
    assert git_info(repo)["dirty_files"] == ["handoffs/local/s01-session-s1-title.md"]  # without the exclusion

    (repo / "work.txt").write_text("v2\n")
    (repo / "notes.txt").write_text("new\n")
    assert invoke("run", "s1").exit_code == 0
    third = [e for e in history(state) if e["type"] == "run_started"][-1]["git"]
    assert third["dirty"] is True and sorted(third["dirty_files"]) == ["notes.txt", "work.txt"]
    assert third["dirty_count"] == 2
    note = (repo / "handoffs" / "local" / "s01-session-s1-title.md").read_text()
    assert f"git {third['commit']} (dirty: 2 files: " in note and "`work.txt`" in note


def test_git_info_outside_a_repository_says_why_it_does_not_know(tmp_path: Path) -> None:
    info = git_info(tmp_path)
    assert info["commit"] is None and info["dirty"] is None and "not a git repository" in info["error"]


def test_a_handoff_ends_with_the_run_it_came_from(repo: Path, tmp_path: Path) -> None:
    invoke("run", "s1")
    run = [e for e in history(tmp_path / "state") if e["type"] == "run_started"][-1]
    text = (repo / "handoffs" / "local" / "s01-session-s1-title.md").read_text()
    assert text.splitlines()[-1].startswith("<!-- finks:handoff {")
    origin = read_origin(text)
    assert (origin.run_id, origin.started_at, origin.commit, origin.env) == (
        run["run_id"], run["at"], run["git"]["commit"], "local")


def test_after_a_run_the_prime_presents_the_predecessors_handoff_as_current(repo: Path) -> None:
    invoke("run", "s1")
    out = invoke("prime", "s2").stdout
    assert "## Session 1 Handoff — Session s1 title" in out
    assert FOREIGN not in out and "<!-- finks:handoff" not in out


def test_a_handoff_from_another_environments_history_is_labelled_with_run_date_and_commit(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("run", "s1")
    origin = read_origin((repo / "handoffs" / "local" / "s01-session-s1-title.md").read_text())
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "another-machine"))  # the note stays, the history does not
    out = invoke("prime", "s2").stdout
    label = next(line for line in out.splitlines() if FOREIGN in line)
    assert (f"from run `{origin.run_id}` on {origin.started_at} at commit {origin.commit}, "
            "not in this environment's history") in label
    assert "finks run s1 --env local" in label
    assert out.index(label) < out.index("## Session 1 Handoff")  # the label comes first, then the note


def test_a_handoff_older_than_the_latest_run_is_labelled_as_not_the_latest(repo: Path, tmp_path: Path) -> None:
    note = repo / "handoffs" / "local" / "s01-session-s1-title.md"
    invoke("run", "s1")
    old = note.read_text()
    invoke("run", "s1")
    latest = [e for e in history(tmp_path / "state") if e["type"] == "run_started"][-1]["run_id"]
    note.write_text(old)  # say, a checkout brought back the older note
    out = invoke("prime", "s2").stdout
    assert FOREIGN in out and f"not the latest run of s1 on `local` (that is `{latest}`" in out


def test_on_a_fresh_state_the_committed_handoffs_of_this_repository_are_labelled_foreign(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("FINKS_HANDOFFS", "FINKS_SESSIONS", "FINKS_ROOT", "FINKS_ENV"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    committed = REPO / "handoffs" / "local" / "s15-fmp-ingestion-connector.md"
    if not committed.is_file():
        pytest.skip("this checkout has no committed handoffs")
    origin = read_origin(committed.read_text())
    assert origin.run_id  # the older format's first bullet names it
    out = invoke("prime", "s16").stdout
    labels = [line for line in out.splitlines() if FOREIGN in line]
    assert any(f"s15's handoff below is from run `{origin.run_id}` on {origin.started_at}" in ln for ln in labels)
    presented = out.count("Handoff — ")  # every predecessor note shown is labelled
    assert presented == len(labels) > 0
    assert not (tmp_path / "state" / "state").exists() or not list((tmp_path / "state").rglob("history.jsonl"))


def test_a_note_without_any_origin_is_labelled_too(repo: Path, tmp_path: Path) -> None:
    (repo / "handoffs" / "local").mkdir(parents=True)
    (repo / "handoffs" / "local" / "s01-session-s1-title.md").write_text("## Session 1 Handoff — hand-written\n")
    out = invoke("prime", "s2").stdout
    assert "s1's handoff below is a note that names no run, not in this environment's history" in out
    shutil.rmtree(repo / "handoffs")
    assert "- s1: no handoff yet for `local`" in invoke("prime", "s2").stdout
