"""The edge's live probes on a deployed moto stack: the Prefect ALB (S6), the read API behind API
Gateway (S19: the AWS side, and over HTTPS through the stand-in gateway), the pipeline's trace in
X-Ray (S20). Each passes on the healthy stack and fails, naming the resource, with one thing broken.

Fixtures: tests/fixtures/deployed.py (``deployed_dev``) and tests/fixtures/edge.py (``edge_dev``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from finks.checks import CheckFailed
from validation.aws import api_gateway, edge, tracing

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed
    from tests.fixtures.edge import Edge

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

ALB = "validation.aws.edge:alb_https"
REST_API = "validation.aws.api_gateway:rest_api_deployed"
ENDPOINTS = "validation.aws.api_gateway:endpoints_with_key"
CACHE = "validation.aws.api_gateway:responses_cached"
TRACE = "validation.aws.tracing:pipeline_trace"


def _planned(d: Deployed, type_: str, contains: str) -> str:
    return str(d.stack.seeded.plan.one(type_, contains).name)


def _listeners(d: Deployed) -> dict[int, dict[str, Any]]:
    from validation.aws.live import Live

    lb = edge.load_balancer(Live.of(d.ctx()))
    return {int(li["Port"]): li for li in d.client("elbv2").describe_listeners(
        LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}


# ---- S6: the ALB ------------------------------------------------------------------------------
def test_alb_probe_passes_on_the_deployed_stack(deployed_dev: Deployed) -> None:
    evidence = edge.alb_https(deployed_dev.ctx())
    figures = evidence.figures
    assert figures["certificate"]["status"] == "ISSUED" and figures["certificate"]["domain"] == "prefect.dev.finks.example.com"
    assert figures["tls_policy"]["name"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert figures["tls_policy"]["protocols"] == ["TLSv1.2", "TLSv1.3"] and figures["redirect"] == "HTTP_301"
    assert len(figures["subnets"]) == 2 and figures["found_by"].startswith("stack outputs")
    assert "imported for the domain" in evidence.message


def test_alb_probe_finds_the_alb_by_its_tags(deployed_dev: Deployed, tmp_path: Path) -> None:
    evidence = edge.alb_https(deployed_dev.ctx(tmp_path / "no-outputs"))
    assert evidence.figures["found_by"] == "tags Project=finks, Environment=dev"


@pytest.mark.check_fails(ALB)
def test_alb_probe_fails_on_a_certificate_that_ends_soon(deployed_dev: Deployed) -> None:
    from validation.aws.seed_edge import self_signed

    https = _listeners(deployed_dev)[443]
    elb, acm = deployed_dev.client("elbv2"), deployed_dev.client("acm")
    current = https["Certificates"]
    cert, key = self_signed("prefect.dev.finks.example.com", days=10)
    soon = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    deployed_dev.undo(lambda: elb.modify_listener(ListenerArn=https["ListenerArn"], Certificates=current))
    elb.modify_listener(ListenerArn=https["ListenerArn"], Certificates=[{"CertificateArn": soon}])
    with pytest.raises(CheckFailed, match=r"^certificate for prefect.dev.finks.example.com ends in 9 days .* under 30") as exc:
        edge.alb_https(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails(ALB)
def test_alb_probe_fails_when_443_serves_plain_http(deployed_dev: Deployed) -> None:
    https = _listeners(deployed_dev)[443]
    elb = deployed_dev.client("elbv2")
    deployed_dev.undo(deployed_dev.again(_planned(deployed_dev, "aws:lb/listener:Listener", "prefect-https")))
    deployed_dev.undo(lambda: elb.delete_listener(ListenerArn=plain))
    elb.delete_listener(ListenerArn=https["ListenerArn"])
    plain = elb.create_listener(LoadBalancerArn=https["LoadBalancerArn"], Protocol="HTTP", Port=443,
                                DefaultActions=https["DefaultActions"])["Listeners"][0]["ListenerArn"]
    with pytest.raises(CheckFailed, match=r"^load balancer finks-dev-prefect has no HTTPS listener on 443 "
                                          r"\(443 is HTTP: no certificate\)"):
        edge.alb_https(deployed_dev.ctx())


@pytest.mark.check_fails(ALB)
def test_alb_probe_fails_on_a_tls_policy_that_offers_tls_1_0(deployed_dev: Deployed) -> None:
    https = _listeners(deployed_dev)[443]
    elb = deployed_dev.client("elbv2")
    deployed_dev.undo(lambda: elb.modify_listener(ListenerArn=https["ListenerArn"], SslPolicy=https["SslPolicy"]))
    elb.modify_listener(ListenerArn=https["ListenerArn"], SslPolicy="ELBSecurityPolicy-2016-08")
    with pytest.raises(CheckFailed, match=r"uses ELBSecurityPolicy-2016-08, which offers TLSv1, TLSv1.1: use TLS 1.2\+"):
        edge.alb_https(deployed_dev.ctx())


@pytest.mark.check_fails(ALB)
def test_alb_probe_fails_when_http_is_forwarded_instead_of_redirected(deployed_dev: Deployed) -> None:
    listeners = _listeners(deployed_dev)
    plain, https = listeners[80], listeners[443]
    elb = deployed_dev.client("elbv2")
    deployed_dev.undo(lambda: elb.modify_listener(ListenerArn=plain["ListenerArn"], DefaultActions=plain["DefaultActions"]))
    elb.modify_listener(ListenerArn=plain["ListenerArn"], DefaultActions=https["DefaultActions"])
    with pytest.raises(CheckFailed, match=r"^the HTTP listener of finks-dev-prefect does not redirect to HTTPS:443 "
                                          r"\(\['forward'\]\)"):
        edge.alb_https(deployed_dev.ctx())


# ---- S19: the API's AWS side --------------------------------------------------------------------
def test_rest_api_probe_passes_on_the_deployed_stack(deployed_dev: Deployed) -> None:
    evidence = api_gateway.rest_api_deployed(deployed_dev.ctx())
    figures = evidence.figures
    assert figures["rest_api"] == "finks-dev-api" and figures["stage"] == "dev"
    assert figures["lambda"]["command"] == ["api.lambda_handler.handler"] and figures["lambda"]["tracing"] == "Active"
    assert figures["lambda"]["log_group"]["retention_days"] == 30
    assert figures["usage_plans"][0]["quota"] == {"limit": 50000, "period": "DAY"}
    assert "key-required and proxied to Lambda finks-dev-api" in evidence.message


def test_rest_api_probe_finds_the_api_by_its_name_and_tags(deployed_dev: Deployed, tmp_path: Path) -> None:
    evidence = api_gateway.rest_api_deployed(deployed_dev.ctx(tmp_path / "no-outputs"))
    assert evidence.figures["id"] == deployed_dev.outputs["api_rest_api_id"]


@pytest.mark.check_fails(REST_API)
def test_rest_api_probe_fails_when_the_stage_is_not_deployed(deployed_dev: Deployed) -> None:
    gw = deployed_dev.client("apigateway")
    api = deployed_dev.outputs["api_rest_api_id"]
    deployed_dev.undo(deployed_dev.again(_planned(deployed_dev, "aws:apigateway/stage:Stage", "api-stage")))
    gw.delete_stage(restApiId=api, stageName="dev")
    with pytest.raises(CheckFailed, match=r"^stage dev of REST API finks-dev-api is not deployed: requests to it answer 403;") as exc:
        api_gateway.rest_api_deployed(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails(REST_API)
def test_rest_api_probe_fails_on_a_function_reading_another_workgroup(deployed_dev: Deployed) -> None:
    lam = deployed_dev.client("lambda")
    env = lam.get_function_configuration(FunctionName="finks-dev-api")["Environment"]
    deployed_dev.undo(lambda: lam.update_function_configuration(FunctionName="finks-dev-api", Environment=env))
    lam.update_function_configuration(FunctionName="finks-dev-api",
                                      Environment={"Variables": {**env["Variables"], "FINKS_ATHENA_WORKGROUP": "primary"}})
    with pytest.raises(CheckFailed, match=r"^Lambda function finks-dev-api has \{'FINKS_ATHENA_WORKGROUP': 'primary'\} "
                                          r"where the program sets \{'FINKS_ATHENA_WORKGROUP': 'finks-dev-api'\}"):
        api_gateway.rest_api_deployed(deployed_dev.ctx())


# ---- S19: over HTTPS, through the stand-in gateway ---------------------------------------------------
def test_endpoints_probe_passes_with_the_usage_plan_key(edge_dev: Edge) -> None:
    evidence = api_gateway.endpoints_with_key(edge_dev.ctx())
    figures = evidence.figures
    assert figures["status"] == {"with_key": 200, "without_key": 403, "invalid_parameter": 422, "openapi": 200}
    assert figures["rows"] == 2 and figures["url"] == f"{edge_dev.gateway.url}/dev"
    assert "stands in for it" in evidence.message
    assert ("/dev/v1/portfolios", 403) in edge_dev.gateway.requests  # refused by the gateway, not the app


@pytest.mark.check_fails(ENDPOINTS)
def test_endpoints_probe_fails_when_a_method_stops_requiring_the_key(edge_dev: Edge) -> None:
    d = edge_dev.deployed
    gw = d.client("apigateway")
    api = d.outputs["api_rest_api_id"]
    proxy = next(r["id"] for r in gw.get_resources(restApiId=api)["items"] if r["path"] == "/{proxy+}")
    d.undo(d.again(_planned(d, "aws:apigateway/integration:Integration", "proxy-lambda")))
    d.undo(d.again(_planned(d, "aws:apigateway/method:Method", "proxy-any")))
    gw.put_method(restApiId=api, resourceId=proxy, httpMethod="ANY", authorizationType="NONE", apiKeyRequired=False)
    with pytest.raises(CheckFailed, match=r"^GET /v1/portfolios without an API key answered 200, not 403: "
                                          r"the API does not enforce its key;") as exc:
        api_gateway.endpoints_with_key(edge_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails(ENDPOINTS)
@pytest.mark.check_fails(CACHE)
def test_http_probes_fail_when_the_usage_plan_loses_its_key(edge_dev: Edge) -> None:
    gw = edge_dev.deployed.client("apigateway")
    plan = next(p for p in gw.get_usage_plans()["items"] if p["name"] == "finks-dev-api")
    (key,) = gw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    edge_dev.deployed.undo(lambda: gw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY"))
    gw.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
    for probe in (api_gateway.endpoints_with_key, api_gateway.responses_cached):
        with pytest.raises(CheckFailed, match=r"^no enabled API key in a usage plan of stage dev: the API cannot be called"):
            probe(edge_dev.ctx())


def test_cache_probe_passes_on_an_etag_revalidation(edge_dev: Edge) -> None:
    evidence = api_gateway.responses_cached(edge_dev.ctx())
    assert evidence.figures["revalidated"] == 304 and evidence.figures["etag"]
    assert "max-age=" in evidence.figures["cache_control"]


@pytest.mark.check_fails(CACHE)
def test_cache_probe_fails_when_the_gateway_strips_the_etag(edge_dev: Edge) -> None:
    handler = edge_dev.gateway.handler

    def strip(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # A gateway (or a proxy before it) that drops the validator: clients cannot revalidate.
        result = handler(event, context)
        for headers in (result.get("headers") or {}, result.get("multiValueHeaders") or {}):
            for name in [h for h in headers if h.lower() == "etag"]:
                del headers[name]
        return result

    edge_dev.gateway.handler = strip
    with pytest.raises(CheckFailed, match=r"^GET /v1/portfolios carries no ETag: clients cannot revalidate"):
        api_gateway.responses_cached(edge_dev.ctx())


# ---- S20: the pipeline's trace in X-Ray -----------------------------------------------------------
def test_trace_probe_passes_on_the_latest_runs_trace(edge_dev: Edge) -> None:
    evidence = tracing.pipeline_trace(edge_dev.ctx())
    figures = evidence.figures
    assert figures["run_id"] == edge_dev.run_id and figures["trace_id"].startswith("1-")
    assert set(figures["seconds"]) == {"daily-pipeline", "ingestion", "transformation", "dbt", "publish"}
    assert all(s > 0 for s in figures["seconds"].values())


@pytest.mark.check_fails(TRACE)
def test_trace_probe_fails_when_the_latest_run_lacks_its_dbt_segment(edge_dev: Edge) -> None:
    edge_dev.deployed.undo(edge_dev.trace)  # a newer, whole run's trace puts the stack back
    broken = edge_dev.trace(skip="dbt")
    with pytest.raises(CheckFailed, match=rf"^trace 1-\w+-\w+ of run {broken} \(.*\) has no dbt segment;") as exc:
        tracing.pipeline_trace(edge_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails(TRACE)
def test_trace_probe_fails_when_no_run_of_this_environment_was_traced(edge_dev: Edge) -> None:
    from core.paths import REPO_ROOT
    from finks.checks import CheckContext

    # The dev runs' traces are in X-Ray; staging's are not (same emulator, the staging env's probe).
    state = edge_dev.deployed.state_dir / "staging"
    ctx = CheckContext("staging", REPO_ROOT, state, state / "work", "", "under-test")
    with pytest.raises(CheckFailed, match=r"^no 'daily-pipeline' trace of staging in X-Ray in the last 36 h"):
        tracing.pipeline_trace(ctx)


def test_trace_ids_keep_the_w3c_id_in_x_rays_form() -> None:
    from validation.aws.seed_edge import segments, xray_trace_id

    assert xray_trace_id("5759e988bd862e3fe1be46a994272793") == "1-5759e988-bd862e3fe1be46a994272793"
    start = dt.datetime(2024, 3, 14, tzinfo=dt.UTC).isoformat()
    root, child = segments([
        {"trace_id": "a" * 32, "span_id": "1" * 16, "parent": None, "name": "daily-pipeline", "start": start,
         "end": start, "status": "OK", "attributes": {"finks.step": "daily-pipeline"}},
        {"trace_id": "a" * 32, "span_id": "2" * 16, "parent": "1" * 16, "name": "dbt", "start": start, "end": start,
         "status": "ERROR", "attributes": {}}], "finks-pipeline")
    assert root["name"] == "finks-pipeline" and "parent_id" not in root
    assert (child["type"], child["parent_id"], child["name"], child["fault"]) == ("subsegment", "1" * 16, "dbt", True)
