"""A moto server of one's own: a child process on a free port (moto's state is per process).

Below everything else in validation (it imports only the standard library), so that the
seeding of a deployed stack and a check that wants CloudWatch to itself can both use it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """In the child, on Linux: take SIGTERM when the process that started it dies, however it dies
    (a killed pytest runs no teardown; its emulators must not outlive it)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the context manager's exit still stops it


@contextmanager
def moto_server(port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """A moto server of its own (a child process: moto's state is per process), on a free port;
    yields its URL and stops it on exit."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    # AWS managed policies (AmazonECSTaskExecutionRolePolicy, …) exist only when moto loads them.
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server on port {port} did not start (exit {proc.poll()})") from None
                time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
