"""S21 "Security scan passes" on AWS: Prowler really runs against a moto server seeded with the
stack, and the reviewed allow-list (security/prowler-allowlist.yaml) decides what is accepted."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from core.errors import ConfigError
from core.paths import REPO_ROOT
from finks.checks import CheckContext, CheckFailed
from validation.aws import prowler

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")
COMMITTED = REPO_ROOT / prowler.ALLOWLIST


@pytest.fixture
def installed() -> Path:
    """Prowler's executable; CI (where `make install` runs tools/install-prowler.sh) must have it."""
    try:
        return prowler.executable(REPO_ROOT)
    except ConfigError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def _allowlist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "allowlist.yaml"
    path.write_text(text)
    monkeypatch.setenv(prowler.ALLOWLIST_VARIABLE, str(path))
    return path


def _expire(check: str, text: str, when: date) -> str:
    """The committed allow-list with ``check``'s entry expiring on ``when``."""
    data = yaml.safe_load(text)
    for entry in data["accepted"]:
        if entry["check"] == check:
            entry["expires"] = when
    return yaml.safe_dump(data, sort_keys=False)


# ---- Prowler over the seeded stack (slow: Prowler loads every provider it has) -------------------
# One real scan (each costs minutes of Prowler's start-up): the seeded stack with one thing broken.
# Its failure names the broken group and nothing else, so every other finding of the healthy stack
# is one the committed allow-list accepts — the pass case, judged in the same scan.
@pytest.mark.slow
@pytest.mark.check_fails("validation.aws.prowler:scan_clean")
def test_scan_fails_naming_only_a_security_group_opened_to_the_internet_on_ssh(installed: Path,
                                                                               deployed_dev: Deployed) -> None:
    ec2 = deployed_dev.client("ec2")
    tasks_sg = deployed_dev.outputs["security_groups"]["tasks"]
    # A running task's interface: Prowler reads only security groups in use, and moto runs no task.
    eni = ec2.create_network_interface(SubnetId=deployed_dev.outputs["private_subnet_ids"][0], Groups=[tasks_sg],
                                       Description="a flow run's task")["NetworkInterface"]["NetworkInterfaceId"]
    deployed_dev.undo(lambda: ec2.delete_network_interface(NetworkInterfaceId=eni))
    rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    deployed_dev.undo(lambda: ec2.revoke_security_group_ingress(GroupId=tasks_sg, IpPermissions=rule))
    ec2.authorize_security_group_ingress(GroupId=tasks_sg, IpPermissions=rule)
    with pytest.raises(CheckFailed) as exc:
        prowler.scan_clean(deployed_dev.ctx())
    problems = exc.value.evidence.figures["problems"]
    assert problems and all(tasks_sg in p and "(ca-central-1)" in p for p in problems), problems
    assert any("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22" in p for p in problems)
    assert re.match(r"Prowler: (high|critical) ", str(exc.value))
    assert f"accept the risk with a reviewed entry in {prowler.ALLOWLIST}" in str(exc.value)
    figures = exc.value.evidence.figures
    assert re.fullmatch(r"\d+\.\d+\.\d+", figures["prowler_version"])
    assert figures["checks_run"] > 50 and figures["findings"] > 0
    accepted = {a["check"] for a in figures["accepted"]}
    assert "s3_bucket_cross_account_access" in accepted  # the ALB's log delivery into finks-dev-logs
    assert all(a["reason"] and a["reviewed_by"] and a["expires"] for a in figures["accepted"])


def test_an_expired_allowlist_entry_no_longer_accepts() -> None:
    """The judgement over a scan's findings: the entry that accepted the logs bucket's finding expires."""
    entries = prowler.load_allowlist(COMMITTED)
    finding = prowler.Finding("s3_bucket_cross_account_access", "FAIL", "high", "arn:aws:s3:::finks-dev-logs",
                              "finks-dev-logs", "ca-central-1", "cross account")
    entry = next(e for e in entries if e.accepts(finding))
    assert prowler.judge([finding], entries, entry.expires).unaccepted == []
    after = prowler.judge([finding], entries, entry.expires + timedelta(days=1))
    assert after.unaccepted == [finding] and entry in after.expired


# ---- the allow-list file ------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.prowler:scan_clean")
def test_a_malformed_allowlist_is_an_error_naming_file_and_line_before_any_scan(
        emulator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _allowlist(tmp_path, monkeypatch, "accepted:\n  - check: s3_bucket_public_access\n"
                                             "    resource: 'finks-dev-.*'\n    reason: the bucket serves a website\n"
                                             "    reviewed_by: someone\n    expires: next spring\n")
    ctx = CheckContext("dev", REPO_ROOT, tmp_path / "state", tmp_path / "work")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:6: expires 'next spring' is not a date"):
        prowler.scan_clean(ctx)
    assert not (tmp_path / "work" / "prowler").exists()  # no scan was started


@pytest.mark.parametrize(("text", "line", "says"), [
    ("accepted:\n  - check: x\n  resource: [\n", 3, "not YAML"),
    ("accepted:\n  - check: ec2_x\n    resource: 'a'\n    reason: a reason long enough to count\n"
     "    reviewed_by: me\n", 2, "missing 'expires'"),
    ("accepted:\n  - check: ec2_x\n    resource: '(unclosed'\n    reason: a reason long enough to count\n"
     "    reviewed_by: me\n    expires: 2030-01-01\n", 3, "resource is not a regular expression"),
    ("accepted:\n  - check: ec2_x\n    resource: 'a'\n    reason: because\n"
     "    reviewed_by: me\n    expires: 2030-01-01\n", 4, "reason too short"),
    ("accepted:\n  - check: ec2_x\n    resource: 'a'\n    reason: a reason long enough to count\n"
     "    reviewed_by: me\n    expires: 2030-01-01\n    owner: me\n", 7, "unknown field 'owner'"),
    ("accepted:\n  - check: EC2 X\n    resource: 'a'\n    reason: a reason long enough to count\n"
     "    reviewed_by: me\n    expires: 2030-01-01\n", 2, "is not a Prowler check id"),
    ("- check: ec2_x\n", 1, "a mapping with one key, `accepted:`"),
])
def test_allowlist_problems_name_file_and_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:{line}: .*{re.escape(says)}"):
        prowler.load_allowlist(path)


def test_the_committed_allowlist_validates_and_no_entry_has_expired() -> None:
    entries = prowler.load_allowlist(COMMITTED)
    assert entries and all(not e.expired(date.today()) for e in entries)
    assert all(e.where.startswith(f"{COMMITTED}:") for e in entries)


def test_an_entry_accepts_by_arn_or_name_in_full_and_only_its_check() -> None:
    entry = prowler.load_allowlist(COMMITTED)[0]
    assert entry.check == "s3_bucket_cross_account_access"
    finding = prowler.Finding(entry.check, "FAIL", "high", "arn:aws:s3:::finks-dev-logs", "finks-dev-logs",
                              "ca-central-1", "cross account")
    assert entry.accepts(finding)
    assert not entry.accepts(prowler.Finding(entry.check, "FAIL", "high", "arn:aws:s3:::finks-dev-logs-copy",
                                             "finks-dev-logs-copy", "ca-central-1", ""))
    assert not entry.accepts(prowler.Finding("s3_bucket_public_access", "FAIL", "high", finding.resource,
                                             finding.resource_name, "ca-central-1", ""))
