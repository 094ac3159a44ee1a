"""Bronze→silver on AWS Glue: start a job run, poll it with a deadline.

prefect-aws's GlueJobBlock waits without a deadline and builds its client
without the credentials' endpoint, so we drive Glue through boto3 with the
same endpoint as every other AWS call (the moto server locally).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import lake
from flows.errors import GlueJobFailed, GlueJobTimeout

if TYPE_CHECKING:
    from core.settings import Settings

TERMINAL_OK = {"SUCCEEDED"}
TERMINAL_BAD = {"FAILED", "STOPPED", "ERROR", "TIMEOUT", "EXPIRED"}


def job_name(settings: Settings) -> str:
    """The Glue job the infrastructure program creates (S13)."""
    return f"{settings.project}-{settings.env}-bronze-to-silver"


@dataclass
class GlueRun:
    job_name: str
    run_id: str
    state: str = "STARTING"
    states: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"job_name": self.job_name, "run_id": self.run_id, "state": self.state,
                "states": self.states, "seconds": round(self.seconds, 2), "error": self.error}


def job_arguments(settings: Settings, date: dt.date, datasets: list[str] | None) -> dict[str, str]:
    args = {
        "--DATE": date.isoformat(),
        "--SOURCE": lake.zone_uri(settings, "bronze"),
        "--TARGET": lake.zone_uri(settings, "silver"),
    }
    if datasets:
        args["--DATASETS"] = ",".join(datasets)
    return args


def run_glue_job(
    glue: Any,
    name: str,
    arguments: dict[str, str],
    *,
    timeout_s: float,
    poll_s: float = 15.0,
    on_state: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> GlueRun:
    """Start `name` and wait for a terminal state; raise GlueJobFailed/GlueJobTimeout.

    On our deadline the run is stopped too, so a hung job does not keep
    billing DPUs after the flow gave up on it.
    """
    started = clock()
    # Glue's own timeout is in minutes; ours is the authority, Glue's a backstop.
    glue_timeout_min = max(1, int(timeout_s // 60) + 1)
    run_id = glue.start_job_run(JobName=name, Arguments=arguments, Timeout=glue_timeout_min)["JobRunId"]
    run = GlueRun(name, run_id)
    while True:
        info = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
        state = info["JobRunState"]
        if not run.states or run.states[-1] != state:
            run.states.append(state)
            if on_state:
                on_state(state)
        run.state, run.seconds = state, clock() - started
        if state in TERMINAL_OK:
            return run
        if state in TERMINAL_BAD:
            run.error = info.get("ErrorMessage") or "no error message from Glue"
            raise GlueJobFailed(
                f"Glue job {name} run {run_id} ended {state} after {run.seconds:.0f}s: {run.error}",
                hint="see the run's logs in CloudWatch (/aws-glue/jobs) and rerun the date",
            )
        if run.seconds >= timeout_s:
            try:
                glue.batch_stop_job_run(JobName=name, JobRunIds=[run_id])
            except Exception:  # noqa: BLE001, S110 - the timeout is the error worth reporting
                pass
            raise GlueJobTimeout(
                f"Glue job {name} run {run_id} still {state} after {run.seconds:.0f}s "
                f"(timeout {timeout_s:.0f}s); the run was asked to stop",
                hint="check the job in the Glue console; raise glue_timeout_s if the date is unusually large",
            )
        time.sleep(max(0.05, min(poll_s, timeout_s - run.seconds)))


def glue_client(settings: Settings) -> Any:
    """Glue client from the AWS credentials block when it exists, else from the settings."""
    try:
        from flows.blocks import load_aws_credentials

        creds = load_aws_credentials(settings)
    except Exception:  # noqa: BLE001 - blocks are optional; settings carry the endpoint too
        creds = None
    if creds is not None:
        return creds.get_client("glue")
    from core.aws import client as aws_client

    return aws_client(settings, "glue")
