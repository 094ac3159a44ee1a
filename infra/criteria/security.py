"""S21: hardening and the policy scan."""

from __future__ import annotations

from infra.criteria.common import Result, one, require
from infra.plan import Plan, PlannedResource


def _endpoint_service(e: PlannedResource) -> str:
    name = str(e.inputs.get("serviceName", ""))
    return name.split(".", 3)[-1] if ".ecr." in name else name.rsplit(".", 1)[-1]


def security_hardening(plan: Plan) -> Result:
    from infra.policies import no_wildcard_iam

    one(plan, "aws:guardduty/detector:Detector")
    rules = plan.of_type("aws:cfg/rule:Rule")
    require(len(rules) >= 5, "fewer than 5 AWS Config rules", rules=len(rules))
    one(plan, "aws:cfg/recorderStatus:RecorderStatus")
    trail = one(plan, "aws:cloudtrail/trail:Trail")
    require(trail.inputs.get("enableLogFileValidation") is True, "CloudTrail log validation off")
    endpoints = sorted(_endpoint_service(e) for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"))
    for svc in ("s3", "secretsmanager", "logs", "ecr.api", "ecr.dkr"):
        require(svc in endpoints, f"no VPC endpoint for {svc}", endpoints=endpoints)
    require(not list(no_wildcard_iam(plan)), "wildcard IAM present")
    return f"GuardDuty, {len(rules)} Config rules, CloudTrail, VPC endpoints {endpoints}, no wildcard IAM", {"config_rules": len(rules), "endpoints": endpoints}


def policy_scan_clean(plan: Plan) -> Result:
    """Every policy rule of infra/policies.py holds for every planned resource."""
    from infra.policies import RULES, check

    require(bool(plan.custom), "the plan holds no resources: nothing was scanned")
    violations = check(plan)
    require(not violations, f"{len(violations)} policy violation(s): {violations[0] if violations else ''}",
             violations=[str(v) for v in violations])
    return (f"{len(RULES)} policy rules, {len(plan.custom)} resources, no violation",
            {"rules": list(RULES), "resources": len(plan.custom)})
