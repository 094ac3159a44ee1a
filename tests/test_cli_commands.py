"""The CLI surface: help everywhere, JSON schemas, exit codes, colour, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finks.cli import app

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("prefect", "pulumi", "pulumi_aws", "dbt", "duckdb", "pyspark", "boto3", "httpx", "fastapi")


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FINKS_HANDOFFS", str(tmp_path / "handoffs"))
    monkeypatch.delenv("FINKS_SESSIONS", raising=False)


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _commands(group=None, ctx=None) -> list[list[str]]:  # type: ignore[no-untyped-def]
    import typer.main

    group = group or typer.main.get_command(app)
    ctx = ctx or group.make_context("finks", ["--help"], resilient_parsing=True)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        out.append([name])
        if hasattr(cmd, "list_commands"):
            sub_ctx = cmd.make_context(name, ["--help"], parent=ctx, resilient_parsing=True)
            out += [[name, *sub] for sub in _commands(cmd, sub_ctx)]
    return out


def test_every_command_has_help() -> None:
    commands = _commands(None)
    assert {"status", "next", "plan", "graph", "show", "run", "gate", "why", "retry", "handoff", "prime",
            "reset"} <= {c[0] for c in commands}
    for path in commands:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, path
        assert "Usage:" in result.stdout


# v2: the kinds that carry criterion-level verdicts (and plan: the schedule finks enforces).
@pytest.mark.parametrize("args, kind, version", [
    (["status", "--json"], "status", 2), (["plan", "--json"], "plan", 2), (["next", "--json"], "next", 1),
    (["graph", "--format", "json"], "graph", 1), (["show", "s8", "--json"], "session", 2),
    (["why", "s16", "--json"], "why", 2), (["prime", "s1", "--json"], "prime", 2),
    (["handoff", "s1", "--json"], "handoff", 2)])
def test_json_outputs_carry_a_versioned_schema(args: list[str], kind: str, version: int) -> None:
    result = invoke(*args)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["schema"] == f"finks.{kind}/v{version}"


def test_status_on_a_fresh_state_shows_s0_and_s15_ready_only() -> None:
    data = json.loads(invoke("status", "--json").stdout)
    statuses = {s["id"]: s["status"] for s in data["sessions"]}
    assert statuses["s0"] == "ready"
    assert statuses["s15"] == "blocked"  # no predecessor, but week 5 waits for gate week4
    assert "gate week4 has not passed" in {s["id"]: s["reason"] for s in data["sessions"]}["s15"]
    assert [g["id"] for g in data["gates"]] == [f"week{i}" for i in range(1, 7)]


def test_why_walks_the_chain_to_the_root() -> None:
    out = invoke("why", "s8").stdout
    assert out.splitlines()[0].startswith("s8: blocked")
    assert "s0: ready" in out


@pytest.mark.parametrize("args, code, fragment", [
    (["show", "s99"], 2, "unknown session 's99'"),
    (["run", "nothing"], 2, "matches no session"),
    (["status", "--env", "mars"], 2, "unknown environment 'mars'"),
    (["gate", "week9"], 2, "unknown gate 'week9'"),
    (["run"], 2, "give a selector or --all"),
])
def test_usage_errors_exit_2_with_one_line(args: list[str], code: int, fragment: str) -> None:
    result = invoke(*args)
    assert result.exit_code == code
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_broken_plan_exits_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "s1.yaml").write_text("id: s1\ntitle: [\n")
    result = invoke("--sessions", str(tmp_path), "status")
    assert result.exit_code == 2
    assert "s1.yaml:3: invalid YAML" in result.stderr


def test_graph_formats() -> None:
    assert "S15 --> S16" in invoke("graph").stdout
    assert "s13 -> s16;" in invoke("graph", "--format", "dot").stdout
    assert invoke("graph", "--format", "gif").exit_code == 2


def test_plan_reports_critical_path_and_totals() -> None:
    out = invoke("plan").stdout
    assert "critical path (high, 53h, as the diagram draws it): " \
        "s0 -> s2 -> s3 -> s5 -> s8 -> s9 -> s10 -> s16 -> s19 -> s21 -> s22" in out
    # With strict gates a week waits for the previous week's gate: s15 (week 5) runs after gate week4.
    assert "critical path (high, 71h, as finks enforces it with strict gates): s0 -> s2 -> s3 -> week1 -> s5 " \
        "-> week2 -> s8 -> s9 -> s10 -> week3 -> s12 -> s14 -> week4 -> s15 -> s16 -> s17 -> week5 -> s19 " \
        "-> s21 -> s22 -> week6" in out
    assert "wave 1: s0(1-2h)\n" in out and "wave 4: [gate week1]\n" in out
    assert "total: 56-71h elapsed with unlimited parallelism, as finks enforces it with strict gates; " \
        "42-53h as the diagram draws it" in out


def test_status_and_help_import_nothing_heavy() -> None:
    code = ("import sys; from finks.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['status']); CliRunner().invoke(app, ['--help']); "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "NO_COLOR": "1"})
    assert out.stdout.strip() == "[]", out.stderr


def test_no_colour_without_a_tty() -> None:
    assert "\033[" not in invoke("status").stdout


def test_subprocess_exit_code_for_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "finks.cli", "show", "s42"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("finks: error: unknown session 's42'")


def test_shell_completion_is_offered() -> None:
    assert "--show-completion" in invoke("--help").stdout


def test_status_on_a_tty_shows_the_plans_indicators(tmp_path: Path) -> None:
    import pty

    env = {**os.environ, "FINKS_STATE_DIR": str(tmp_path / "tty-state"), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # child: finks status with its stdout on the terminal
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "finks.cli", "status"], env)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    out = b"".join(chunks).decode()
    assert "🟡 ready" in out and "🔴 blocked" in out
    assert "\033[" in out  # colour on a terminal
