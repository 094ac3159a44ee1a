"""Checks of the foundation sessions: S0 (preparation), S4 (scaffolding), S20/S22 (docs)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from finks.checks import CheckContext, CheckFailed, CheckSkipped, Evidence

MIN_FREE_GIB = 2.0
MIN_PYTHON = (3, 11)


def _aws_only(ctx: CheckContext, what: str) -> None:
    if ctx.env == "local":
        raise CheckSkipped(f"{what} is for the AWS environments; local runs on the emulator and the FMP simulator")


# ---- S0: AWS environments ------------------------------------------------------
def aws_credentials_work(ctx: CheckContext) -> Evidence:
    """The plan's `aws s3 ls`: credentials resolve and STS answers."""
    import boto3
    import botocore.exceptions

    _aws_only(ctx, "AWS access")
    session = boto3.session.Session(region_name=ctx.settings.region)
    if session.get_credentials() is None:
        raise CheckFailed(
            "no AWS credentials found",
            figures={"region": ctx.settings.region},
            excerpt="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (plan, Session 0 step 1)",
        )
    try:
        identity = session.client("sts").get_caller_identity()
        session.client("s3").list_buckets()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise CheckFailed(f"AWS rejected the credentials: {exc}") from None
    return Evidence("AWS credentials work (sts, s3 list)", figures={"account": identity["Account"]})


def pulumi_cli_available(ctx: CheckContext) -> Evidence:
    """The plan's `pulumi version`: the CLI runs and names a version."""
    _aws_only(ctx, "the Pulumi CLI")
    exe = shutil.which("pulumi")
    if exe is None:
        raise CheckFailed("the Pulumi CLI is not installed", excerpt="install it: https://www.pulumi.com/docs/install/")
    out = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise CheckFailed(f"'pulumi version' exited {out.returncode}", excerpt=out.stderr[-500:])
    version = out.stdout.strip()
    if not re.fullmatch(r"v?\d+\.\d+\.\d+\S*", version):
        raise CheckFailed(f"'pulumi version' printed no version ({version[:80] or 'nothing'})", figures={"path": exe})
    return Evidence(f"pulumi {version}", figures={"path": exe, "version": version})


def fmp_key_present(ctx: CheckContext) -> Evidence:
    _aws_only(ctx, "the FMP API key")
    key = ctx.settings.fmp_api_key
    if key is None or not key.get_secret_value().strip():
        raise CheckFailed("FMP_API_KEY is not set", excerpt="export FMP_API_KEY=… (plan, Session 0 step 5)")
    value = key.get_secret_value()
    if not re.fullmatch(r"[A-Za-z0-9]{16,64}", value):
        raise CheckFailed("FMP_API_KEY does not look like an FMP key (16-64 letters and digits)")
    return Evidence("FMP_API_KEY is set (value not shown)", figures={"length": len(value)})


# ---- S0: local ---------------------------------------------------------------
def local_toolchain(ctx: CheckContext) -> Evidence:
    problems = []
    if sys.version_info < MIN_PYTHON:
        problems.append(f"Python {sys.version.split()[0]} < {'.'.join(map(str, MIN_PYTHON))}")
    git = shutil.which("git")
    git_version = subprocess.run([git, "--version"], capture_output=True, text=True).stdout.strip() if git else ""
    if not git_version:
        problems.append("git not found")
    target = ctx.state_dir if ctx.state_dir.exists() else ctx.root
    free_gib = shutil.disk_usage(target).free / 2**30
    if free_gib < MIN_FREE_GIB:
        problems.append(f"only {free_gib:.1f} GiB free at {target} (need {MIN_FREE_GIB:g})")
    java = shutil.which("java")
    figures = {"python": sys.version.split()[0], "git": git_version.removeprefix("git version "),
               "free_gib": round(free_gib, 1), "java": bool(java)}
    if problems:
        raise CheckFailed("; ".join(problems), figures=figures)
    return Evidence("Python, git and disk space are ready", figures=figures)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _our_pids(dev_dir: Path) -> set[int]:
    pids = set()
    for pid_file in dev_dir.glob("**/*.pid"):
        try:
            pids.add(int(pid_file.read_text().split()[0]))
        except (ValueError, IndexError, OSError):
            continue
    return pids


def _owner(port: int) -> tuple[int | None, str]:
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return conn.pid, " ".join(proc.cmdline()[:4])
    except (psutil.Error, OSError):
        pass
    return None, "unknown process"


def _family(pid: int) -> set[int]:
    import psutil

    try:
        proc = psutil.Process(pid)
        return {pid, *(p.pid for p in proc.parents())}
    except psutil.Error:
        return {pid}


def local_ports_free_or_ours(ctx: CheckContext) -> Evidence:
    """The stack's ports (Prefect 4200, AWS emulator 5000) are free or held by our own stack."""
    if ctx.env != "local":
        raise CheckSkipped(f"the local stack's ports matter only for env 'local', not {ctx.env!r}")
    settings = ctx.settings
    ours = _our_pids(settings.dev_dir)
    figures: dict[str, str] = {}
    conflicts = []
    for name, port in (("prefect", settings.prefect_port), ("aws-emulator", settings.moto_port)):
        if not _listening(port):
            figures[name] = f"{port} free"
            continue
        pid, cmd = _owner(port)
        if pid is not None and _family(pid) & ours:
            figures[name] = f"{port} ours (pid {pid})"
        else:
            figures[name] = f"{port} taken"
            conflicts.append(f"port {port} ({name}) is held by {cmd}" + (f" (pid {pid})" if pid else ""))
    if conflicts:
        raise CheckFailed(
            "; ".join(conflicts),
            figures=figures,
            excerpt="stop that process, or move our stack: FINKS_PREFECT_PORT / FINKS_MOTO_PORT",
        )
    return Evidence("stack ports are free or ours", figures=figures)


