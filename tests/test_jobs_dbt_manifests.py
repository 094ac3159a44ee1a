"""The parsed dbt project is reused exactly while nothing a parse reads has changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.environ import scoped
from jobs.dbt import PROJECT_DIR
from jobs.dbt.args import DUCKDB_PATH_VAR, DbtArgs, dbt_env
from jobs.dbt.invoke import shared_manifest
from jobs.dbt.manifests import plan, scan


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    return copy


def _args(project: Path, run: str = "r1", target: str = "local", **vars: str) -> DbtArgs:
    root = project.parent
    return DbtArgs(target, root / "runs" / run, {"silver_uri": "/lake/silver", **vars},
                   parse_root=root / "parse", project_dir=project)


def _env(run_dir: Path, **extra: str) -> dict[str, str]:
    return {DUCKDB_PATH_VAR: str(run_dir / "candidate.duckdb"), **extra}


def test_run_directory_and_unnamed_vars_do_not_change_the_key(project: Path) -> None:
    first, second = _args(project, "r1"), _args(project, "r2", run_date="2024-03-15")
    a, b = plan(first, _env(first.run_dir)), plan(second, _env(second.run_dir))
    assert (a.key, a.slot) == (b.key, b.slot)
    assert b.vars == {"silver_uri": "/lake/silver"}          # the project never names run_date
    # the parse's DuckDB path points into the slot, so dbt sees the same profile every time
    assert b.slot is not None
    assert b.env == {DUCKDB_PATH_VAR: str(b.slot / "candidate.duckdb")}


def test_target_vars_and_profile_environment_change_key_and_slot(project: Path) -> None:
    args = _args(project)
    base = plan(args, _env(args.run_dir))
    changed = [
        plan(_args(project, target="athena"), _env(args.run_dir)),
        plan(_args(project, silver_uri="/other/silver"), _env(args.run_dir)),
        plan(args, _env(args.run_dir, FINKS_ATHENA_SCHEMA="finks_prod_gold_audit")),
        plan(args, _env(args.run_dir, FINKS_ENV="prod")),                   # read by _sources.yml
        plan(args, {DUCKDB_PATH_VAR: str(args.run_dir / "warehouse.duckdb")}),  # another database
    ]
    assert all(p.key != base.key and p.slot != base.slot for p in changed)
    assert len({p.key for p in changed}) == len(changed)


def test_a_changed_project_file_changes_the_key_but_keeps_the_slot(project: Path) -> None:
    args = _args(project)
    before = plan(args, _env(args.run_dir))
    model = project / "models" / "marts" / "dim_company.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    after = plan(args, _env(args.run_dir))
    assert after.key != before.key and after.slot == before.slot   # dbt's partial parse sees the edit


def test_a_var_named_at_run_time_makes_every_var_count(project: Path) -> None:
    (project / "macros" / "dynamic.sql").write_text(
        "{% macro pick(name) %}{{ var(name) }}{% endmacro %}\n")
    assert scan(project).var_names is None
    args = _args(project)
    assert plan(args, _env(args.run_dir)).key != \
        plan(_args(project, run_date="2024-03-15"), _env(args.run_dir)).key


def test_edited_project_is_parsed_again_and_dbt_sees_the_edit(project: Path) -> None:
    args = _args(project)
    with scoped(dbt_env(args.run_dir / "candidate.duckdb")):
        first = shared_manifest(args)
        assert first is not None and shared_manifest(_args(project, "r2")) is first
        model = project / "models" / "marts" / "dim_company.sql"
        model.write_text(model.read_text() + "\n-- edited for the test\n")
        edited = shared_manifest(_args(project, "r3"))
    assert edited is not None and edited is not first
    assert "edited for the test" in edited.nodes["model.finks.dim_company"].raw_code
