"""A minimal flow to prove the server and workers run flows (S8, S9)."""

from __future__ import annotations

import os
import socket

from prefect import flow, task


@task(retries=1, retry_delay_seconds=1)
def greet(name: str) -> str:
    return f"hello {name} from pid {os.getpid()} on {socket.gethostname()}"


@flow(name="finks-hello")
def hello_flow(name: str = "finks") -> str:
    return greet(name)
