"""API: the read API on Lambda (the same FastAPI app via Mangum) behind API Gateway REST.

Every method requires an API key; a usage plan throttles and caps it.
Athena queries run in a dedicated workgroup whose results land in the logs
bucket.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent


@dataclass(frozen=True)
class ApiArgs:
    common: Common
    role_arn: pulumi.Input[str]
    image_uri: pulumi.Input[str]
    handler: str
    logs_bucket: pulumi.Input[str]
    glue_database: pulumi.Input[str]
    log_retention_days: int
    rate_limit_rps: float = 20
    burst_limit: int = 40
    daily_quota: int = 50_000


class Api(FinksComponent):
    kind = "Api"

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.workgroup = aws.athena.Workgroup(
            self.child("athena"),
            name=f"{c.prefix}-api",
            force_destroy=False,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=10 * 1024**3,
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=pulumi.Output.concat("s3://", args.logs_bucket, "/athena-results/"),
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
            tags=c.tags,
            opts=self.opts(),
        )
        function_name = f"{c.prefix}-api"
        self.log_group = aws.cloudwatch.LogGroup(
            self.child("logs"), name=f"/aws/lambda/{function_name}", retention_in_days=args.log_retention_days,
            tags=c.tags, opts=self.opts(),
        )
        self.function = aws.lambda_.Function(
            self.child("fn"),
            name=function_name,
            package_type="Image",
            image_uri=args.image_uri,
            image_config=aws.lambda_.FunctionImageConfigArgs(commands=[args.handler]),
            role=args.role_arn,
            timeout=30,
            memory_size=1024,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "FINKS_ENV": c.env,
                    "FINKS_BUCKET_PREFIX": c.prefix,
                    "FINKS_ATHENA_WORKGROUP": self.workgroup.name,
                    "FINKS_GLUE_DATABASE": args.glue_database,
                    # dbt-athena publishes the marts into this schema (dbt_project/profiles.yml).
                    "FINKS_ATHENA_SCHEMA": f"{c.prefix.replace('-', '_')}_gold",
                }
            ),
            tags=c.tags,
            opts=self.opts(depends_on=[self.log_group]),
        )
        self.rest_api = aws.apigateway.RestApi(
            self.child("rest"),
            name=f"{c.prefix}-api",
            description="Finks read API over the gold marts",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            api_key_source="HEADER",
            tags=c.tags,
            opts=self.opts(),
        )
        validator = aws.apigateway.RequestValidator(
            self.child("validator"), rest_api=self.rest_api.id, name="params", validate_request_parameters=True,
            validate_request_body=True, opts=self.opts(),
        )
        proxy = aws.apigateway.Resource(
            self.child("proxy"), rest_api=self.rest_api.id, parent_id=self.rest_api.root_resource_id,
            path_part="{proxy+}", opts=self.opts(),
        )
        methods = []
        integrations = []
        for label, resource_id in (("root", self.rest_api.root_resource_id), ("proxy", proxy.id)):
            method = aws.apigateway.Method(
                self.child(f"{label}-any"), rest_api=self.rest_api.id, resource_id=resource_id, http_method="ANY",
                authorization="NONE", api_key_required=True, request_validator_id=validator.id,
                opts=self.opts(),
            )
            methods.append(method)
            integrations.append(
                aws.apigateway.Integration(
                    self.child(f"{label}-lambda"), rest_api=self.rest_api.id, resource_id=resource_id,
                    http_method=method.http_method, type="AWS_PROXY", integration_http_method="POST",
                    uri=self.function.invoke_arn, opts=self.opts(),
                )
            )
        aws.lambda_.Permission(
            self.child("invoke"), action="lambda:InvokeFunction", function=self.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/*/*"),
            opts=self.opts(),
        )
        deployment = aws.apigateway.Deployment(
            self.child("deployment"),
            rest_api=self.rest_api.id,
            # Redeploy when the routes change.
            triggers={"routes": hashlib.sha256(b"root-any|proxy-any|api-key").hexdigest()},
            opts=self.opts(depends_on=[*methods, *integrations]),
        )
        self.stage = aws.apigateway.Stage(
            self.child("stage"), rest_api=self.rest_api.id, deployment=deployment.id,
            # The app's routes already start with /v1: a stage named v1 would give /v1/v1/…
            stage_name=c.env,
            xray_tracing_enabled=True, tags=c.tags, opts=self.opts(),
        )
        self.api_key = aws.apigateway.ApiKey(
            self.child("key"), name=f"{c.prefix}-api-default", enabled=True, tags=c.tags, opts=self.opts(),
        )
        plan = aws.apigateway.UsagePlan(
            self.child("usage-plan"),
            name=f"{c.prefix}-api",
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=self.rest_api.id, stage=self.stage.stage_name)],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(rate_limit=args.rate_limit_rps, burst_limit=args.burst_limit),
            quota_settings=aws.apigateway.UsagePlanQuotaSettingsArgs(limit=args.daily_quota, period="DAY"),
            tags=c.tags,
            opts=self.opts(),
        )
        aws.apigateway.UsagePlanKey(
            self.child("usage-plan-key"), key_id=self.api_key.id, key_type="API_KEY", usage_plan_id=plan.id,
            opts=self.opts(),
        )
        self.function_name = self.function.name
        self.rest_api_name = self.rest_api.name
        self.url = self.stage.invoke_url
        self.register_outputs({"url": self.url, "function": self.function_name, "api_key_id": self.api_key.id})
