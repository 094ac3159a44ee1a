"""A preloaded parent for check processes: the heavy libraries are imported once per run, not per check.

Every Python check runs in a process of its own (``finks._checkworker``), and
most of them import Prefect and dbt: about 6 s of CPU per process on these
machines, paid again by every check of a run. A run therefore starts one
*zygote* per repository root — ``python -m finks.zygote`` — that imports the
third-party libraries named in :data:`PRELOAD` (never our own modules: a check
rooted elsewhere must import that root's code) and then forks a child per
check. The child is what a fresh process would be, minus the imports:

- its own session (``os.setsid``), so a timeout kills its whole group;
- the check's environment, working directory and ``sys.path``, set before any
  of our code runs; Prefect's settings are re-read from that environment
  (Prefect snapshots them at import);
- stdout and stderr into files the runner reads when it ends; stdin closed.

The protocol is one JSON line per message: the runner writes ``{"id", "args",
"env", "cwd", "out", "err"}`` to the zygote's stdin; the zygote answers
``{"started": id, "pid": n}`` and, when it reaps the child,
``{"exited": n, "code": c}`` on a pipe of its own, named by its one argument (its stdout is pointed at
its stderr, so nothing an imported library prints can corrupt the protocol).
It reaps children on SIGCHLD through a wake-up pipe: no threads in a process
that forks. When the runner goes away (stdin at EOF) it kills what still runs.

If the zygote cannot start or dies, :meth:`Zygote.run` returns ``None`` and the
check runs as a plain process (``finks.checks``). ``FINKS_CHECK_PRELOAD=0``
turns it off.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

# Third-party only, heaviest first; a module that fails to import is simply not preloaded.
PRELOAD = ("prefect", "prefect.client.orchestration", "prefect.flows", "dbt.cli.main", "duckdb", "pyarrow.parquet",
           "pydantic_settings", "httpx", "boto3", "botocore.session")
START_TIMEOUT_S = 120.0


def enabled() -> bool:
    return os.environ.get("FINKS_CHECK_PRELOAD", "1").strip().lower() not in ("0", "false", "no", "off")


class Zygote:
    """The runner's side: start the preloaded parent, hand it checks, collect their results."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self._proc: subprocess.Popen[str] | None = None
        self._broken = False
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._next = 0
        self._pids: dict[int, int] = {}  # request id -> pid
        self._codes: dict[int, int] = {}  # pid -> exit code
        self._ready: dict[str, Any] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="finks-zygote-")

    # ---- lifecycle --------------------------------------------------------------------
    def _start(self) -> bool:
        if self._proc is not None or self._broken:
            return not self._broken
        r, w = os.pipe()  # the zygote answers on a pipe of its own
        self._answers = os.fdopen(r, "r", encoding="utf-8")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "finks.zygote", str(w)], cwd=self.root, env=self.env, text=True, bufsize=1,
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(w,), start_new_session=True)
        except OSError:
            self._broken = True
            return False
        finally:
            os.close(w)  # the zygote holds its own copy: EOF when it exits
        threading.Thread(target=self._read, name="finks-zygote-reader", daemon=True).start()
        with self._cond:
            self._cond.wait_for(lambda: self._ready is not None or self._broken, timeout=START_TIMEOUT_S)
        if self._ready is None:
            self._broken = True
        return not self._broken

    def _read(self) -> None:
        for line in self._answers:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if "ready" in msg:
                    self._ready = msg
                elif "started" in msg:
                    self._pids[int(msg["started"])] = int(msg["pid"])
                elif "exited" in msg:
                    self._codes[int(msg["exited"])] = int(msg["code"])
                self._cond.notify_all()
        with self._cond:
            self._broken = True
            self._cond.notify_all()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
        self._tmp.cleanup()

    # ---- one check -----------------------------------------------------------------
    def run(self, args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[int | None, str, str] | None:
        """Run ``python -m finks._checkworker ARGS`` forked from the zygote; None: run it the plain way."""
        with self._lock:
            if not self._start():
                return None
            self._next += 1
            rid = self._next
            out, err = Path(self._tmp.name, f"{rid}.out"), Path(self._tmp.name, f"{rid}.err")
            request = {"id": rid, "args": args, "env": env, "cwd": str(cwd), "out": str(out), "err": str(err)}
            try:
                assert self._proc is not None and self._proc.stdin is not None
                self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.flush()
            except (OSError, ValueError):
                self._broken = True
                return None
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._cond.wait_for(lambda: rid in self._pids or self._broken, timeout=START_TIMEOUT_S):
                return None
            if rid not in self._pids:
                return None
            pid = self._pids.pop(rid)
            finished = self._cond.wait_for(lambda: pid in self._codes or self._broken,
                                           timeout=max(0.0, deadline - time.monotonic()))
        if pid in self._codes:
            with self._cond:
                code = self._codes.pop(pid)
            return code, _read(out), _read(err)
        _kill_group(pid)  # timed out (or the zygote died under it: nobody can reap it now)
        with self._cond:
            self._cond.wait_for(lambda: pid in self._codes or self._broken, timeout=10)
            self._codes.pop(pid, None)
        if finished:  # the zygote died while the check ran: what it printed decides
            return 1, _read(out), _read(err) + "\n[finks: the check's preloaded parent process died]"
        return None, _read(out), _read(err)


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(2 if sig == signal.SIGTERM else 0)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# ---- the zygote's side -------------------------------------------------------------------
def _child(req: dict[str, Any]) -> None:
    """In the forked child: become the check's fresh process, run the worker, exit."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            new = os.open(path, flags, 0o600)
            os.dup2(new, fd)
            os.close(new)
        os.closerange(3, 256)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 lives as long as the process
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(req["env"])
        os.chdir(req["cwd"])
        extra = [p for p in req["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [p for p in extra if p not in sys.path] + [p for p in sys.path if p not in ("", ".")]
        if "prefect.context" in sys.modules:  # Prefect read its settings at import, from the zygote's env
            sys.modules["prefect.context"].refresh_global_settings_context()
        import runpy

        sys.argv = ["finks._checkworker", *req["args"]]
        runpy.run_module("finks._checkworker", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return into the zygote
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - exiting anyway
                pass
        os._exit(code)


def serve(answers: IO[str]) -> int:
    import importlib

    loaded, failed = [], []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # noqa: BLE001 - not preloaded: the check imports it itself
            failed.append(f"{name}: {exc}")
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()

    def say(msg: dict[str, Any]) -> None:
        answers.write(json.dumps(msg) + "\n")
        answers.flush()

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)
            say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    say({"ready": True, "pid": os.getpid(), "preloaded": loaded, "failed": failed})
    buffer = b""
    while True:
        try:
            readable, _, _ = select.select([0, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            reap()
        if 0 in readable:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(req)
                children.add(pid)
                say({"started": req["id"], "pid": pid})
            reap()
    for pid in list(children):  # the runner is gone: nobody will read what these print
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return 0


if __name__ == "__main__":
    answers = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    os.dup2(2, 1)  # what a library prints goes to stderr, never into the protocol
    sys.exit(serve(answers))
