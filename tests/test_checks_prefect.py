"""Every Prefect check (S8, S9, S10) fails on a broken fixture, against the session's real stack.

The fixtures break what the check looks at, never the check: settings that name a
Prefect API without its UI (a local HTTP server), a database one migration
behind or on SQLite, a restart with a grace period too short for the server to
come back, a project whose hello flow fails (run from a repository copy), a block missing on the server.
Each test puts back what it changed on the shared stack.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from finks.checks import CheckContext, CheckFailed
from finks.outcomes import Outcome
from tests.fixtures.checks import ROOT, edit, repo_copy, run_target
from validation import prefect_stack as checks

pytestmark = [pytest.mark.services, pytest.mark.slow]

def _ctx(stack: Settings, tmp_path: Path, root: Path = ROOT) -> CheckContext:
    return CheckContext(env="local", root=root, state_dir=stack.home, work_dir=tmp_path / "work")


@pytest.fixture
def api_without_ui() -> Iterator[str]:
    """An HTTP server that answers Prefect's health endpoint and nothing else (a server with its UI off)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's API
            ok = self.path == "/api/health"
            body = b"true" if ok else b'{"detail":"Not Found"}'
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


# ---- S8 --------------------------------------------------------------------

def test_ui_check_passes_on_the_stack(local_stack: Settings, tmp_path: Path) -> None:
    assert checks.prefect_ui_reachable(_ctx(local_stack, tmp_path)).figures["ui_bytes"] > 0


