"""`finks dev up | down | status | reset`: the local stack as background processes.

Layout under ``settings.dev_dir`` (.finks/dev/): ``<service>.pid`` (a JSON
record with the PID and its start time) and ``<service>.log``. Prefect keeps
its home (SQLite database, UI assets) in ``settings.prefect_home``, so its
history survives down/up; the moto server keeps nothing, so `up`
re-bootstraps the data plane every time.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import lake
from core.errors import ConfigError, ServiceError, UsageError
from finks.devstack import procs
from finks.devstack.services import ALL_SERVICES, DEFAULT_SERVICES, REQUIRES, spec

if TYPE_CHECKING:
    from core.settings import Settings

STATUS_SCHEMA = "finks.dev.status/1"


@dataclass
class ServiceStatus:
    name: str
    state: str  # running | starting | stopped | stale
    healthy: bool
    url: str | None = None
    port: int | None = None
    pid: int | None = None
    uptime_s: float | None = None
    log: str | None = None
    detail: str = ""
    action: str = ""  # what the last `up`/`down` did: started, already running, stopped


@dataclass
class StackStatus:
    services: dict[str, ServiceStatus]
    prefect_backend: str
    state_dir: str
    bootstrap: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float | None = None

    @property
    def healthy(self) -> bool:
        running = [s for s in self.services.values() if s.state != "stopped"]
        return bool(running) and all(s.healthy for s in running)

    def healthy_services(self, names: Sequence[str]) -> bool:
        return all(self.services[n].healthy for n in names if n in self.services)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": STATUS_SCHEMA,
            "healthy": self.healthy,
            "prefect_backend": self.prefect_backend,
            "emulator_persistent": False,
            "state_dir": self.state_dir,
            "services": [asdict(s) for s in self.services.values()],
            "bootstrap": self.bootstrap,
            "elapsed_s": self.elapsed_s,
        }


def _pid_path(settings: Settings, name: str) -> Path:
    return settings.dev_dir / f"{name}.pid"


def log_path(settings: Settings, name: str) -> Path:
    if name not in ALL_SERVICES:
        raise UsageError(f"unknown service {name!r}", hint=f"use one of {', '.join(ALL_SERVICES)}")
    return settings.dev_dir / f"{name}.log"


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """Serialise up/down/reset: parallel checks may all call `up` at once."""
    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.dev_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _record(settings: Settings, name: str) -> procs.PidRecord | None:
    return procs.PidRecord.load(_pid_path(settings, name))


def _service_status(settings: Settings, name: str) -> ServiceStatus:
    s = spec(name, settings)
    rec = _record(settings, name)
    log = str(log_path(settings, name))
    if rec is None:
        return ServiceStatus(name, "stopped", False, s.url, s.port, log=log)
    if not rec.alive():
        return ServiceStatus(name, "stale", False, s.url, s.port, rec.pid, log=log,
                             detail="PID file left by a process that is gone")
    healthy = s.healthy()
    return ServiceStatus(name, "running" if healthy else "starting", healthy, s.url, s.port,
                         rec.pid, round(time.time() - rec.create_time, 1), log)


def status(settings: Settings) -> StackStatus:
    services = {name: _service_status(settings, name) for name in ALL_SERVICES}
    return StackStatus(services, _running_backend(settings), str(settings.home))


def _running_backend(settings: Settings) -> str:
    """The database of the Prefect server that really runs (recorded when it started),
    else the one a start would use now."""
    rec = _record(settings, "prefect")
    if rec is not None and rec.alive() and rec.extra.get("backend"):
        return str(rec.extra["backend"])
    return settings.database_kind


def _expand(services: Sequence[str] | None) -> list[str]:
    wanted = set(services or DEFAULT_SERVICES)
    unknown = wanted - set(ALL_SERVICES)
    if unknown:
        raise UsageError(f"unknown service(s) {', '.join(sorted(unknown))}",
                         hint=f"use {', '.join(ALL_SERVICES)}")
    for name in list(wanted):
        wanted.update(REQUIRES.get(name, ()))
    if "prefect" in wanted or "worker" in wanted:
        wanted.add("moto")  # flows we run talk to S3
    return [n for n in ALL_SERVICES if n in wanted]


def _check_port(name: str, port: int | None) -> None:
    # A port someone else holds is this machine's configuration, not a service failing:
    # exit 2 (ConfigError), like any other setting that cannot work here.
    if port is not None and procs.port_in_use(port):
        owner = procs.port_owner(port)
        who = f" by {owner}" if owner else ""
        raise ConfigError(
            f"port {port} for {name} is already in use{who}",
            hint=f"stop that process or choose another port (FINKS_{name.upper()}_PORT)",
        )


def _ensure_prefect_database(settings: Settings) -> None:
    if settings.database_kind == "postgresql" and settings.database_url:
        from finks.devstack.database import ensure_database

        ensure_database(settings.database_url.get_secret_value())


def _adopt(settings: Settings, name: str, command: list[str], port: int | None) -> procs.PidRecord | None:
    """Our own service already listening on its port, but its PID file lost (overwritten or
    removed by another process): take it back rather than refuse the port it holds."""
    if port is None or not procs.port_in_use(port):
        return None
    proc = procs.listener(port)
    try:
        if proc is None or proc.cmdline() != command:
            return None
        rec = procs.PidRecord(name, proc.pid, proc.create_time(), port, proc.create_time(), command,
                              {"backend": settings.database_kind if name == "prefect" else None})
    except Exception:  # psutil.Error: the process went away meanwhile
        return None
    rec.save(_pid_path(settings, name))
    return rec


def _start(settings: Settings, name: str) -> procs.PidRecord:
    s = spec(name, settings)
    adopted = _adopt(settings, name, s.command, s.port)
    if adopted is not None:
        return adopted
    _check_port(name, s.port)
    rec = procs.spawn(name, s.command, s.env, log_path(settings, name), settings.home, s.port,
                      {"backend": settings.database_kind if name == "prefect" else None})
    rec.save(_pid_path(settings, name))
    return rec


def _wait_healthy(settings: Settings, name: str, rec: procs.PidRecord) -> None:
    s = spec(name, settings)
    deadline = time.monotonic() + s.start_timeout
    while time.monotonic() < deadline:
        if s.healthy():
            return
        if not rec.alive():
            _pid_path(settings, name).unlink(missing_ok=True)
            raise ServiceError(
                f"{name} exited during startup; last log lines:\n"
                + procs.tail(log_path(settings, name)),
                hint=f"see {log_path(settings, name)}",
            )
        time.sleep(0.5)
    procs.stop(rec)
    _pid_path(settings, name).unlink(missing_ok=True)
    raise ServiceError(
        f"{name} did not become healthy within {s.start_timeout:.0f}s; last log lines:\n"
        + procs.tail(log_path(settings, name)),
        hint=f"see {log_path(settings, name)}"
        + ("; raise FINKS_PREFECT_START_TIMEOUT on a busy machine" if name == "prefect" else ""),
    )


def up(settings: Settings, services: Sequence[str] | None = None, bootstrap: bool = True) -> StackStatus:
    """Start what is not running (idempotent), wait until healthy, bootstrap the emulator."""
    if not settings.is_local:
        raise UsageError(f"the local stack runs only for env 'local', not {settings.env!r}",
                         hint="AWS environments are deployed with 'finks infra'")
    started_at = time.monotonic()
    names = _expand(services)
    actions: dict[str, str] = {}
    with _locked(settings):
        settings.prefect_home.mkdir(parents=True, exist_ok=True)
        # Refuse before starting anything when a port is taken by someone else.
        to_start = [n for n in names if not ((rec := _record(settings, n)) and rec.alive())]
        for name in list(to_start):
            s = spec(name, settings)
            if _adopt(settings, name, s.command, s.port) is not None:
                to_start.remove(name)  # ours, already up: its PID file is written again
                continue
            _check_port(name, s.port)
        if "prefect" in to_start:
            _ensure_prefect_database(settings)
        pending: dict[str, procs.PidRecord] = {}
        # The worker needs a live API, so it starts in a second wave.
        for wave in ([n for n in names if n != "worker"], [n for n in names if n == "worker"]):
            for name in wave:
                rec = _record(settings, name)
                if rec is not None and rec.alive():
                    pending[name] = rec
                    actions[name] = "already running"
                    continue
                _pid_path(settings, name).unlink(missing_ok=True)
                try:
                    pending[name] = _start(settings, name)
                except (ConfigError, ServiceError):
                    _stop_started(settings, pending, actions)
                    raise
                actions[name] = "started"
            for name in wave:
                try:
                    _wait_healthy(settings, name, pending[name])
                except ServiceError:
                    _stop_started(settings, pending, actions)
                    raise
        report: dict[str, Any] = {}
        if bootstrap and "moto" in names:
            from finks.devstack.bootstrap import bootstrap_data_plane as run_bootstrap

            report = run_bootstrap(settings)
    result = status(settings)
    result.bootstrap = report
    result.elapsed_s = round(time.monotonic() - started_at, 2)
    for name, action in actions.items():
        result.services[name].action = action
    return result


def _stop_started(settings: Settings, pending: dict[str, procs.PidRecord], actions: dict[str, str]) -> None:
    """On a failed `up`, stop what this call started (never what was already running)."""
    for name, rec in pending.items():
        if actions.get(name) == "started":
            procs.stop(rec)
            _pid_path(settings, name).unlink(missing_ok=True)


def down(settings: Settings, services: Sequence[str] | None = None) -> dict[str, str]:
    """Stop our processes (by PID record, worker first) and wait for them; returns what happened."""
    names = list(services or ALL_SERVICES)
    outcome: dict[str, str] = {}
    with _locked(settings):
        for name in reversed(ALL_SERVICES):
            if name not in names:
                continue
            rec = _record(settings, name)
            if rec is None:
                outcome[name] = "not running"
                continue
            outcome[name] = procs.stop(rec)
            _pid_path(settings, name).unlink(missing_ok=True)
    return outcome


def reset(settings: Settings) -> list[str]:
    """Stop everything and wipe local dev state: Prefect history, logs, the local lake."""
    down(settings)
    removed: list[str] = []
    if settings.database_kind == "postgresql" and settings.database_url:
        from finks.devstack.database import drop_database

        if drop_database(settings.database_url.get_secret_value()):
            removed.append("prefect database (PostgreSQL)")
    targets = [settings.prefect_home, settings.dev_dir]
    if not lake.lake_root(settings).startswith("s3://"):
        targets.append(Path(lake.lake_root(settings)))
    for path in targets:
        if path.exists():
            shutil.rmtree(path)
            removed.append(str(path))
    return removed


def logs(settings: Settings, name: str, lines: int = 50) -> str:
    path = log_path(settings, name)
    if not path.exists():
        raise UsageError(f"no log for {name} at {path}", hint="start it with 'finks dev up'")
    return procs.tail(path, lines)
