"""How a probe finds the deployed stack: its recorded outputs, else the program's tags.

`finks infra up` records the stack's outputs (``infra.deploy.record_outputs``);
a probe reads names and ids from there. Where the outputs are missing (a stack
deployed by hand with `pulumi up`, an older finks) it looks the resources up
by the tags every resource of the program carries — ``Project`` and
``Environment`` (``infra.config.InfraConfig.tags``) — or, for the few that take
no tags (dashboards), by the program's naming prefix. No ARN is ever written
in a check.

Every client comes from ``core.aws`` (so ``AWS_ENDPOINT_URL`` points the
probes at an emulator) and is watched by :mod:`validation.aws.policy`, which
turns the calls the probes make into the read-only IAM policy they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from finks.checks import CheckContext, CheckFailed, CheckSkipped, Evidence

if TYPE_CHECKING:
    from core.settings import Settings
    from infra.config import InfraConfig
    from infra.plan import Plan


@dataclass
class Live:
    """One probe's view of one environment's deployed stack."""

    ctx: CheckContext
    settings: Settings
    outputs: dict[str, Any]
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: CheckContext) -> Live:
        from infra.deploy import recorded_outputs, require_aws_credentials

        if ctx.env == "local":
            raise CheckSkipped("local has no AWS stack: the live probes read dev, staging and prod")
        settings = ctx.settings
        require_aws_credentials(settings.region)  # DeployUnavailable: an error naming what to do
        return cls(ctx, settings, recorded_outputs(ctx.env, ctx.state_dir))

    # ---- what to compare with: the program's own config and plan ----------------
    @cached_property
    def config(self) -> InfraConfig:
        from core.environments import infra_stack
        from infra.config import load

        return load(infra_stack(self.ctx.env), settings=self.settings)

    @cached_property
    def plan(self) -> Plan:
        """What the program declares for this stack (its dry plan): the probes' expectation."""
        from infra.plan import plan_for

        return plan_for(self.settings)

    @property
    def tags(self) -> dict[str, str]:
        """The tags that mark this stack's resources (Project, Environment)."""
        return {k: v for k, v in self.config.tags.items() if k in ("Project", "Environment")}

    @property
    def tag_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.tags.items())

    def tagged(self, tags: list[dict[str, Any]] | dict[str, str] | None, key: str = "Key", value: str = "Value") -> bool:
        """Whether a resource's tags (a list of pairs or a map) carry this stack's tags."""
        if isinstance(tags, dict):
            have = {str(k): str(v) for k, v in tags.items()}
        else:
            have = {str(t.get(key)): str(t.get(value)) for t in tags or []}
        return all(have.get(k) == v for k, v in self.tags.items())

    # ---- clients, outputs, evidence --------------------------------------------------
    def client(self, service: str) -> Any:
        if service not in self._clients:
            from core.aws import client as aws_client
            from validation.aws.policy import watch

            self._clients[service] = watch(aws_client(self.settings, service))
        return self._clients[service]

    @property
    def endpoint(self) -> str:
        from core.aws import endpoint_for

        return endpoint_for(self.settings) or f"AWS ({self.settings.region})"

    @property
    def emulated(self) -> bool:
        """Reading an emulator (an endpoint other than AWS's own): some behaviour is not modelled."""
        from core.aws import endpoint_for

        return endpoint_for(self.settings) is not None

    def output(self, key: str) -> Any:
        return self.outputs.get(key)

    @property
    def found_by(self) -> str:
        from infra.deploy import outputs_path

        if self.outputs:
            return f"stack outputs ({outputs_path(self.ctx.env, self.ctx.state_dir)})"
        return f"tags {self.tag_text}"

    def redeploy(self) -> str:
        return (f"run `finks infra up --env {self.ctx.env} --yes` to put back what the program declares "
                f"(`pulumi preview --stack {self.ctx.env}` shows the drift)")

    def evidence(self, message: str, figures: dict[str, Any], notes: list[str] | None = None) -> Evidence:
        """Passing evidence that says where it read, how it found the resources and what an emulator cannot show."""
        figures = {**figures, "endpoint": self.endpoint, "found_by": self.found_by}
        if self.emulated and notes:
            figures["emulator_limits"] = notes
            message += " (emulator: " + "; ".join(notes) + ")"
        return Evidence(message, figures)

    def fail(self, problems: list[str], figures: dict[str, Any], remedy: str | None = None) -> CheckFailed:
        """A failure naming the first problem, the count, and what to do."""
        head = problems[0] if len(problems) == 1 else f"{problems[0]} (and {len(problems) - 1} more)"
        figures = {**figures, "problems": problems, "endpoint": self.endpoint, "found_by": self.found_by}
        return CheckFailed(f"{head}; {remedy or self.redeploy()}", figures=figures, excerpt="\n".join(problems))

    def nothing_deployed(self, what: str) -> CheckFailed:
        from infra.deploy import outputs_path

        return CheckFailed(
            f"no {what} on {self.ctx.env}: no stack outputs at {outputs_path(self.ctx.env, self.ctx.state_dir)} "
            f"and nothing tagged {self.tag_text}; run `finks infra up --env {self.ctx.env} --yes` first",
            figures={"endpoint": self.endpoint})

    # ---- discovery: outputs first, tags second -----------------------------------------
    def vpc_id(self) -> str:
        if self.output("vpc_id"):
            return str(self.output("vpc_id"))
        vpcs = self.client("ec2").describe_vpcs(Filters=self._ec2_filters())["Vpcs"]
        if len(vpcs) != 1:
            if not vpcs:
                raise self.nothing_deployed("VPC")
            raise CheckFailed(f"{len(vpcs)} VPCs are tagged {self.tag_text}: {[v['VpcId'] for v in vpcs]}; "
                              f"record the stack's outputs with `finks infra up --env {self.ctx.env} --yes`")
        return str(vpcs[0]["VpcId"])

    def _ec2_filters(self) -> list[dict[str, Any]]:
        return [{"Name": f"tag:{k}", "Values": [v]} for k, v in self.tags.items()]

    def security_groups(self) -> dict[str, str]:
        """role -> group id: alb, prefect_server, database, tasks, endpoints."""
        if self.output("security_groups"):
            return {str(k): str(v) for k, v in self.output("security_groups").items()}
        groups = self.client("ec2").describe_security_groups(
            Filters=[*self._ec2_filters(), {"Name": "vpc-id", "Values": [self.vpc_id()]}])["SecurityGroups"]
        # The program names each group `<component>-<suffix>` (its Name tag).
        suffixes = {"alb": "-alb-sg", "prefect_server": "-service-sg", "database": "-db-sg", "tasks": "-tasks-sg",
                    "endpoints": "-endpoints-sg"}
        found: dict[str, str] = {}
        for g in groups:
            name = next((t["Value"] for t in g.get("Tags", []) if t["Key"] == "Name"), "")
            for role, suffix in suffixes.items():
                if name.endswith(suffix):
                    found[role] = g["GroupId"]
        return found

    def buckets(self) -> dict[str, str]:
        """zone -> bucket name (logs, bronze, silver, gold)."""
        from botocore.exceptions import ClientError

        if self.output("buckets"):
            return {str(k): str(v) for k, v in self.output("buckets").items()}
        s3 = self.client("s3")
        found: dict[str, str] = {}
        for b in s3.list_buckets().get("Buckets", []):
            try:
                tags = s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"]
            except ClientError:
                continue  # untagged, or not ours to read
            zone = next((t["Value"] for t in tags if t["Key"] == "Zone"), None)
            if zone and self.tagged(tags):
                found[zone] = b["Name"]
        return found

    def secret_name(self) -> str:
        if self.output("fmp_secret_name"):
            return str(self.output("fmp_secret_name"))
        pages = self.client("secretsmanager").get_paginator("list_secrets").paginate()
        for page in pages:
            for secret in page.get("SecretList", []):
                if self.tagged(secret.get("Tags")) and secret["Name"].endswith("/fmp-api-key"):
                    return str(secret["Name"])
        raise self.nothing_deployed("FMP key secret")

    def roles(self) -> dict[str, str]:
        """key -> role name of the program's task, worker, Glue and Lambda roles."""
        if self.output("iam_roles"):
            return {str(k): str(v) for k, v in self.output("iam_roles").items()}
        iam = self.client("iam")
        prefix = f"{self.config.prefix}-"
        found: dict[str, str] = {}
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                name = role["RoleName"]
                if name.startswith(prefix) and self.tagged(iam.list_role_tags(RoleName=name)["Tags"]):
                    found[name[len(prefix):]] = name
        return found

    def cluster_name(self) -> str:
        if self.output("ecs_cluster_name"):
            return str(self.output("ecs_cluster_name"))
        ecs = self.client("ecs")
        arns = ecs.list_clusters().get("clusterArns", [])
        if arns:
            for cluster in ecs.describe_clusters(clusters=arns, include=["TAGS"])["clusters"]:
                if self.tagged(cluster.get("tags"), "key", "value"):
                    return str(cluster["clusterName"])
        raise self.nothing_deployed("ECS cluster")

    def task_families(self) -> dict[str, str]:
        """task -> family (prefect-server, prefect-worker, worker, fmp-connector, dbt)."""
        if self.output("ecs_task_families"):
            return {str(k): str(v) for k, v in self.output("ecs_task_families").items()}
        prefix = f"{self.config.prefix}-"
        families = self.client("ecs").list_task_definition_families(familyPrefix=prefix, status="ACTIVE")["families"]
        return {f[len(prefix):]: f for f in families}

    def repositories(self) -> dict[str, str]:
        """repository key -> repository name."""
        if self.output("ecr_repositories"):
            return {str(k): str(url).split("/", 1)[1] for k, url in self.output("ecr_repositories").items()}
        ecr = self.client("ecr")
        found: dict[str, str] = {}
        for page in ecr.get_paginator("describe_repositories").paginate():
            for repo in page["repositories"]:
                tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
                if self.tagged(tags):
                    found[repo["repositoryName"].split("/", 1)[-1]] = repo["repositoryName"]
        return found

    def log_groups(self) -> dict[str, str]:
        """task -> the log group its containers write to."""
        if self.output("log_groups"):
            return {str(k): str(v) for k, v in self.output("log_groups").items()}
        logs = self.client("logs")
        prefix = f"/{self.config.project}/{self.ctx.env}/ecs/"
        groups = logs.describe_log_groups(logGroupNamePrefix=prefix).get("logGroups", [])
        return {g["logGroupName"][len(prefix):]: g["logGroupName"] for g in groups}

    def db_identifier(self) -> str:
        if self.output("db_identifier"):
            return str(self.output("db_identifier"))
        for db in self.client("rds").describe_db_instances()["DBInstances"]:
            if self.tagged(db.get("TagList")):
                return str(db["DBInstanceIdentifier"])
        raise self.nothing_deployed("RDS instance")

    def topic_arn(self) -> str:
        if self.output("alerts_topic_arn"):
            return str(self.output("alerts_topic_arn"))
        sns = self.client("sns")
        for page in sns.get_paginator("list_topics").paginate():
            for topic in page["Topics"]:
                arn = topic["TopicArn"]
                if arn.endswith(":" + f"{self.config.prefix}-alerts") and \
                        self.tagged(sns.list_tags_for_resource(ResourceArn=arn)["Tags"]):
                    return str(arn)
        raise self.nothing_deployed("SNS alert topic")

    def dashboards(self) -> dict[str, str]:
        """platform / pipeline -> dashboard name (dashboards take no tags: the program's prefix)."""
        if self.output("dashboards"):
            return {str(k): str(v) for k, v in self.output("dashboards").items()}
        prefix = f"{self.config.prefix}-"
        entries = self.client("cloudwatch").list_dashboards(DashboardNamePrefix=prefix).get("DashboardEntries", [])
        return {e["DashboardName"][len(prefix):]: e["DashboardName"] for e in entries}

    def alarms(self) -> dict[str, str]:
        """alarm key -> alarm name."""
        if self.output("alarms"):
            return {str(k): str(v) for k, v in self.output("alarms").items()}
        prefix = f"{self.config.prefix}-"
        found = self.client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix).get("MetricAlarms", [])
        return {a["AlarmName"][len(prefix):]: a["AlarmName"] for a in found}
