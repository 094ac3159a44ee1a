"""Checks: the executable form of a success criterion.

A check is one of
  * a Python callable ``module:function`` taking a :class:`CheckContext`;
  * a pytest selection (``tests/test_x.py::test_y`` or ``-m marker``);
  * a shell command;
  * a criterion over the dry plan (``plan: infra.criteria:function``): the
    worker builds the Pulumi program's plan under mocks and calls the
    function with it (and the check's ``args``).

Every check says what kind of evidence a pass gives (its grade): *verified*
(it exercised the real thing) or *planned* (it asserted on the Pulumi program
under mocks). A plan check is always planned; any other check is verified
unless its YAML says ``grade: planned``.

Every check runs in a child process with a timeout, so that a hung or
crashing check cannot take the orchestrator (or its state lock) down with it.

Outcomes: ``passed`` (the criterion was verified), ``failed`` (it ran and the
criterion does not hold), ``error`` (it could not run: import error, timeout,
missing target — "not implemented" is an error, never a pass) and
``skipped`` (not for this environment).

The contract for a Python check::

    from finks.checks import CheckContext, CheckFailed, CheckSkipped, Evidence

    def bucket_is_versioned(ctx: CheckContext) -> Evidence:
        ...
        if not versioned:
            raise CheckFailed("bronze bucket is not versioned", figures={"bucket": name})
        return Evidence("bronze bucket versioned", figures={"bucket": name})

Returning normally means passed; ``CheckFailed`` means failed;
``CheckSkipped`` means skipped; any other exception means error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Re-exported: check authors import them from here.
from finks.outcomes import FAILING, Grade, Outcome

if TYPE_CHECKING:
    from core.settings import Settings
    from finks.models import CheckSpec
    from finks.zygote import Zygote

EXCERPT_CHARS = 2000


@dataclass
class Evidence:
    """What a check saw: a short message, key figures, an output excerpt."""

    message: str
    figures: dict[str, Any] = field(default_factory=dict)
    excerpt: str = ""


class CheckFailed(Exception):
    """The check ran and the criterion does not hold."""

    def __init__(self, message: str, *, figures: dict[str, Any] | None = None, excerpt: str = "") -> None:
        super().__init__(message)
        self.evidence = Evidence(message, figures or {}, excerpt)


class CheckSkipped(Exception):
    """The check does not apply here (environment, missing optional tool)."""


@dataclass
class CheckContext:
    """What a check may know about where it runs."""

    env: str
    root: Path
    state_dir: Path
    work_dir: Path
    session: str = ""
    check_id: str = ""

    @property
    def settings(self) -> Settings:
        from core.settings import load_settings

        return load_settings(env=self.env, root=self.root)

    def to_json(self) -> str:
        return json.dumps({k: str(v) for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> CheckContext:
        raw = json.loads(text)
        return cls(
            env=raw["env"],
            root=Path(raw["root"]),
            state_dir=Path(raw["state_dir"]),
            work_dir=Path(raw["work_dir"]),
            session=raw.get("session", ""),
            check_id=raw.get("check_id", ""),
        )


@dataclass
class CheckResult:
    check_id: str
    outcome: Outcome
    evidence: Evidence
    duration_s: float
    grade: Grade = Grade.verified  # what a pass of this check proves

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check_id,
            "outcome": self.outcome.value,
            "grade": self.grade.value,
            "message": self.evidence.message,
            "figures": self.evidence.figures,
            "excerpt": self.evidence.excerpt,
            "duration_s": round(self.duration_s, 3),
        }


def _tail(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def child_env(ctx: CheckContext) -> dict[str, str]:
    """The environment of a check process: ours, plus the check's context and the project on PYTHONPATH."""
    env = dict(os.environ)
    env.update(
        {
            "FINKS_ENV": ctx.env,
            "FINKS_STATE_DIR": str(ctx.state_dir),
            "FINKS_CHECK_CONTEXT": ctx.to_json(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ctx.root), env.get("PYTHONPATH", "")])),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    return env


