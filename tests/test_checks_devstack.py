"""Every S1/S3 local-stack check can fail: against a stack that is not running, an emulator
whose data plane was never (or badly) bootstrapped, a port someone else holds, a services
test selection that fails. None of them brings the stack up to look at it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.aws import client as aws_client
from core.settings import Settings, load_settings
from finks.checks import CheckFailed, CheckSkipped
from finks.devstack.procs import free_port, port_in_use
from tests.fixtures.checks import context
from validation import devstack as checks

LOOKING = [checks.stack_services_healthy, checks.prefect_flow_runs_locally, checks.s3_operations_work,
           checks.sample_data_roundtrip, checks.data_plane_bootstrapped, checks.stack_up_under_two_minutes,
           checks.ensure_stack_up, checks.services_tests_pass]


@pytest.fixture
def idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default settings of a stack that is not running: free ports, state in tmp_path."""
    monkeypatch.delenv("FINKS_DATABASE_URL", raising=False)
    for key, value in {"FINKS_STATE_DIR": str(tmp_path / "state"), "FINKS_PREFECT_PORT": str(free_port()),
                       "FINKS_MOTO_PORT": str(free_port()), "FINKS_PREFECT_DATABASE": "sqlite"}.items():
        monkeypatch.setenv(key, value)
    return load_settings(env="local")