# ---- S4: scaffolding ---------------------------------------------------------
AREAS = {
    # area package: (what marks it, test files that prove it is tested)
    "finks": ("finks/__init__.py", "tests/test_cli*.py"),
    "connectors": ("connectors/__init__.py", "tests/test_fmp_*.py"),
    "jobs": ("jobs/__init__.py", "tests/test_jobs_*.py"),
    "dbt_project": ("dbt_project/dbt_project.yml", "tests/test_dbt_*.py"),
    "flows": ("flows/__init__.py", "tests/test_flows.py"),
    "infra": ("infra/__init__.py", "tests/test_infra_*.py"),
    "api": ("api/__init__.py", "tests/test_api*.py"),
}


def area_packages_exist(ctx: CheckContext) -> Evidence:
    """Each area package exists, imports and has tests that assert something."""
    problems, figures = [], {}
    for area, (marker, tests_glob) in AREAS.items():
        if not (ctx.root / marker).exists():
            problems.append(f"{area}: {marker} missing")
            continue
        if marker.endswith(".py"):
            out = subprocess.run([sys.executable, "-c", f"import {area}"], cwd=ctx.root,
                                 capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                problems.append(f"{area}: does not import ({out.stderr.strip().splitlines()[-1:]})")
                continue
        tests = sorted(ctx.root.glob(tests_glob))
        asserting = [t for t in tests if re.search(r"\bassert\b|pytest\.raises", t.read_text(encoding="utf-8"))]
        if not asserting:
            problems.append(f"{area}: no tests matching {tests_glob} that assert anything")
            continue
        figures[area] = len(asserting)
    if problems:
        raise CheckFailed("; ".join(problems), figures=figures)
    return Evidence(f"{len(figures)} area packages exist, import and have tests", figures=figures)


# ---- S20 / S22: documentation ------------------------------------------------
RUNBOOKS = ("pipeline-failure", "fmp-rate-limit", "dbt-test-failure", "prefect-server-down", "disaster-recovery")
DOCS = {
    "architecture": "docs/architecture.md",
    "onboarding": "docs/onboarding.md",
    "troubleshooting": "docs/troubleshooting.md",
    "scaling": "docs/runbooks/scaling.md",
    "api": "docs/api/openapi.json",
}


def _finks_commands(root: Path) -> set[str]:
    """The commands `finks --help` lists; a help that fails or lists none means we cannot judge the docs."""
    out = subprocess.run([sys.executable, "-m", "finks.cli", "--help"], cwd=root, capture_output=True, text=True,
                         timeout=60)
    commands = set(re.findall(r"^  ([a-z][a-z-]+)\s", out.stdout, flags=re.M))
    if out.returncode != 0 or not commands:
        raise RuntimeError(f"`finks --help` exited {out.returncode} listing {len(commands)} commands: "
                           f"{out.stderr.strip()[-300:]}")
    return commands


def _dangling_commands(root: Path, files: list[Path]) -> list[str]:
    """`finks X` mentioned in docs where X is no command: docs that lie are worse than none."""
    known = _finks_commands(root)
    bad = []
    for file in files:
        for cmd in set(re.findall(r"`finks ([a-z][a-z-]+)", file.read_text(encoding="utf-8"))):
            if cmd not in known:
                bad.append(f"{file.relative_to(root)}: 'finks {cmd}'")
    return bad


def runbooks_exist(ctx: CheckContext) -> Evidence:
    """Runbooks for the failures the pipeline can have, each with symptoms, diagnosis, resolution."""
    folder = ctx.root / "docs" / "runbooks"
    problems, files = [], []
    for name in RUNBOOKS:
        path = folder / f"{name}.md"
        if not path.exists():
            problems.append(f"missing docs/runbooks/{name}.md")
            continue
        text = path.read_text(encoding="utf-8").lower()
        missing = [h for h in ("symptoms", "diagnosis", "resolution") if f"## {h}" not in text]
        if missing:
            problems.append(f"{path.name} lacks sections {', '.join(missing)}")
        files.append(path)
    problems += _dangling_commands(ctx.root, files)
    if problems:
        raise CheckFailed("; ".join(problems[:6]), figures={"runbooks": len(files)})
    return Evidence(f"{len(files)} runbooks, each with symptoms, diagnosis and resolution; commands exist",
                    figures={"runbooks": len(files)})


def operational_docs(ctx: CheckContext) -> Evidence:
    """Runbooks, architecture diagram, onboarding, API docs, troubleshooting — and they are true."""
    problems = []
    for what, rel in DOCS.items():
        if not (ctx.root / rel).exists():
            problems.append(f"{what}: {rel} missing")
    arch = ctx.root / DOCS["architecture"]
    if arch.exists() and "```mermaid" not in arch.read_text(encoding="utf-8"):
        problems.append("architecture.md has no mermaid diagram")
    spec = ctx.root / DOCS["api"]
    if spec.exists():
        try:
            paths = json.loads(spec.read_text(encoding="utf-8")).get("paths", {})
            if not paths:
                problems.append("openapi.json documents no paths")
        except ValueError as exc:
            problems.append(f"openapi.json is not JSON: {exc}")
    docs = [p for p in (ctx.root / "docs").rglob("*.md")] if (ctx.root / "docs").exists() else []
    readme = ctx.root / "README.md"
    if not readme.is_file():
        problems.append("README.md missing")
    problems += _dangling_commands(ctx.root, docs + ([readme] if readme.is_file() else []))
    if problems:
        raise CheckFailed("; ".join(problems[:6]), figures={"documents": len(docs)})
    return Evidence(f"{len(docs)} documents; every `finks` command they mention exists",
                    figures={"documents": len(docs)})