def _run_process(argv: list[str], ctx: CheckContext, timeout: float,
                 zygote: Zygote | None = None) -> tuple[int | None, str, str]:
    """Run argv in its own process group; kill the whole group on timeout.

    A check worker is forked from the run's preloaded ``zygote`` when there is one
    (:mod:`finks.zygote`); anything else, or a zygote that cannot, gets a plain process.
    """
    if zygote is not None and argv[1:3] == ["-m", "finks._checkworker"]:
        forked = zygote.run(argv[3:], child_env(ctx), ctx.root, timeout)
        if forked is not None:
            return forked
    proc = subprocess.Popen(
        argv,
        cwd=ctx.root,
        env=child_env(ctx),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = proc.communicate(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out, err = "", ""
        return None, out or "", err or ""


def run_check(spec: CheckSpec, ctx: CheckContext, zygote: Zygote | None = None) -> CheckResult:
    """Run one check and classify its outcome. Never raises for check problems."""
    result = _run_check(spec, ctx, zygote)
    result.grade = spec.evidence_grade
    return result


def _run_check(spec: CheckSpec, ctx: CheckContext, zygote: Zygote | None = None) -> CheckResult:
    if ctx.env not in spec.envs:
        return CheckResult(
            spec.id,
            Outcome.skipped,
            Evidence(f"not for environment {ctx.env!r} (applies to {', '.join(spec.envs)})"),
            0.0,
        )
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if spec.python:
        argv = [sys.executable, "-m", "finks._checkworker", spec.python]
    elif spec.plan:
        argv = [sys.executable, "-m", "finks._checkworker", "--plan", spec.plan,
                json.dumps(list(spec.args)), spec.stack or ""]
    elif spec.pytest:
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *spec.pytest.split()]
    else:
        argv = ["bash", "-c", spec.shell or ""]
    code, out, err = _run_process(argv, ctx, spec.timeout, zygote)
    duration = time.monotonic() - started
    if code is None:
        return CheckResult(
            spec.id,
            Outcome.error,
            Evidence(f"timed out after {spec.timeout:g}s", excerpt=_tail(err or out)),
            duration,
        )
    if spec.python or spec.plan:
        outcome, evidence = _parse_worker_output(code, out, err)
    elif spec.pytest:
        outcome, evidence = _classify_pytest(code, out, err)
    else:
        outcome = Outcome.passed if code == 0 else Outcome.failed
        msg = "command succeeded" if code == 0 else f"command exited with {code}"
        evidence = Evidence(msg, {"exit_code": code}, _tail(out + ("\n" + err if err else "")))
    return CheckResult(spec.id, outcome, evidence, duration)


def _parse_worker_output(code: int, out: str, err: str) -> tuple[Outcome, Evidence]:
    marker = out.rfind(WORKER_MARKER)
    if marker < 0:
        return Outcome.error, Evidence(
            f"check process exited with {code} without a result", excerpt=_tail(err or out)
        )
    payload = json.loads(out[marker + len(WORKER_MARKER) :].strip().splitlines()[0])
    evidence = Evidence(payload["message"], payload.get("figures", {}), payload.get("excerpt", ""))
    if not evidence.excerpt and payload["outcome"] in FAILING:
        evidence.excerpt = _tail(err)
    return Outcome(payload["outcome"]), evidence


def _classify_pytest(code: int, out: str, err: str) -> tuple[Outcome, Evidence]:
    summary = next((ln for ln in reversed(out.strip().splitlines()) if ln.strip()), "")
    excerpt = _tail(out + ("\n" + err if err.strip() else ""))
    if code == 0:
        return Outcome.passed, Evidence(f"pytest: {summary}", {"exit_code": 0}, excerpt)
    if code == 1:
        return Outcome.failed, Evidence(f"pytest: {summary}", {"exit_code": 1}, excerpt)
    if code == 5:
        return Outcome.error, Evidence("pytest collected no tests: not implemented", {"exit_code": 5}, excerpt)
    return Outcome.error, Evidence(f"pytest could not run (exit {code}): {summary}", {"exit_code": code}, excerpt)


WORKER_MARKER = "\n@@finks-check-result@@"
