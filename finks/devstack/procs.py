"""Background processes we own: PID records, ports, start and stop.

A PID file alone cannot prove a process is ours (PIDs are reused), so each
record also keeps the process's start time; a live PID with another start
time is treated as a stale record, never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Background shells start children with SIGINT ignored; Prefect's worker turns
# SIGTERM into SIGINT, so without this reset one SIGTERM would not stop it.
# Same effect as `env --default-signal=INT`, without needing coreutils >= 8.31;
# exec keeps the PID, so the record still names the service itself.
_SIGNAL_RESET = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
]
LOG_ROTATE_BYTES = 10_000_000
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class PidRecord:
    name: str
    pid: int
    create_time: float
    port: int | None
    started_at: float
    command: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> PidRecord | None:
        try:
            raw = json.loads(path.read_text())
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def alive(self) -> bool:
        """True when the recorded process still runs (same PID and start time)."""
        import psutil

        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            if abs(proc.create_time() - self.create_time) < 1.0:
                return True
            # psutil dates a process from the boot time, which moves when the wall clock is stepped
            # (a resumed VM syncing its clock): the same process then seems to start seconds later.
            # Its command line still tells it from another program given the PID since.
            return proc.cmdline() == self.command
        except psutil.Error:
            return False


def spawn(name: str, command: list[str], env: dict[str, str], log: Path, cwd: Path,
          port: int | None, extra: dict[str, Any] | None = None) -> PidRecord:
    """Start a detached process (own session, so it outlives the caller) logging to *log*."""
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists() and log.stat().st_size > LOG_ROTATE_BYTES:
        log.replace(log.with_suffix(".log.1"))
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {name}: {' '.join(command)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            _SIGNAL_RESET + command, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True,
        )
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        create_time = time.time()
    # Keep the handle so the interpreter does not warn about a running child at exit;
    # the process is tracked by its PID record from here on.
    _CHILDREN[proc.pid] = proc
    return PidRecord(name, proc.pid, create_time, port, time.time(), command, extra or {})


def _signal_group(pid: int, sig: int) -> None:
    try:
        # Each service leads its own session, so its group id is its PID; the
        # group takes any children (e.g. flow runs of the worker) with it.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(record: PidRecord, timeout: float = 30.0) -> str:
    """SIGTERM our process group, wait, then SIGKILL; returns how it ended."""
    import psutil

    if not record.alive():
        return "not running"
    _signal_group(record.pid, signal.SIGTERM)
    try:
        proc = psutil.Process(record.pid)
        proc.wait(timeout=timeout)
        _reap(record.pid)
        return "stopped"
    except psutil.TimeoutExpired:
        _signal_group(record.pid, signal.SIGKILL)
        try:
            psutil.Process(record.pid).wait(timeout=10)
        except psutil.Error:
            pass
        _reap(record.pid)
        return "killed"
    except psutil.NoSuchProcess:
        return "stopped"


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.poll()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def listener(port: int) -> Any:
    """The psutil.Process listening on *port*, or None."""
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return psutil.Process(conn.pid)
            except psutil.Error:
                return None
    return None


def port_owner(port: int) -> str | None:
    """'pid 123 (python -m http.server)' for the listener on *port*, when visible to us."""
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "a process of another user"
            try:
                cmd = " ".join(psutil.Process(conn.pid).cmdline())[:120]
            except psutil.Error:
                cmd = "?"
            return f"pid {conn.pid} ({cmd})"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
