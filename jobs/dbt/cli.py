"""``python -m jobs.dbt``: the dbt image's command on ECS (see dbt_project/Dockerfile)."""

from __future__ import annotations

import argparse
import json
import sys

from jobs.dbt.run import COMMANDS, build_and_document, run_dbt

# The dbt ECS task's command: its task definition's default (infra) and the daily flow's
# override (flows.tasks, which adds the run's --vars) both start from it.
ECS_COMMAND = ("python", "-m", "jobs.dbt", "build", "--docs", "--target", "athena")


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.dbt build|test|docs [--target T] [--select S …] [--vars JSON] [--docs]``.
    Prints the result as JSON on stdout (with ``--docs``, the docs run's under ``"docs"``);
    exit 1 when not ok."""
    from core.errors import FinksError
    from core.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m jobs.dbt",
                                     description="Run dbt with write-audit-publish of gold.")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--target", choices=("local", "athena"))
    parser.add_argument("--select", nargs="+")
    parser.add_argument("--vars", default="{}", help="JSON object of dbt vars")
    parser.add_argument("--docs", action="store_true",
                        help="with build: once gold is published, generate the docs site and publish it too")
    args = parser.parse_args(argv)
    if args.docs and args.command != "build":
        parser.error(f"--docs goes with build (it documents what the build published), not {args.command}")
    try:
        settings, dbt_vars = load_settings(), json.loads(args.vars)
        if args.docs:
            result, docs = build_and_document(settings, args.select, args.target, dbt_vars, quiet=True)
        else:
            result = run_dbt(settings, args.command, select=args.select, target=args.target, vars=dbt_vars,
                             quiet=True)
            docs = None
    except FinksError as exc:
        print(f"jobs.dbt: error: {exc}", file=sys.stderr)
        return exc.exit_code
    out = result.to_dict() | ({"docs": docs.to_dict()} if docs is not None else {})
    print(json.dumps(out, default=str))
    return 0 if result.ok and (docs is None or docs.ok) else 1
