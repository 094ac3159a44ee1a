"""The real local stack (session fixture `local_stack`): Prefect server, moto server, worker."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import lake
from core.aws import client as aws_client
from core.settings import Settings
from finks.checks import CheckContext
from finks.devstack import down, status, up
from finks.devstack.cli import app

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _flow_run(settings: Settings, run_id: str) -> dict:
    with urllib.request.urlopen(f"{settings.prefect_api}/flow_runs/{run_id}", timeout=10) as resp:
        return dict(json.loads(resp.read()))


def test_a_flow_run_survives_a_prefect_server_restart(local_stack: Settings) -> None:
    from prefect import flow

    @flow(name="devstack-restart-probe")
    def probe(x: int) -> int:
        return x * 2

    state = probe(21, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    assert state.result() == 42
    assert _flow_run(local_stack, run_id)["state"]["type"] == "COMPLETED"

    assert down(local_stack, ["prefect"]) == {"prefect": "stopped"}
    assert status(local_stack).services["prefect"].state == "stopped"
    again = up(local_stack)
    assert again.services["prefect"].action == "started"
    assert again.services["moto"].action == "already running"
    assert _flow_run(local_stack, run_id)["state"]["type"] == "COMPLETED"


def test_second_up_reports_running_services_and_keeps_their_pids(local_stack: Settings) -> None:
    before = {n: s.pid for n, s in status(local_stack).services.items()}
    again = up(local_stack)
    assert {n: s.action for n, s in again.services.items() if s.action} == {
        "moto": "already running", "prefect": "already running"}
    assert {n: s.pid for n, s in again.services.items()} == before
    assert again.healthy_services(["moto", "prefect"])


def test_s3_put_get_list_and_versioning_through_the_emulator(local_stack: Settings) -> None:
    s3 = aws_client(local_stack, "s3")
    bucket = lake.bucket(local_stack, "silver")
    s3.put_object(Bucket=bucket, Key="t/a.txt", Body=b"one")
    s3.put_object(Bucket=bucket, Key="t/a.txt", Body=b"two")
    assert s3.get_object(Bucket=bucket, Key="t/a.txt")["Body"].read() == b"two"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="t/")["Contents"]] == ["t/a.txt"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="t/a.txt")["Versions"]
    assert len(versions) == 2


def test_emulator_restart_is_rebootstrapped_by_up(local_stack: Settings) -> None:
    s3 = aws_client(local_stack, "s3")
    s3.put_object(Bucket=lake.bucket(local_stack, "gold"), Key="ephemeral", Body=b"x")
    assert down(local_stack, ["moto"]) == {"moto": "stopped"}
    st = up(local_stack)
    assert st.services["moto"].action == "started"
    assert "s3://" + lake.bucket(local_stack, "gold") in st.bootstrap["created"]
    s3 = aws_client(local_stack, "s3")
    assert s3.get_bucket_versioning(Bucket=lake.bucket(local_stack, "gold"))["Status"] == "Enabled"
    assert "Contents" not in s3.list_objects_v2(Bucket=lake.bucket(local_stack, "gold"))


def test_s1_and_s3_checks_pass_against_the_stack(local_stack: Settings, tmp_path: Path) -> None:
    from validation import devstack as checks

    ctx = CheckContext(env="local", root=local_stack.root, state_dir=local_stack.home, work_dir=tmp_path)
    assert ctx.settings.prefect_port == local_stack.prefect_port  # the fixture's env reaches checks
    for check in (checks.stack_services_healthy, checks.s3_operations_work,
                  checks.sample_data_roundtrip, checks.data_plane_bootstrapped):
        evidence = check(ctx)
        assert evidence.message, check.__name__


def test_status_json_and_logs_from_the_cli(local_stack: Settings) -> None:
    result = CliRunner().invoke(app, ["status", "--json"])
    data = json.loads(result.stdout)
    expected = "postgresql" if local_stack.database_kind == "postgresql" else "sqlite"
    assert data["prefect_backend"] == expected
    running = {s["name"]: s for s in data["services"] if s["state"] == "running"}
    assert {"moto", "prefect"} <= set(running) and running["prefect"]["uptime_s"] >= 0
    logs = CliRunner().invoke(app, ["logs", "prefect", "-n", "200"])
    assert logs.exit_code == 0 and "starting prefect" in logs.stdout


def test_worker_joins_the_pool_and_one_sigterm_stops_it(local_stack_worker: Settings) -> None:
    st = status(local_stack_worker)
    assert st.services["worker"].healthy
    assert down(local_stack_worker, ["worker"]) == {"worker": "stopped"}
    assert "stopped!" in Path(st.services["worker"].log or "").read_text()


def test_flow_check_runs_a_flow_in_a_fresh_process(local_stack: Settings, tmp_path: Path) -> None:
    from validation.devstack import prefect_flow_runs_locally

    ctx = CheckContext(env="local", root=local_stack.root, state_dir=local_stack.home, work_dir=tmp_path)
    evidence = prefect_flow_runs_locally(ctx)
    run = _flow_run(local_stack, evidence.figures["flow_run_id"])
    assert run["state"]["type"] == "COMPLETED"


def test_cold_start_check_times_a_separate_stack_and_leaves_ours_alone(
    local_stack: Settings, tmp_path: Path
) -> None:
    from validation.devstack import stack_up_under_two_minutes

    before = {n: s.pid for n, s in status(local_stack).services.items()}
    ctx = CheckContext(env="local", root=local_stack.root, state_dir=local_stack.home, work_dir=tmp_path)
    evidence = stack_up_under_two_minutes(ctx)
    assert 0 < evidence.figures["up_seconds"] < 120
    assert {n: s.pid for n, s in status(local_stack).services.items()} == before
    cold = status(local_stack.model_copy(update={"state_dir": tmp_path / "cold-stack"}))
    assert {s.state for s in cold.services.values()} == {"stopped"}
