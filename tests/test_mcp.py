"""`finks mcp`: the SDK's own stdio client drives the server as a coding agent would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import TextContent
from typer.testing import CliRunner

from finks.cli import app
from finks.reporters import envelope
from tests.planbuilder import session, write_plan

REPO = Path(__file__).resolve().parent.parent
TOOLS = {"status", "next", "why", "show", "plan", "prime", "handoff", "run", "verify", "gate", "claim", "release"}


def _server_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": str(REPO), "FINKS_STATE_DIR": str(tmp / "state"), "FINKS_HANDOFFS": str(tmp / "handoffs"),
            "NO_COLOR": "1", **extra}


def _with_client(env: dict[str, str], body: Callable[[Client], Awaitable[Any]]) -> Any:
    """Start `python -m finks mcp` over stdio, as an MCP client does, and run `body` against it."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "finks", "mcp"], env=env, cwd=str(REPO))

    async def main() -> Any:
        with anyio.fail_after(120):
            async with Client(params) as client:
                return await body(client)

    return anyio.run(main)


def schema(kind: str) -> str:
    """The schema the CLI's --json gives a kind (finks.status/v2, …)."""
    return json.loads(envelope(kind, {}))["schema"]  # type: ignore[no-any-return]


def _text(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same scratch state for CliRunner invocations in this process."""
    for key, value in _server_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FINKS_SESSIONS", raising=False)
    monkeypatch.delenv("FINKS_ENV", raising=False)
    return tmp_path


def test_tools_answer_with_the_cli_json_documents_on_the_real_plan(cli_env: Path) -> None:
    async def body(client: Client) -> dict[str, Any]:
        tools = await client.list_tools()
        calls = {
            "status": await client.call_tool("status", {}),
            "prime": await client.call_tool("prime", {"session": "s16"}),
            "why": await client.call_tool("why", {"session": "s16"}),
            "dry_run": await client.call_tool("run", {"selector": "+s1", "dry_run": True}),
            "unknown": await client.call_tool("show", {"session": "s99"}),
            "bad_env": await client.call_tool("status", {"env": "mars"}),
        }
        templates = await client.list_resource_templates()
        prime_resource = await client.read_resource("finks://prime/s16")
        return {"tools": tools.tools, "templates": templates.resource_templates,
                "prime_resource": prime_resource.contents[0], **calls}

    got = _with_client(_server_env(cli_env), body)
    assert {t.name for t in got["tools"]} == TOOLS
    assert all(t.output_schema and t.output_schema["type"] == "object" for t in got["tools"])
    assert next(t for t in got["tools"] if t.name == "status").annotations.read_only_hint

    status = got["status"]
    assert not status.is_error and status.structured_content["schema"] == schema("status")
    # The very document `finks status --json` prints.
    cli = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert status.structured_content == cli
    assert "env local: 23 sessions" in _text(status) and "s0" in _text(status)

    prime = got["prime"]
    assert prime.structured_content["schema"] == schema("prime")
    assert prime.structured_content["markdown"].startswith("# Context prime — Session 16: Orchestration Flows")
    assert _text(prime) == prime.structured_content["markdown"]
    assert got["prime_resource"].text == prime.structured_content["markdown"]

    why = got["why"].structured_content
    assert why["schema"] == schema("why") and why["chain"][0]["id"] == "s16" and why["chain"][0]["status"] == "blocked"
    assert _text(got["why"]).startswith("s16: blocked")

    dry = got["dry_run"].structured_content
    assert dry["schema"] == schema("run") and dry["handoffs"] == {}
    assert {s["id"]: s["outcome"] for s in dry["sessions"]} == {"s0": "would_run", "s1": "would_run"}
    assert not (cli_env / "state/state/local/history.jsonl").exists()  # a dry run records nothing

    # Errors: the CLI's one line, and the exit code it would have used.
    cli_error = CliRunner().invoke(app, ["show", "s99"]).stderr.strip()
    assert got["unknown"].is_error and _text(got["unknown"]) == cli_error
    assert got["unknown"].structured_content["exit_code"] == 2
    assert got["bad_env"].is_error and "unknown environment 'mars'" in _text(got["bad_env"])

    assert {t.uri_template for t in got["templates"]} == {
        "finks://handoff/{env}/{session}", "finks://prime/{session}", "finks://prime/{env}/{session}"}


READ_CALLS = [("status", {}, ["status"]), ("next", {}, ["next"]), ("plan", {}, ["plan"]),
              ("show", {"session": "s8"}, ["show", "s8"]), ("why", {"session": "s16"}, ["why", "s16"]),
              ("prime", {"session": "s1"}, ["prime", "s1"]), ("handoff", {"session": "s1"}, ["handoff", "s1"])]


def test_every_read_tool_returns_the_document_the_cli_prints(cli_env: Path) -> None:
    async def body(client: Client) -> list[Any]:
        return [await client.call_tool(tool, args) for tool, args, _ in READ_CALLS]

    for (tool, _, argv), result in zip(READ_CALLS, _with_client(_server_env(cli_env), body), strict=True):
        cli = CliRunner().invoke(app, [*argv, "--json"])
        assert cli.exit_code == 0, cli.stderr
        assert not result.is_error, _text(result)
        assert result.structured_content == json.loads(cli.stdout), tool


def test_run_streams_progress_and_returns_the_summary_and_handoffs(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "plan", [
        session("s1", checks=[{"id": "first", "shell": "echo one"}, {"id": "second", "shell": "true"}],
                actions=[{"shell": "echo doing"}]),
        session("s2", deps=("s1",), checks=[{"id": "bad", "shell": "echo broken; exit 1"}]),
        session("s3", deps=("s2",))])
    (tmp_path / "repo").mkdir()
    env = _server_env(tmp_path, FINKS_SESSIONS=str(plan), FINKS_ROOT=str(tmp_path / "repo"))
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def body(client: Client) -> dict[str, Any]:
        run = await client.call_tool("run", {"selector": "all"}, progress_callback=on_progress)
        handoff = await client.read_resource("finks://handoff/local/s1")
        status = await client.call_tool("status", {})
        why = await client.call_tool("why", {"session": "s3"})
        blocked = await client.call_tool("run", {"selector": "s3"})
        return {"run": run, "handoff": handoff.contents[0], "status": status, "why": why, "blocked": blocked}

    got = _with_client(env, body)
    run = got["run"]
    assert not run.is_error
    doc = run.structured_content
    assert doc["schema"] == schema("run") and doc["ok"] is False
    assert {s["id"]: s["outcome"] for s in doc["sessions"]} == {
        "s1": "passed", "s2": "failed", "s3": "skipped_upstream"}
    assert set(doc["handoffs"]) == {"s1", "s2"}
    written = Path(doc["handoffs"]["s1"]).read_text()
    assert written.startswith("## Session 1 Handoff — Session s1 title") and "- ✅ s1 works" in written
    # The resource renders from the latest run now; the file's "Next" was written while s2 was ready.
    assert got["handoff"].text.startswith("## Session 1 Handoff — Session s1 title")
    assert _text(run).startswith("1 passed, 1 failed, 1 skipped (upstream did not pass)")

    # The console's lines, in order, as progress that only rises and ends at its total.
    messages = [m for _, _, m in progress]
    assert messages[0].startswith("▶ s1: Session s1 title")
    assert "  … action of s1" in messages
    assert any(m.startswith("  PASSED  first") for m in messages)
    assert any(m.startswith("  FAILED  bad") for m in messages)
    assert any(m.startswith("■ s3 skipped: upstream did not pass: s2 (failed)") for m in messages)
    assert messages[-1] == _text(run).splitlines()[0]
    values = [v for v, _, _ in progress]
    assert values == sorted(set(values)) and progress[-1][0] == progress[-1][1]

    statuses = {s["id"]: s["status"] for s in got["status"].structured_content["sessions"]}
    assert statuses == {"s1": "complete", "s2": "failed", "s3": "blocked"}
    assert "bad failed" in _text(got["why"])
    assert got["blocked"].is_error
    assert _text(got["blocked"]).startswith("finks: error: s3 is blocked by s2 (failed)")


def test_verify_checks_without_actions_and_reports_drift(tmp_path: Path) -> None:
    """The verify tool: checks only (the action's marker never appears), verdicts recorded, ok false on a failure."""
    marker, healthy = tmp_path / "action-ran", tmp_path / "healthy"
    healthy.touch()
    plan = write_plan(tmp_path / "plan", [
        session("s1", checks=[{"id": "still-there", "shell": f"test -e {healthy}"}],
                actions=[{"shell": f"touch {marker}"}])])
    (tmp_path / "repo").mkdir()
    env = _server_env(tmp_path, FINKS_SESSIONS=str(plan), FINKS_ROOT=str(tmp_path / "repo"))
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async def body(client: Client) -> dict[str, Any]:
        first = await client.call_tool("verify", {"selector": "s1"}, progress_callback=on_progress)
        healthy.unlink()
        drifted = await client.call_tool("verify", {"selector": "all"})
        status = await client.call_tool("status", {})
        return {"first": first, "drifted": drifted, "status": status}

    got = _with_client(env, body)
    assert not got["first"].is_error and got["first"].structured_content["schema"] == schema("verify")
    assert got["first"].structured_content["ok"] is True and not marker.exists()
    assert any(m and m.startswith("  PASSED  still-there") for m in progress)
    drifted = got["drifted"].structured_content
    assert drifted["ok"] is False and {s["id"]: s["outcome"] for s in drifted["sessions"]} == {"s1": "failed"}
    assert {s["id"]: s["status"] for s in got["status"].structured_content["sessions"]} == {"s1": "failed"}


def test_finks_status_and_help_never_import_the_mcp_sdk() -> None:
    code = ("import sys; from finks.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['status']); CliRunner().invoke(app, ['--help']); "
            "CliRunner().invoke(app, ['mcp', '--help']); "
            "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "NO_COLOR": "1"})
    assert out.stdout.strip() == "[]", out.stderr


def test_server_answers_list_tools_soon_after_start(tmp_path: Path) -> None:
    started = time.monotonic()

    async def body(client: Client) -> float:
        await client.list_tools()
        return time.monotonic() - started

    elapsed = _with_client(_server_env(tmp_path), body)
    # ~1 s here, most of it importing the SDK; generous for a loaded CI machine.
    assert elapsed < 15, f"first list_tools answered after {elapsed:.1f}s"
