"""``python -m jobs.dbt``: the dbt image's command on ECS (see dbt_project/Dockerfile)."""

from __future__ import annotations

import argparse
import json
import sys

from jobs.dbt.run import COMMANDS, run_dbt


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.dbt build|test|docs [--target T] [--select S …] [--vars JSON]``.
    Prints the result as JSON on stdout; exit 1 when not ok."""
    from core.errors import FinksError
    from core.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m jobs.dbt",
                                     description="Run dbt with write-audit-publish of gold.")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--target", choices=("local", "athena"))
    parser.add_argument("--select", nargs="+")
    parser.add_argument("--vars", default="{}", help="JSON object of dbt vars")
    args = parser.parse_args(argv)
    try:
        result = run_dbt(load_settings(), args.command, select=args.select, target=args.target,
                         vars=json.loads(args.vars), quiet=True)
    except FinksError as exc:
        print(f"jobs.dbt: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result.to_dict(), default=str))
    return 0 if result.ok else 1
