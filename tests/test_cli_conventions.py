"""Meta-tests: the conventions every `finks` command keeps, checked over the whole command tree.

The tree is walked the way click resolves it, the lazily loaded platform
commands included: one help style, `-e` is `--env`, `--json` prints one
document named `finks.<kind>/v<N>`, exit codes as the README's table says.
A new command is held to the same rules without being listed here, except
that a new `--json` command must say whether this file may run it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from finks.cli import app

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("prefect", "pulumi", "pulumi_aws", "dbt", "duckdb", "pyspark", "boto3", "httpx", "fastapi")
SCHEMA = re.compile(r"^finks\.[a-z][a-z-]*/v\d+$")
BOX = re.compile("[\u2500-\u257f]")  # rich's panels: ╭─ Options ─╮ │ … │

# Every command with --json: run here (with these arguments, on a scratch state) …
READ_ONLY: dict[str, list[str]] = {
    "status": [], "next": [], "plan": [], "graph": [], "show": ["s0"], "why": ["s0"], "handoff": ["s0"],
    "prime": ["s0"], "run": ["s0", "--dry-run"], "report": [],
    "config show": [], "dev status": [], "dev down": [], "infra plan": ["--env", "dev"],
    "infra check": ["--env", "dev"],
}
# … or not, and why.
NOT_RUN: dict[str, str] = {
    "verify": "runs the checks of a session",
    "retry": "re-runs sessions (and without an earlier run it is a usage error)",
    "gate": "evaluates and records a gate",
    "claim": "records a claim",
    "release": "records a release",
    "dev up": "starts services",
    "dev bootstrap": "needs the AWS emulator",
    "ingest": "calls FMP",
    "transform": "writes silver",
    "dbt build": "runs dbt", "dbt test": "runs dbt", "dbt docs": "runs dbt",
    "pipeline run": "needs a Prefect server",
    "backfill": "needs a Prefect server",
    "deploy": "needs a Prefect server: test_deploy_prints_one_json_document_and_no_prefect_chatter",
    "blocks apply": "needs a Prefect server",
}


def _tree() -> list[tuple[str, Any]]:
    """(path, command) of every command and group below `finks`, `finks` itself first as ''."""
    import typer.main

    def walk(command: Any, path: str, ctx: Any) -> list[tuple[str, Any]]:
        found = [(path, command)]
        if hasattr(command, "list_commands"):  # a group
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"'finks {path} {name}' is listed but does not resolve"
                sub_ctx = sub.make_context(name, ["--help"], parent=ctx, resilient_parsing=True)
                found += walk(sub, f"{path} {name}".strip(), sub_ctx)
        return found

    root = typer.main.get_command(app)
    return walk(root, "", root.make_context("finks", ["--help"], resilient_parsing=True))


TREE = _tree()
PATHS = [path for path, _ in TREE]


def _options(command: Any) -> list[list[str]]:
    return [[*p.opts, *p.secondary_opts] for p in command.params if p.param_type_name == "option"]


def _json_commands() -> set[str]:
    return {path for path, command in TREE if any("--json" in opts for opts in _options(command))}


@pytest.fixture(autouse=True)
def _scratch(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """State, handoffs and the dev stack's ports of this test only (or of the session's local stack)."""
    from finks.devstack.procs import free_port

    if "local_stack" in request.fixturenames:
        return
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FINKS_HANDOFFS", str(tmp_path / "handoffs"))
    monkeypatch.setenv("FINKS_PREFECT_PORT", str(free_port()))
    monkeypatch.setenv("FINKS_MOTO_PORT", str(free_port()))
    monkeypatch.setenv("FINKS_PREFECT_DATABASE", "sqlite")
    for name in ("FINKS_SESSIONS", "FINKS_ENV", "FINKS_CONFIG", "FINKS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_the_tree_includes_the_lazy_platform_commands() -> None:
    assert {"status", "dev status", "config show", "infra plan", "dbt build", "pipeline run", "api openapi",
            "mcp", "report"} <= set(PATHS)


# ---- one help style ----------------------------------------------------------
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p or "finks")
def test_every_command_prints_plain_help(path: str) -> None:
    result = invoke(*path.split(), "--help")
    assert result.exit_code == 0, result.output
    help_text = result.stdout
    assert help_text.startswith(f"Usage: finks {path}".rstrip() + " "), help_text[:200]
    assert not BOX.search(help_text), f"rich box in 'finks {path} --help'"
    assert "<bool>" not in help_text  # a flag takes no value
    # Completion is offered once, by `finks` itself.
    assert ("--install-completion" in help_text) == (path == "")


def test_every_command_has_a_description() -> None:
    bare = [path for path, command in TREE if not (command.help or "").strip()]
    assert bare == []


# ---- one meaning per short flag ----------------------------------------------------
def test_e_is_env_everywhere_and_every_env_has_e() -> None:
    wrong = {path: opts for path, command in TREE for opts in _options(command)
             if ("-e" in opts) != ("--env" in opts)}
    assert wrong == {}


def test_engine_has_no_short_flag() -> None:
    engines = [opts for _, command in TREE for opts in _options(command) if "--engine" in opts]
    assert engines and all(opts == ["--engine"] for opts in engines)


# ---- --version, python -m finks -----------------------------------------------------
def test_version_prints_the_installed_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"finks {version('finks')}\n"


def test_python_m_finks_is_finks_and_version_imports_nothing_heavy() -> None:
    help_out = subprocess.run([sys.executable, "-m", "finks", "--help"], capture_output=True, text=True, cwd=REPO)
    assert help_out.returncode == 0 and help_out.stdout.startswith("Usage: finks [OPTIONS]"), help_out.stdout[:200]
    code = ("import sys; sys.argv = ['finks', '--version']; from finks.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.splitlines() == [f"finks {version('finks')}", "[]"], out.stderr


# ---- --json: one document, one naming scheme ---------------------------------------
def test_every_json_command_is_run_here_or_says_why_not() -> None:
    unclassified = _json_commands() - set(READ_ONLY) - set(NOT_RUN)
    assert unclassified == set(), "add these to READ_ONLY (with arguments) or NOT_RUN (with the reason)"
    assert set(READ_ONLY) <= _json_commands()


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")
@pytest.mark.parametrize("path", sorted(READ_ONLY))
def test_json_is_one_document_with_a_versioned_schema(path: str) -> None:
    result = invoke(*path.split(), *READ_ONLY[path], "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # strict: one JSON value and nothing else on stdout
    assert isinstance(doc, dict) and SCHEMA.match(doc.get("schema", "")), doc.get("schema")


@pytest.mark.parametrize("args, schema", [
    (["graph", "--json"], "finks.graph/v1"), (["config", "show", "--json"], "finks.config/v1"),
    (["dev", "status", "--json"], "finks.dev-status/v1"), (["dev", "down", "--json"], "finks.dev-down/v1"),
])
def test_renamed_schemas(args: list[str], schema: str) -> None:
    assert json.loads(invoke(*args).stdout)["schema"] == schema


def test_graph_json_is_the_json_format() -> None:
    assert invoke("graph", "--json").stdout == invoke("graph", "--format", "json").stdout
    other = invoke("graph", "--json", "--format", "dot")
    assert other.exit_code == 2 and "--json is --format json" in other.stderr


# ---- exit codes: 0 ok, 1 failed or blocked, 2 usage or configuration, 3 internal or state ----
@pytest.mark.parametrize("path", [p for p, c in TREE if p and not hasattr(c, "list_commands")])
def test_an_unknown_option_is_a_usage_error(path: str) -> None:
    result = invoke(*path.split(), "--no-such-option")
    assert result.exit_code == 2
    assert "No such option: --no-such-option" in result.stderr


@pytest.mark.parametrize("args", [["show", "s99", "--json"], ["why", "s99", "--json"], ["handoff", "s99"]])
def test_an_unknown_session_exits_2_with_nothing_on_stdout(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("finks: error: unknown session 's99'")


@pytest.mark.parametrize("args", [["config", "show", "--env", "mars"], ["dev", "status", "--env", "mars", "--json"],
                                  ["infra", "plan", "--env", "mars"], ["status", "--env", "mars", "--json"]])
def test_an_unknown_environment_exits_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert "mars" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["config", "show", "--json"], ["dev", "status"], ["infra", "check"]])
def test_malformed_settings_yaml_exits_2_naming_the_file(args: list[str], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "finks.yaml"
    config.write_text("env: [local\n")
    monkeypatch.setenv("FINKS_CONFIG", str(config))
    result = invoke(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{config}: not valid YAML" in result.stderr


def test_malformed_sessions_yaml_exits_2_with_json_too(tmp_path: Path) -> None:
    (tmp_path / "s1.yaml").write_text("id: s1\ntitle: [\n")
    result = invoke("--sessions", str(tmp_path), "next", "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert "s1.yaml:3: invalid YAML" in result.stderr


def test_malformed_prefect_yaml_is_a_configuration_error(tmp_path: Path) -> None:
    from core.errors import ConfigError
    from flows.deploy import read_deployments

    (tmp_path / "prefect.yaml").write_text("deployments: [\n")
    with pytest.raises(ConfigError) as err:
        read_deployments(tmp_path)
    assert err.value.exit_code == 2 and str(tmp_path / "prefect.yaml") in str(err.value)


@pytest.mark.parametrize("args", [["status", "--json"], ["next"], ["show", "s0", "--json"]])
def test_a_corrupt_state_file_exits_3_naming_it(args: list[str], tmp_path: Path) -> None:
    history = tmp_path / "state" / "state" / "local" / "history.jsonl"
    history.parent.mkdir(parents=True)
    history.write_text("{not json\n")
    result = invoke(*args)
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.startswith(f"finks: error: corrupt state file {history}:1")
    assert history.read_text() == "{not json\n"


# ---- Prefect's chatter stays out of `finks deploy` -----------------------------------
@pytest.mark.services
def test_deploy_prints_one_json_document_and_no_prefect_chatter(local_stack: Any) -> None:
    proc = subprocess.run([sys.executable, "-m", "finks", "deploy", "--json"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "NO_COLOR": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "finks.deploy/v1" and "daily-pipeline/daily" in doc["deployments"]
    assert "process work pool" not in proc.stdout + proc.stderr
    assert "Successfully created/updated" not in proc.stdout + proc.stderr