@pytest.fixture
def emulator(idle: Settings) -> Iterator[Settings]:
    """A bare moto server on the idle stack's emulator port: answering, but nothing bootstrapped."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=idle.moto_port, verbose=False)
    server.start()
    # One process, one moto backend: start every test from an empty emulator.
    urllib.request.urlopen(urllib.request.Request(f"{idle.s3_endpoint}/moto-api/reset", method="POST"), timeout=10)
    try:
        yield idle
    finally:
        server.stop()


@pytest.mark.parametrize("check", LOOKING, ids=lambda c: c.__name__)
def test_local_stack_checks_skip_on_aws_environments(tmp_path: Path, check) -> None:
    with pytest.raises(CheckSkipped, match="only for env 'local'"):
        check(context(tmp_path, env="dev"))


@pytest.mark.check_fails("validation.devstack:stack_services_healthy")
def test_health_check_fails_on_a_stack_that_is_not_running(tmp_path: Path, idle: Settings) -> None:
    with pytest.raises(CheckFailed, match=r"unhealthy: moto \(stopped\), prefect \(stopped\); run 'finks dev up'"):
        checks.stack_services_healthy(context(tmp_path))


@pytest.mark.check_fails("validation.devstack:prefect_flow_runs_locally")
def test_flow_check_fails_without_a_prefect_server_and_starts_none(tmp_path: Path, idle: Settings) -> None:
    with pytest.raises(CheckFailed, match="the Prefect server does not answer"):
        checks.prefect_flow_runs_locally(context(tmp_path))
    assert not port_in_use(idle.prefect_port)


@pytest.mark.check_fails("validation.devstack:s3_operations_work")
@pytest.mark.check_fails("validation.devstack:sample_data_roundtrip")
@pytest.mark.check_fails("validation.devstack:data_plane_bootstrapped")
def test_s3_checks_fail_without_an_emulator_and_start_none(tmp_path: Path, idle: Settings) -> None:
    for check in (checks.s3_operations_work, checks.sample_data_roundtrip, checks.data_plane_bootstrapped):
        with pytest.raises(CheckFailed, match="the AWS emulator does not answer .*run 'finks dev up'"):
            check(context(tmp_path))
    assert not port_in_use(idle.moto_port)


@pytest.mark.check_fails("validation.devstack:s3_operations_work")
@pytest.mark.check_fails("validation.devstack:sample_data_roundtrip")
def test_s3_checks_fail_on_an_emulator_that_was_never_bootstrapped(tmp_path: Path, emulator: Settings) -> None:
    for check in (checks.s3_operations_work, checks.sample_data_roundtrip):
        with pytest.raises(CheckFailed, match="the emulator has no bronze bucket finks-local-bronze"):
            check(context(tmp_path))


@pytest.mark.check_fails("validation.devstack:s3_operations_work")
def test_s3_operations_check_fails_on_a_bucket_without_versioning(tmp_path: Path, emulator: Settings) -> None:
    aws_client(emulator, "s3").create_bucket(Bucket="finks-local-bronze",
                                             CreateBucketConfiguration={"LocationConstraint": emulator.region})
    with pytest.raises(CheckFailed, match=r"versioning None, 1 versions"):
        checks.s3_operations_work(context(tmp_path))


@pytest.mark.check_fails("validation.devstack:data_plane_bootstrapped")
def test_bootstrap_check_fails_on_a_data_plane_that_was_never_bootstrapped(tmp_path: Path, emulator: Settings) -> None:
    with pytest.raises(CheckFailed, match="bronze: bucket finks-local-bronze missing") as failed:
        checks.data_plane_bootstrapped(context(tmp_path))
    assert f"secret {emulator.fmp_secret_name} missing" in str(failed.value)
    # It only looked: still nothing there.
    assert aws_client(emulator, "s3").list_buckets()["Buckets"] == []


@pytest.mark.check_fails("validation.devstack:data_plane_bootstrapped")
def test_bootstrap_check_reads_each_bucket_setting_as_it_is(tmp_path: Path, emulator: Settings) -> None:
    from finks.devstack.bootstrap import bootstrap_data_plane

    bootstrap_data_plane(emulator)
    checks.data_plane_bootstrapped(context(tmp_path))  # holds right after a bootstrap ...
    s3 = aws_client(emulator, "s3")  # ... and not once the buckets drift
    s3.put_bucket_versioning(Bucket="finks-local-silver", VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_lifecycle(Bucket="finks-local-gold")
    s3.delete_public_access_block(Bucket="finks-local-bronze")
    s3.delete_bucket_encryption(Bucket="finks-local-logs")
    s3.put_bucket_logging(Bucket="finks-local-bronze", BucketLoggingStatus={})
    with pytest.raises(CheckFailed) as failed:
        checks.data_plane_bootstrapped(context(tmp_path))
    message = str(failed.value)
    for problem in ("silver: versioning Suspended", "gold: no lifecycle rule", "bronze: public access not fully blocked",
                    "logs: no default encryption", "bronze: access logging to None"):
        assert problem in message, message


@pytest.mark.slow
@pytest.mark.check_fails("validation.devstack:ensure_stack_up")
def test_stack_action_fails_when_a_service_does_not_become_healthy(
    tmp_path: Path, idle: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finks.devstack import down

    monkeypatch.setenv("FINKS_PREFECT_START_TIMEOUT", "1")  # a Prefect too slow for its start budget
    try:
        with pytest.raises(CheckFailed, match="the local stack did not come up: prefect did not become healthy within 1s"):
            checks.ensure_stack_up(context(tmp_path))
    finally:
        down(load_settings(env="local"))


@pytest.mark.slow
@pytest.mark.check_fails("validation.devstack:stack_up_under_two_minutes")
def test_cold_start_check_fails_when_prefect_is_not_healthy_in_time(
    tmp_path: Path, idle: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine (or a Prefect) too slow for its start budget: the server is given 5 s.
    monkeypatch.setenv("FINKS_PREFECT_START_TIMEOUT", "1")
    ctx = context(tmp_path)
    with pytest.raises(CheckFailed, match="prefect did not become healthy within 1s"):
        checks.stack_up_under_two_minutes(ctx)
    from finks.devstack import status

    cold = status(load_settings(env="local", state_dir=ctx.work_dir / "cold-stack"))
    assert {s.state for s in cold.services.values()} == {"stopped"}


# ---- `make test`: the services test selection ------------------------------------------
def _services_repo(tmp_path: Path, tests: str) -> Path:
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_devstack_integration.py").write_text(tests)
    return root


@pytest.mark.slow
@pytest.mark.check_fails("validation.devstack:services_tests_pass")
def test_services_check_fails_when_a_services_test_fails(tmp_path: Path) -> None:
    root = _services_repo(tmp_path, "def test_up():\n    assert True\n\ndef test_s3():\n    assert 'bucket' == 'no bucket'\n")
    with pytest.raises(CheckFailed, match="services tests fail: .*1 failed, 1 passed") as failed:
        checks.services_tests_pass(context(tmp_path, root))
    assert failed.value.evidence.figures["failed"] == 1


@pytest.mark.slow
@pytest.mark.check_fails("validation.devstack:services_tests_pass")
def test_services_check_fails_when_the_tests_were_skipped(tmp_path: Path) -> None:
    root = _services_repo(tmp_path, "import pytest\n\ndef test_up():\n    assert True\n\n"
                                    "@pytest.mark.skip(reason='no postgres')\ndef test_db():\n    pass\n")
    with pytest.raises(CheckFailed, match="1 skipped, so not every service was tested"):
        checks.services_tests_pass(context(tmp_path, root))


@pytest.mark.check_fails("validation.devstack:services_tests_pass")
def test_services_check_fails_when_no_test_runs(tmp_path: Path) -> None:
    root = _services_repo(tmp_path, "# nothing here yet\n")
    with pytest.raises(CheckFailed, match="no test ran"):
        checks.services_tests_pass(context(tmp_path, root))
    with pytest.raises(CheckFailed, match="missing"):
        checks.services_tests_pass(context(tmp_path, tmp_path / "empty"))


def test_services_check_passes_on_a_passing_selection(tmp_path: Path) -> None:
    root = _services_repo(tmp_path, "def test_up():\n    assert True\n")
    evidence = checks.services_tests_pass(context(tmp_path, root))
    assert evidence.figures["passed"] == 1 and "1 passed" in evidence.message


def test_services_check_that_cannot_run_pytest_is_an_error(tmp_path: Path) -> None:
    root = _services_repo(tmp_path, "def test_up(:\n")  # a collection error: pytest exits 2
    with pytest.raises(RuntimeError, match=r"pytest could not run the services tests \(exit 2\)"):
        checks.services_tests_pass(context(tmp_path, root))
