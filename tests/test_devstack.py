"""finks.devstack without a running stack: errors, idle commands, PostgreSQL provisioning."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from core import lake
from core.errors import ConfigError, ServiceError, UsageError
from core.settings import Settings, load_settings
from finks.devstack import down, status, up
from finks.devstack.cli import app
from finks.devstack.procs import free_port, port_in_use


@pytest.fixture
def idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a stack that is not running, on free ports, state in tmp_path, Prefect on
    SQLite (not "auto": that would depend on whether this machine runs a PostgreSQL)."""
    monkeypatch.delenv("FINKS_DATABASE_URL", raising=False)
    env = {"FINKS_STATE_DIR": str(tmp_path / "state"), "FINKS_PREFECT_PORT": str(free_port()),
           "FINKS_MOTO_PORT": str(free_port()), "FINKS_PREFECT_DATABASE": "sqlite"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings(env="local")


@pytest.fixture
def squatter() -> Iterator[tuple[int, int]]:
    """A foreign process listening on a free port: (port, pid)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port, proc.pid
    proc.terminate()
    proc.wait(10)


def test_down_with_nothing_running_reports_it_and_succeeds(idle: Settings) -> None:
    assert down(idle) == {"worker": "not running", "prefect": "not running", "moto": "not running"}
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 0 and "prefect: not running" in result.stdout


def test_status_json_of_an_idle_stack_lists_every_service_stopped(idle: Settings) -> None:
    result = CliRunner().invoke(app, ["status", "--json"])
    data = json.loads(result.stdout)
    assert data["schema"] == "finks.dev-status/v1"
    assert data["healthy"] is False and data["prefect_backend"] == "sqlite"
    assert data["emulator_persistent"] is False
    assert {s["name"]: s["state"] for s in data["services"]} == {
        "moto": "stopped", "prefect": "stopped", "worker": "stopped"}


def test_port_conflict_names_the_port_and_the_process(idle: Settings, squatter: tuple[int, int]) -> None:
    port, pid = squatter
    taken = idle.model_copy(update={"moto_port": port})
    with pytest.raises(ConfigError) as err:
        up(taken, ["moto"])
    message = str(err.value)
    assert f"port {port} for moto is already in use by pid {pid}" in message
    assert "http.server" in message and "FINKS_MOTO_PORT" in message
    assert status(taken).services["moto"].state == "stopped"


def test_conflict_on_a_later_service_stops_what_this_up_started(
    idle: Settings, squatter: tuple[int, int]
) -> None:
    port, _ = squatter
    taken = idle.model_copy(update={"prefect_port": port})
    with pytest.raises(ConfigError, match=f"port {port} for prefect"):
        up(taken)
    assert status(taken).services["moto"].state == "stopped"
    assert not port_in_use(taken.moto_port)


def test_a_port_in_use_is_a_configuration_error_exit_2_naming_port_owner_and_variable(
    idle: Settings, squatter: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from finks.cli import app as finks_app

    port, pid = squatter
    monkeypatch.setenv("FINKS_PREFECT_PORT", str(port))
    result = CliRunner().invoke(finks_app, ["dev", "up"])
    assert result.exit_code == 2, result.output
    assert f"finks: error: port {port} for prefect is already in use by pid {pid} (" in result.stderr
    assert "http.server" in result.stderr
    assert "stop that process or choose another port (FINKS_PREFECT_PORT)" in result.stderr
    assert {s.state for s in status(load_settings(env="local")).services.values()} == {"stopped"}


def test_stale_pid_file_is_not_mistaken_for_a_running_service(idle: Settings) -> None:
    idle.dev_dir.mkdir(parents=True)
    # PID 1 exists but started long before this record claims: not ours.
    (idle.dev_dir / "moto.pid").write_text(json.dumps({
        "name": "moto", "pid": 1, "create_time": time.time(), "port": idle.moto_port,
        "started_at": time.time(), "command": ["moto"], "extra": {}}))
    assert status(idle).services["moto"].state == "stale"
    assert down(idle)["moto"] == "not running"
    assert not (idle.dev_dir / "moto.pid").exists()


def test_reset_refuses_without_confirmation_when_not_interactive(idle: Settings) -> None:
    result = CliRunner().invoke(app, ["reset"])
    assert result.exit_code != 0 and isinstance(result.exception, UsageError)
    assert "--yes" in str(result.exception)


def test_reset_yes_wipes_prefect_home_logs_and_lake(idle: Settings) -> None:
    for path in (idle.prefect_home, idle.dev_dir, Path(lake.zone_uri(idle, "bronze"))):
        path.mkdir(parents=True, exist_ok=True)
        (path / "marker").write_text("x")
    result = CliRunner().invoke(app, ["reset", "--yes"])
    assert result.exit_code == 0, result.output
    assert not idle.prefect_home.exists() and not Path(lake.lake_root(idle)).exists()


def test_logs_of_an_unknown_service_says_which_exist(idle: Settings) -> None:
    result = CliRunner().invoke(app, ["logs", "redis"])
    assert isinstance(result.exception, UsageError)
    assert "moto, prefect, worker" in str(result.exception)


def test_unknown_service_in_up_is_a_usage_error(idle: Settings) -> None:
    with pytest.raises(UsageError, match="unknown service"):
        up(idle, ["redis"])


@pytest.mark.services
def test_missing_postgres_role_and_database_are_created_then_dropped() -> None:
    import asyncio

    import asyncpg

    from finks.devstack.database import drop_database, ensure_database, postgres_available

    if not postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"finks_t_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{name}:pw@127.0.0.1:5432/{name}"
    try:
        assert ensure_database(url) == [f"role {name}", f"database {name}"]
        assert ensure_database(url) == []  # idempotent

        async def owner() -> str:
            conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
            try:
                return str(await conn.fetchval(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name))
            finally:
                await conn.close()

        assert asyncio.run(owner()) == name
    finally:
        drop_database(url, drop_role=True)


def test_unreachable_postgres_is_a_clear_error_before_anything_starts(idle: Settings) -> None:
    dead = f"postgresql://finks@127.0.0.1:{free_port()}/finks_prefect"
    settings = idle.model_copy(update={"database_url": SecretStr(dead)})
    with pytest.raises(ServiceError, match="cannot reach PostgreSQL at 127.0.0.1") as err:
        up(settings)
    assert "unset FINKS_DATABASE_URL" in str(err.value)
    assert {s.state for s in status(settings).services.values()} == {"stopped"}


def test_services_start_with_sigint_restored_even_when_the_caller_ignores_it(tmp_path: Path) -> None:
    import signal

    from finks.devstack.procs import spawn

    probe = [sys.executable, "-c", "import signal; print('SIGINT', signal.getsignal(signal.SIGINT))"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        rec = spawn("probe", probe, dict(__import__("os").environ), tmp_path / "probe.log", tmp_path, None)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 20
    while rec.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "SIGINT <built-in function default_int_handler>" in (tmp_path / "probe.log").read_text()


def test_the_stack_and_its_bootstrap_refuse_aws_environments(idle: Settings) -> None:
    from core.errors import ConfigError
    from finks.devstack import bootstrap_data_plane

    prod = load_settings(env="prod")
    with pytest.raises(UsageError, match="only for env 'local'"):
        up(prod)
    with pytest.raises(ConfigError, match="refusing to bootstrap AWS"):
        bootstrap_data_plane(prod)


def test_a_service_stays_ours_when_the_wall_clock_is_stepped_but_not_when_its_pid_is_reused(tmp_path: Path) -> None:
    """A resumed VM steps its clock: psutil then dates the running service seconds later.
    The record still names it (same command); another program given the PID is not ours."""
    import dataclasses

    from finks.devstack.procs import spawn, stop

    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    rec = spawn("sleeper", command, dict(__import__("os").environ), tmp_path / "sleeper.log", tmp_path, None)
    try:
        import psutil

        deadline = time.monotonic() + 20  # spawn execs the command from a signal-resetting launcher
        while psutil.Process(rec.pid).cmdline() != command and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec.alive()
        stepped = dataclasses.replace(rec, create_time=rec.create_time - 15)
        assert stepped.alive(), "a clock step made the running service look dead"
        reused = dataclasses.replace(stepped, command=[sys.executable, "-c", "something else"])
        assert not reused.alive(), "another program on the recorded PID was taken for the service"
    finally:
        stop(rec, timeout=10)
    assert not rec.alive()


def test_the_local_worker_asks_for_scheduled_runs_every_two_seconds_unless_told_otherwise(
        idle: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from finks.devstack.services import spec

    monkeypatch.delenv("PREFECT_WORKER_QUERY_SECONDS", raising=False)
    assert spec("worker", idle).env["PREFECT_WORKER_QUERY_SECONDS"] == "2"
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "7")
    assert spec("worker", idle).env["PREFECT_WORKER_QUERY_SECONDS"] == "7"
