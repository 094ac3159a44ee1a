"""Live probe for S21's "Security scan passes": Prowler over the stack's account, with a reviewed allow-list.

Prowler (``tools/install-prowler.sh`` puts it in ``.venv-prowler/``: its exact
pins of boto3, pydantic, pandas… clash with the project's) runs as a child
process against the environment's account and region — the same credentials
and ``AWS_ENDPOINT_URL`` as every other probe, so the run works against a moto
server too — and writes its findings as OCSF JSON. The criterion fails on any
FAIL finding of high or critical severity that no live entry of
``security/prowler-allowlist.yaml`` accepts.

The allow-list is ours, not Prowler's mutelist: the mutelist schema forbids
extra fields on a check entry (no reason, reviewer or expiry), has no notion
of expiry, and a mutelist that does not validate is logged and ignored — every
finding is then reported as it is, silently. So Prowler runs with its default
mutelist, its own ``muted`` marks are ignored (only a reviewed entry here
accepts a finding), and the allow-list is validated before the scan starts:
a malformed file is a configuration error naming ``file:line``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError
from finks.checks import CheckContext, Evidence

if TYPE_CHECKING:
    from validation.aws.live import Live

ALLOWLIST = Path("security") / "prowler-allowlist.yaml"
ALLOWLIST_VARIABLE = "FINKS_PROWLER_ALLOWLIST"  # another allow-list file (tests, a reviewer's draft)
PROWLER_VARIABLE = "FINKS_PROWLER"  # the prowler executable, where it is not .venv-prowler/bin/prowler
FAILING = ("critical", "high")
# The services the stack uses (infra/components/): network (ec2, vpc: subnets, security groups,
# NACLs, endpoints), the lake and its keys (s3, kms), ECS on Fargate and its images (ecs, ecr),
# the Prefect database (rds), the FMP key (secretsmanager), monitoring (cloudwatch, sns), the
# Glue job and catalog (glue), Athena's workgroup (athena), the API (awslambda, apigateway, acm),
# the ALB in front of Prefect (elbv2), the IAM roles (iam), and the detectors and trail S21
# deploys (guardduty, config, cloudtrail). Services the stack never touches (EKS, EMR,
# Redshift, …) are not scanned: they cost minutes and say nothing about it.
SERVICES = ("ec2", "vpc", "s3", "kms", "ecs", "ecr", "rds", "secretsmanager", "cloudwatch", "sns", "glue",
            "athena", "awslambda", "apigateway", "acm", "elbv2", "iam", "guardduty", "config", "cloudtrail")
# Only the severities that fail the criterion are run: Prowler selects its checks by severity
# before it scans, so the medium and low checks (most of the catalogue) cost nothing.
SEVERITIES = FAILING
# Checks of those services about resources the stack does not have. Everything runs on Fargate,
# RDS, Lambda and Glue: no EC2 instance, EBS volume, AMI, launch template or transit gateway
# (and moto's ~1,300 built-in AMI snapshots would flood the scan); no EKS, no Bedrock; and each
# environment is one account, not an AWS Organization with a delegated administrator.
NOT_THE_STACKS = (
    "ec2_ami_public", "ec2_confidential_workload_host_imdsv2_not_enforced",
    "ec2_confidential_workload_host_unrestricted_ingress", "ec2_ebs_default_encryption", "ec2_ebs_public_snapshot",
    "ec2_ebs_snapshot_account_block_public_access", "ec2_ebs_snapshots_encrypted", "ec2_ebs_volume_encryption",
    "ec2_ebs_volume_snapshots_exists", "ec2_instance_account_imdsv2_enabled", "ec2_instance_imdsv2_enabled",
    "ec2_instance_internet_facing_with_instance_profile", "ec2_instance_secrets_user_data",
    *(f"ec2_instance_port_{p}_exposed_to_internet" for p in (
        "cassandra", "cifs", "elasticsearch_kibana", "ftp", "kafka", "kerberos", "ldap", "memcached", "mongodb",
        "mysql", "oracle", "postgresql", "rdp", "redis", "sqlserver", "ssh", "telnet")),
    "ec2_launch_template_imdsv2_required", "ec2_launch_template_no_public_ip", "ec2_launch_template_no_secrets",
    "ec2_transitgateway_auto_accept_vpc_attachments", "guardduty_eks_audit_log_enabled",
    "guardduty_ec2_malware_protection_enabled", "guardduty_ai_protection_enabled",
    "cloudtrail_threat_detection_llm_jacking", "guardduty_delegated_admin_enabled_all_regions",
    "config_delegated_admin_and_org_aggregator_all_regions",
)
# Findings only an emulator gives (check, resource pattern or None for all, why): set aside, and
# said so in the evidence, only when the probe reads an emulator. On AWS every finding counts.
EMULATOR_ARTEFACTS = (
    ("rds_instance_certificate_expiration", None, "moto cannot describe RDS CA certificates (HTTP 500)"),
    ("rds_instance_deprecated_engine_version", None,
     "the emulator keeps the plan's major engine version (16); RDS runs a current minor version"),
    ("kms_cmk_rotation_enabled", None,
     "moto reports its AWS managed keys (alias/aws/*) as customer managed and unrotated; AWS rotates them"),
    ("ec2_securitygroup_default_restrict_traffic", None,
     "moto puts NAT gateways' interfaces in the VPC's default security group; AWS gives them none"),
    ("secretsmanager_automatic_rotation_enabled", r".*:secret:rds!.*",
     "RDS rotates the master password secret it manages; moto does not model that rotation"),
)
TIMEOUT_S = 1500
# What the role running the scan needs (Prowler's documented scan role: two AWS managed policies).
PERMISSIONS = ("arn:aws:iam::aws:policy/SecurityAudit", "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess")
_FIELDS = {"check", "resource", "region", "reason", "reviewed_by", "expires"}


# ---- the allow-list -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One reviewed acceptance: a check's findings on the resources a pattern matches."""

    check: str
    resource: str  # a regular expression matched against the resource's ARN or its name, in full
    reason: str
    reviewed_by: str
    expires: date
    where: str  # file:line
    region: str = "*"

    def expired(self, today: date) -> bool:
        return self.expires < today

    def accepts(self, finding: Finding) -> bool:
        if finding.check != self.check or (self.region != "*" and finding.region != self.region):
            return False
        return any(re.fullmatch(self.resource, name) for name in (finding.resource, finding.resource_name) if name)

    def describe(self) -> str:
        return f"{self.check} on {self.resource} ({self.where}, reviewed by {self.reviewed_by}, expires {self.expires})"