@pytest.mark.check_fails("validation.prefect_stack:prefect_ui_reachable")
def test_ui_check_fails_when_the_api_serves_no_ui(local_stack: Settings, tmp_path: Path, api_without_ui: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINKS_PREFECT_API_URL", api_without_ui)
    with pytest.raises(CheckFailed, match="Prefect UI/API not healthy") as info:
        checks.prefect_ui_reachable(_ctx(local_stack, tmp_path))
    assert info.value.evidence.figures == {"health": 200, "ui": 404}


@pytest.mark.check_fails("validation.prefect_stack:prefect_ui_reachable")
def test_ui_check_fails_when_nothing_answers(local_stack: Settings, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from finks.devstack.procs import free_port

    monkeypatch.setenv("FINKS_PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    with pytest.raises(CheckFailed, match="does not answer"):
        checks.prefect_ui_reachable(_ctx(local_stack, tmp_path))


@pytest.mark.check_fails("validation.prefect_stack:test_flow_runs")
def test_flow_check_fails_when_the_test_flow_fails(local_stack: Settings, tmp_path: Path) -> None:
    root = repo_copy(tmp_path)
    edit(root / "flows" / "hello.py", '    return f"hello {name}', '    raise RuntimeError(f"no greeting for {name}")\n    return f"hello {name}')

    result = run_target("validation.prefect_stack:test_flow_runs", _ctx(local_stack, tmp_path, root))

    assert result.outcome is Outcome.failed, result.evidence
    assert "ended FAILED" in result.evidence.message


@pytest.mark.check_fails("validation.prefect_stack:database_migrated")
def test_migration_check_fails_one_migration_behind(local_stack: Settings, tmp_path: Path) -> None:
    if local_stack.database_kind != "postgresql":
        pytest.skip("the stack runs on SQLite: the SQLite test below covers the check")
    current = [r["version_num"] for r in checks._pg(local_stack, "select version_num from alembic_version")]
    checks._pg(local_stack, "update alembic_version set version_num = 'a0c5f1e2b3d4'")
    try:
        with pytest.raises(CheckFailed, match=r"database at migration \['a0c5f1e2b3d4'\]"):
            checks.database_migrated(_ctx(local_stack, tmp_path))
    finally:
        checks._pg(local_stack, f"update alembic_version set version_num = '{current[0]}'")
    assert checks.database_migrated(_ctx(local_stack, tmp_path)).figures["revision"] == current[0]


@pytest.mark.check_fails("validation.prefect_stack:database_migrated")
@pytest.mark.check_fails("validation.prefect_stack:server_on_postgresql")
def test_postgresql_checks_fail_when_the_settings_put_prefect_on_sqlite(
        local_stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINKS_DATABASE_URL", raising=False)
    monkeypatch.setenv("FINKS_PREFECT_DATABASE", "sqlite")
    ctx = _ctx(local_stack, tmp_path)
    for check in (checks.database_migrated, checks.server_on_postgresql):
        with pytest.raises(CheckFailed, match="SQLite"):
            check(ctx)


# ---- S10 -------------------------------------------------------------------

def test_blocks_check_passes_once_the_blocks_are_applied(local_stack: Settings, tmp_path: Path) -> None:
    from flows.blocks import apply_blocks

    apply_blocks(local_stack)
    assert "round-trip" in checks.blocks_exist_and_load(_ctx(local_stack, tmp_path)).message


@pytest.mark.check_fails("validation.prefect_stack:blocks_exist_and_load")
def test_blocks_check_fails_when_a_zone_block_is_missing(local_stack: Settings, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect_aws import S3Bucket

    from flows.blocks import apply_blocks, names

    apply_blocks(local_stack)
    silver = names(local_stack)["silver"]
    with get_client(sync_client=True) as client:
        client.delete_block_document(S3Bucket.load(silver)._block_document_id)
    try:
        with pytest.raises(CheckFailed, match=f"block {silver} does not load"):
            checks.blocks_exist_and_load(_ctx(local_stack, tmp_path))
    finally:
        apply_blocks(local_stack)


@pytest.mark.check_fails("validation.prefect_stack:blocks_exist_and_load")
def test_blocks_check_fails_when_a_block_names_another_bucket(local_stack: Settings, tmp_path: Path) -> None:
    from prefect_aws import S3Bucket

    from flows.blocks import apply_blocks, names

    apply_blocks(local_stack)
    bronze = names(local_stack)["bronze"]
    block = S3Bucket.load(bronze)
    block.bucket_name = "someone-elses-bucket"
    block.save(bronze, overwrite=True)
    try:
        with pytest.raises(CheckFailed, match="names bucket someone-elses-bucket"):
            checks.blocks_exist_and_load(_ctx(local_stack, tmp_path))
    finally:
        apply_blocks(local_stack)


# ---- S9 --------------------------------------------------------------------

@pytest.mark.check_fails("validation.prefect_stack:worker_runs_deployment")
def test_worker_check_fails_when_the_deployed_flow_fails(local_stack_worker: Settings, tmp_path: Path) -> None:
    # The deployment's source is the project root: one whose hello flow fails.
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "hello.py").write_text(
        "from prefect import flow\n\n\n"
        '@flow(name="finks-hello")\n'
        'def hello_flow(name: str = "finks") -> str:\n'
        '    raise RuntimeError(f"no greeting for {name}")\n')

    with pytest.raises(CheckFailed, match="ended FAILED"):
        checks.worker_runs_deployment(_ctx(local_stack_worker, tmp_path, root))


# ---- S8: last, it restarts the shared server ---------------------------------

@pytest.mark.check_fails("validation.prefect_stack:server_survives_restart")
def test_restart_check_fails_when_the_server_does_not_come_back_in_time(
        local_stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A start grace period shorter than the server needs (S8's pitfall "health check
    failures"): the restarted server is never healthy."""
    from finks.devstack import status, up

    was = [n for n in ("prefect", "worker") if status(local_stack).services[n].state != "stopped"]
    monkeypatch.setenv("FINKS_PREFECT_START_TIMEOUT", "1")  # no Prefect server starts in 1 s
    try:
        with pytest.raises(CheckFailed, match="did not come back after a restart"):
            checks.server_survives_restart(_ctx(local_stack, tmp_path))
    finally:
        monkeypatch.undo()
        up(local_stack, was, bootstrap=False)
    # The stack is back and runs flows again.
    assert checks.test_flow_runs(_ctx(local_stack, tmp_path)).figures["result"].startswith("hello")