def allowlist_path(ctx: CheckContext) -> Path:
    return Path(os.environ.get(ALLOWLIST_VARIABLE) or ctx.root / ALLOWLIST)


def load_allowlist(path: Path) -> list[Entry]:
    """The entries of an allow-list file; ConfigError naming file:line when it does not validate."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: no allow-list file",
                          hint=f"create it (an empty list is `accepted: []`), see {ALLOWLIST}")
    try:
        root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not YAML: {getattr(exc, 'problem', None) or exc}") from None
    if root is None:
        return []
    problems: list[str] = []
    entries: list[Entry] = []
    top = _mapping(root)
    if top is None or set(top) - {"accepted"}:
        at = root.start_mark.line + 1
        raise ConfigError(f"{path}:{at}: an allow-list is a mapping with one key, `accepted:` (a list of entries)")
    items = top.get("accepted")
    if items is None or (items.tag.endswith(":null")):
        return []
    if not isinstance(items, yaml.SequenceNode):
        raise ConfigError(f"{path}:{items.start_mark.line + 1}: `accepted:` must be a list of entries")
    for item in items.value:
        entry, errors = _entry(path, item)
        problems += errors
        if entry:
            entries.append(entry)
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(problems),
                          hint=f"each entry needs {', '.join(sorted(_FIELDS - {'region'}))} (region optional)")
    return entries


def _mapping(node: Any) -> dict[str, Any] | None:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    return {str(k.value): v for k, v in node.value}


def _entry(path: Path, node: Any) -> tuple[Entry | None, list[str]]:
    """One entry node -> (Entry, []) or (None, problems naming file:line)."""
    import yaml

    where = f"{path}:{node.start_mark.line + 1}"
    fields = _mapping(node)
    if fields is None:
        return None, [f"{where}: an entry is a mapping of {', '.join(sorted(_FIELDS))}"]
    problems = [f"{path}:{v.start_mark.line + 1}: unknown field {k!r}" for k, v in fields.items() if k not in _FIELDS]
    problems += [f"{where}: missing {k!r}" for k in sorted(_FIELDS - {"region"} - set(fields))]
    values: dict[str, str] = {}
    for key, value in fields.items():
        at = f"{path}:{value.start_mark.line + 1}"
        if key in _FIELDS and (not isinstance(value, yaml.ScalarNode) or not str(value.value).strip()):
            problems.append(f"{at}: {key!r} must be a non-empty text")
        else:
            values[key] = str(value.value).strip()
    if "check" in values and not re.fullmatch(r"[a-z0-9_]+", values["check"]):
        problems.append(f"{path}:{fields['check'].start_mark.line + 1}: check {values['check']!r} is not a Prowler "
                        f"check id (e.g. s3_bucket_public_access)")
    if "resource" in values:
        try:
            re.compile(values["resource"])
        except re.error as exc:
            problems.append(f"{path}:{fields['resource'].start_mark.line + 1}: resource is not a regular expression: {exc}")
    if "reason" in values and len(values["reason"]) < 20:
        problems.append(f"{path}:{fields['reason'].start_mark.line + 1}: reason too short: say why the risk is accepted")
    expires: date | None = None
    if "expires" in values:
        try:
            expires = date.fromisoformat(values["expires"])
        except ValueError:
            problems.append(f"{path}:{fields['expires'].start_mark.line + 1}: expires {values['expires']!r} "
                            f"is not a date (YYYY-MM-DD)")
    if problems or expires is None:
        return None, problems
    return Entry(values["check"], values["resource"], values["reason"], values["reviewed_by"], expires, where,
                 values.get("region", "*")), []


# ---- Prowler's findings -------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # PASS, FAIL, MANUAL
    severity: str  # critical, high, medium, low, informational
    resource: str  # the resource's ARN (uid)
    resource_name: str
    region: str
    message: str

    @property
    def failing(self) -> bool:
        return self.status == "FAIL" and self.severity in FAILING

    def describe(self) -> str:
        return f"{self.severity} {self.check} on {self.resource or self.resource_name} ({self.region}): {self.message}"


def findings(path: Path) -> list[Finding]:
    """The findings of a Prowler OCSF JSON report (a list of OCSF Detection Findings)."""
    out: list[Finding] = []
    for item in json.loads(path.read_text() or "[]"):
        resource = (item.get("resources") or [{}])[0]
        out.append(Finding(
            check=str(item.get("metadata", {}).get("event_code", "")),
            status=str(item.get("status_code", "")).upper(),
            severity=str(item.get("severity", "")).lower(),
            resource=str(resource.get("uid", "")),
            resource_name=str(resource.get("name", "")),
            region=str(resource.get("region", "")),
            message=str(item.get("status_detail") or item.get("message", "")),
        ))
    return out


@dataclass
class Scan:
    """One Prowler run: its findings and what it ran."""

    version: str
    findings: list[Finding]
    checks: int
    duration_s: float
    command: list[str] = field(default_factory=list)


def executable(root: Path) -> Path:
    """Prowler's executable: $FINKS_PROWLER, .venv-prowler/bin/prowler, else one on PATH."""
    for candidate in (os.environ.get(PROWLER_VARIABLE), root / ".venv-prowler" / "bin" / "prowler",
                      shutil.which("prowler")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ConfigError("Prowler is not installed (no $FINKS_PROWLER, no .venv-prowler/bin/prowler, none on PATH)",
                      hint="run `bash tools/install-prowler.sh` (`make install` does)")


def _environment(live: Live) -> dict[str, str]:
    """The probe's own AWS environment, without the project's Python paths (Prowler has its own venv)."""
    from core.aws import endpoint_for

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    endpoint = endpoint_for(live.settings)
    if endpoint:  # FINKS_S3_ENDPOINT_URL counts for every service here: boto3 reads only AWS_ENDPOINT_URL
        env["AWS_ENDPOINT_URL"] = endpoint
        # S3 Control puts the account id in front of the host (123456789012.127.0.0.1): not for an endpoint of ours.
        env["AWS_DISABLE_HOST_PREFIX_INJECTION"] = "true"
    env.update(AWS_DEFAULT_REGION=live.settings.region, NO_COLOR="1")
    return env


def run(live: Live, out_dir: Path) -> Scan:
    """Run Prowler over the environment's account and region; the OCSF report goes to ``out_dir``."""
    prowler = executable(live.ctx.root)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    command = [str(prowler), "aws", "--region", live.settings.region, "--service", *SERVICES,
               "--severity", *SEVERITIES, "--excluded-check", *NOT_THE_STACKS,
               "--output-formats", "json-ocsf", "--output-directory", str(out_dir), "--output-filename", "scan",
               # exit code 3 means "some check failed": the findings say which, the verdict is ours
               "--ignore-exit-code-3", "--no-banner", "--no-color",
               "--log-level", "ERROR", "--log-file", str(out_dir / "prowler.log")]
    start = time.monotonic()
    try:
        proc = subprocess.run(command, env=_environment(live), capture_output=True, text=True, timeout=TIMEOUT_S,
                              cwd=out_dir)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Prowler did not finish in {TIMEOUT_S} s ({' '.join(command)})") from None
    duration = time.monotonic() - start
    report = out_dir / "scan.ocsf.json"
    if proc.returncode != 0 or not report.is_file():
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise RuntimeError(f"Prowler exited {proc.returncode} without a report at {report}: {tail}")
    executed = re.search(r"Executing (\d+) checks", proc.stdout)
    return Scan(_version(prowler), findings(report), int(executed.group(1)) if executed else 0, duration, command)


def _version(prowler: Path) -> str:
    # The package metadata of Prowler's own venv (`prowler --version` would import every provider again).
    for meta in prowler.parent.parent.glob("lib/python*/site-packages/prowler-*.dist-info/METADATA"):
        found = re.search(r"^Version: (\S+)", meta.read_text(), re.M)
        if found:
            return found.group(1)
    proc = subprocess.run([str(prowler), "--version"], capture_output=True, text=True, timeout=300)
    return proc.stdout.strip().removeprefix("Prowler ")


# ---- the verdict --------------------------------------------------------------------------------
@dataclass
class Verdict:
    unaccepted: list[Finding]
    accepted: list[tuple[Finding, Entry]]
    expired: list[Entry]  # entries past their date (they accept nothing)
    unused: list[Entry]  # live entries that accepted nothing in this scan
    artefacts: dict[str, int] = field(default_factory=dict)  # why -> findings set aside (emulator only)


def artefact(finding: Finding) -> str | None:
    """Why ``finding`` is one only an emulator gives (None: a real finding)."""
    for check, pattern, why in EMULATOR_ARTEFACTS:
        if finding.check == check and (pattern is None or re.fullmatch(pattern, finding.resource)):
            return f"{check}: {why}"
    return None


def judge(scan_findings: list[Finding], entries: list[Entry], today: date, emulated: bool = False) -> Verdict:
    """Which failing findings the allow-list's live entries accept, and which none does."""
    live_entries = [e for e in entries if not e.expired(today)]
    verdict = Verdict([], [], [e for e in entries if e.expired(today)], [])
    used: set[str] = set()
    for finding in (f for f in scan_findings if f.failing):
        why = artefact(finding) if emulated else None
        if why:
            verdict.artefacts[why] = verdict.artefacts.get(why, 0) + 1
            continue
        entry = next((e for e in live_entries if e.accepts(finding)), None)
        if entry is None:
            verdict.unaccepted.append(finding)
        else:
            verdict.accepted.append((finding, entry))
            used.add(entry.where)
    verdict.unused = [e for e in live_entries if e.where not in used]
    verdict.unaccepted.sort(key=lambda f: FAILING.index(f.severity))  # critical first
    return verdict


def _counts(scan_findings: list[Finding]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for f in scan_findings:
        by_status = counts.setdefault(f.severity, {})
        by_status[f.status] = by_status.get(f.status, 0) + 1
    return counts


def scan_clean(ctx: CheckContext) -> Evidence:
    """Prowler finds no high or critical failure on the environment's account that the reviewed
    allow-list does not accept (an expired entry accepts nothing)."""
    from validation.aws.live import Live

    live = Live.of(ctx)
    path = allowlist_path(ctx)
    entries = load_allowlist(path)  # before the scan: a malformed list costs seconds, not minutes
    # The stack first: a scan of an account it is not deployed in judges nothing of ours (and an
    # empty account's findings, no CloudTrail and the like, would read as the stack's).
    live.vpc_id()
    scan = run(live, ctx.work_dir / "prowler")
    verdict = judge(scan.findings, entries, date.today(), live.emulated)
    figures: dict[str, Any] = {
        "prowler_version": scan.version, "region": live.settings.region, "services": list(SERVICES),
        "severities": list(SEVERITIES), "excluded_checks": len(NOT_THE_STACKS), "checks_run": scan.checks,
        "duration_s": round(scan.duration_s, 1), "findings": len(scan.findings),
        "by_severity_and_status": _counts(scan.findings), "allowlist": str(path),
        "accepted": [{"check": f.check, "resource": f.resource or f.resource_name, "region": f.region,
                      "reason": e.reason, "reviewed_by": e.reviewed_by, "expires": str(e.expires), "entry": e.where}
                     for f, e in verdict.accepted],
        "expired_entries": [e.describe() for e in verdict.expired],
        "unused_entries": [e.describe() for e in verdict.unused],
        "report": str(ctx.work_dir / "prowler" / "scan.ocsf.json"),
        "scan_permissions": list(PERMISSIONS), "emulator_artefacts": verdict.artefacts,
    }
    if verdict.unaccepted:
        problems = [f"Prowler: {f.describe()}" for f in verdict.unaccepted]
        problems += [f"allow-list entry expired: {e.describe()}" for e in verdict.expired
                     if any(e.accepts(f) for f in verdict.unaccepted)]
        raise live.fail(problems, figures, remedy=(
            f"fix the resource (`finks infra up --env {ctx.env} --yes` puts back what the program declares), "
            f"or accept the risk with a reviewed entry in {ALLOWLIST} (check, resource pattern, reason, "
            f"reviewed_by, expires)"))
    notes = [f"set aside {n} finding(s) of {why}" for why, n in verdict.artefacts.items()]
    notes += ["moto runs no task, load balancer or database interface in the stack's security groups, and "
              "Prowler reads only groups in use: their rules are not examined here",
              "moto answers only the calls it models: a check whose calls fail is an error in Prowler's log "
              "and no finding (S3 Control's account-level public access block, among others)"]
    expired = f"; {len(verdict.expired)} allow-list entries expired" if verdict.expired else ""
    return live.evidence(
        f"Prowler {scan.version}: {scan.checks} high/critical checks over {len(SERVICES)} services in "
        f"{live.settings.region}, {sum(f.failing for f in scan.findings)} failing findings, "
        f"{len(verdict.accepted)} accepted by {path.name}, none unaccepted{expired}", figures, notes)
