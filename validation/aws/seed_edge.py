"""Seeding handlers for the stack's edge: the Prefect ALB and its certificate, the read API
(API Gateway REST, usage plan, key) and its Lambda function; and the pipeline's traces in X-Ray.

Where the emulator cannot do what AWS does, the handler says so here:

* **ACM**: the program requests an Amazon-issued certificate validated by DNS. AWS issues it
  once the validation record exists (the program writes it when finks:hostedZoneId is set,
  else someone adds it by hand), and an HTTPS listener cannot be made before. The emulator
  sees no DNS and keeps a requested certificate PENDING_VALIDATION, so the handler *imports*
  a certificate for the program's domain instead: ISSUED, valid for :data:`CERT_DAYS` days,
  of type IMPORTED where AWS's would be AMAZON_ISSUED (the probes say so in their evidence).
* **API Gateway / Lambda**: the control plane is seeded as declared; the emulator runs neither
  the API's data plane nor the function's image (a test stands a local gateway in front of the
  platform's handler, tests/fixtures/edge.py).
* **X-Ray**: :func:`activity` (what a pipeline run leaves, for ``seed.activity`` to call) makes
  a daily-pipeline run's spans with the platform's tracing code (``flows.tracing``) and
  :func:`put_trace` turns them into the segment documents the ADOT collector's awsxray exporter
  sends, put with PutTraceSegments.

The mocks of the dry plan compute some attributes from a resource's name (``infra.plan``'s
fake state: DNS names, ARN suffixes, invoke URLs); each handler maps those to the emulator's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from validation.aws.seeding import MOCK_REGION, Made, Seeder, handles, pascal, tag_list, tag_map

if TYPE_CHECKING:
    from infra.plan import PlannedResource

CERT_DAYS = 365  # what ACM gives an issued certificate: 13 months, renewed 60 days before it ends


# ---- certificate -------------------------------------------------------------------
def self_signed(domain: str, days: int = CERT_DAYS, not_before: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A certificate for ``domain`` valid ``days`` days, and its key (PEM): what the emulator imports."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


@handles("aws:acm/certificate:Certificate")
def _certificate(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    cert, key = self_signed(i["domainName"])
    arn = s.client("acm").import_certificate(Certificate=cert, PrivateKey=key, Tags=tag_list(i))["CertificateArn"]
    return arn, arn


# ---- load balancer -------------------------------------------------------------------
@handles("aws:lb/loadBalancer:LoadBalancer")
def _load_balancer(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    elb = s.client("elbv2")
    lb = elb.create_load_balancer(
        Name=i["name"], Subnets=i.get("subnets", []), SecurityGroups=i.get("securityGroups", []),
        Scheme="internal" if i.get("internal") else "internet-facing", Type=i.get("loadBalancerType", "application"),
        Tags=tag_list(i))["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    logs = i.get("accessLogs") or {}
    attributes = [{"Key": "access_logs.s3.enabled", "Value": str(bool(logs.get("enabled"))).lower()},
                  {"Key": "access_logs.s3.bucket", "Value": str(logs.get("bucket", ""))},
                  {"Key": "access_logs.s3.prefix", "Value": str(logs.get("prefix", ""))}] if logs else []
    if "dropInvalidHeaderFields" in i:
        attributes.append({"Key": "routing.http.drop_invalid_header_fields.enabled",
                           "Value": str(bool(i["dropInvalidHeaderFields"])).lower()})
    if "idleTimeout" in i:
        attributes.append({"Key": "idle_timeout.timeout_seconds", "Value": str(int(i["idleTimeout"]))})
    if attributes:
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=attributes)
    s.refs.add(f"{r.name}.elb.amazonaws.com", lb["DNSName"])
    s.refs.add(f"app/{r.name}/1", arn.split(":loadbalancer/", 1)[1])  # the alarms' LoadBalancer dimension
    return arn, arn


@handles("aws:lb/targetGroup:TargetGroup")
def _target_group(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    elb = s.client("elbv2")
    check = i.get("healthCheck") or {}
    kwargs: dict[str, Any] = {"Name": i["name"], "Protocol": i.get("protocol", "HTTP"), "Port": int(i["port"]),
                              "VpcId": i["vpcId"], "TargetType": i.get("targetType", "instance"), "Tags": tag_list(i)}
    for key, api in (("path", "HealthCheckPath"), ("interval", "HealthCheckIntervalSeconds"),
                     ("timeout", "HealthCheckTimeoutSeconds"), ("healthyThreshold", "HealthyThresholdCount"),
                     ("unhealthyThreshold", "UnhealthyThresholdCount")):
        if key in check:
            kwargs[api] = check[key] if key == "path" else int(check[key])
    if check.get("matcher"):
        kwargs["Matcher"] = {"HttpCode": str(check["matcher"])}
    arn = elb.create_target_group(**kwargs)["TargetGroups"][0]["TargetGroupArn"]
    if "deregistrationDelay" in i:
        elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(int(i["deregistrationDelay"]))}])
    s.refs.add(f"targetgroup/{r.name}/1", arn.split(":", 5)[5])
    return arn, arn


def _action(action: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": action["type"]}
    if action.get("targetGroupArn"):
        out["TargetGroupArn"] = action["targetGroupArn"]
    if action.get("redirect"):
        out["RedirectConfig"] = pascal(action["redirect"])
    return out


@handles("aws:lb/listener:Listener")
def _listener(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"LoadBalancerArn": i["loadBalancerArn"], "Protocol": i.get("protocol", "HTTP"),
                              "Port": int(i["port"]), "DefaultActions": [_action(a) for a in i.get("defaultActions", [])],
                              "Tags": tag_list(i)}
    if i.get("sslPolicy"):
        kwargs["SslPolicy"] = i["sslPolicy"]
    if i.get("certificateArn"):
        kwargs["Certificates"] = [{"CertificateArn": i["certificateArn"]}]
    arn = s.client("elbv2").create_listener(**kwargs)["Listeners"][0]["ListenerArn"]
    return arn, arn


# ---- the read API: Lambda and API Gateway ----------------------------------------------
@handles("aws:lambda/function:Function")
def _function(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"FunctionName": i["name"], "Role": i["role"], "Tags": tag_map(i),
                              "PackageType": i.get("packageType", "Zip"), "Timeout": int(i.get("timeout", 3)),
                              "MemorySize": int(i.get("memorySize", 128))}
    if kwargs["PackageType"] == "Image":
        kwargs["Code"] = {"ImageUri": i["imageUri"]}
        if (i.get("imageConfig") or {}).get("commands"):
            kwargs["ImageConfig"] = {"Command": i["imageConfig"]["commands"]}
    else:
        kwargs.update(Runtime=i.get("runtime"), Handler=i.get("handler"), Code={"ZipFile": b"seeded"})
    if (i.get("tracingConfig") or {}).get("mode"):
        kwargs["TracingConfig"] = {"Mode": i["tracingConfig"]["mode"]}
    if (i.get("environment") or {}).get("variables"):
        kwargs["Environment"] = {"Variables": {k: str(v) for k, v in i["environment"]["variables"].items()}}
    arn = s.client("lambda").create_function(**kwargs)["FunctionArn"]
    # API Gateway integrations name the function by its invoke ARN.
    s.refs.add(f"arn:aws:apigateway:{MOCK_REGION}:lambda:path/functions/{r.name}/invocations",
               f"arn:aws:apigateway:{s.settings.region}:lambda:path/2015-03-31/functions/{arn}/invocations")
    return i["name"], arn


@handles("aws:lambda/permission:Permission")
def _permission(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs = {"FunctionName": i["function"], "StatementId": i.get("statementId", r.name[-100:]),
              "Action": i["action"], "Principal": i["principal"]}
    if i.get("sourceArn"):
        kwargs["SourceArn"] = i["sourceArn"]
    s.client("lambda").add_permission(**kwargs)
    return None


@handles("aws:apigateway/restApi:RestApi")
def _rest_api(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"name": i["name"], "description": i.get("description", ""), "tags": tag_map(i)}
    if i.get("apiKeySource"):
        kwargs["apiKeySource"] = i["apiKeySource"]
    types = (i.get("endpointConfiguration") or {}).get("types")
    if types:
        kwargs["endpointConfiguration"] = {"types": [types] if isinstance(types, str) else list(types)}
    api = s.client("apigateway").create_rest_api(**kwargs)
    return api["id"], f"arn:aws:apigateway:{s.settings.region}::/restapis/{api['id']}"


def _resource_id(s: Seeder, api: str, resource: str) -> str:
    """The emulator's id of a resource; the mocks call every REST API's root resource "root"."""
    if resource != "root":
        return resource
    items = s.client("apigateway").get_resources(restApiId=api)["items"]
    return str(next(item["id"] for item in items if item["path"] == "/"))


@handles("aws:apigateway/requestValidator:RequestValidator")
def _validator(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    made = s.client("apigateway").create_request_validator(
        restApiId=i["restApi"], name=i.get("name", r.name), validateRequestBody=bool(i.get("validateRequestBody")),
        validateRequestParameters=bool(i.get("validateRequestParameters")))
    return made["id"], ""


@handles("aws:apigateway/resource:Resource")
def _resource(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    made = s.client("apigateway").create_resource(restApiId=i["restApi"], pathPart=i["pathPart"],
                                                  parentId=_resource_id(s, i["restApi"], i["parentId"]))
    return made["id"], ""


@handles("aws:apigateway/method:Method")
def _method(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"restApiId": i["restApi"], "resourceId": _resource_id(s, i["restApi"], i["resourceId"]),
                              "httpMethod": i["httpMethod"], "authorizationType": i.get("authorization", "NONE"),
                              "apiKeyRequired": bool(i.get("apiKeyRequired"))}
    if i.get("requestValidatorId"):
        kwargs["requestValidatorId"] = i["requestValidatorId"]
    s.client("apigateway").put_method(**kwargs)
    return None


@handles("aws:apigateway/integration:Integration")
def _integration(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("apigateway").put_integration(
        restApiId=i["restApi"], resourceId=_resource_id(s, i["restApi"], i["resourceId"]), httpMethod=i["httpMethod"],
        type=i["type"], integrationHttpMethod=i.get("integrationHttpMethod", "POST"), uri=i.get("uri", ""))
    return None


@handles("aws:apigateway/deployment:Deployment")
def _deployment(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    made = s.client("apigateway").create_deployment(restApiId=i["restApi"], description=i.get("description", r.name))
    return made["id"], ""


@handles("aws:apigateway/stage:Stage")
def _stage(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    api, stage = i["restApi"], i["stageName"]
    s.client("apigateway").create_stage(restApiId=api, stageName=stage, deploymentId=i["deployment"],
                                        tracingEnabled=bool(i.get("xrayTracingEnabled")), tags=tag_map(i))
    # The mocks build the invoke URL from the stage's own name; AWS from the REST API's id.
    s.refs.add(f"https://{r.name}-id.execute-api.{MOCK_REGION}.amazonaws.com/{stage}",
               f"https://{api}.execute-api.{s.settings.region}.amazonaws.com/{stage}")
    return f"ags-{api}-{stage}", f"arn:aws:apigateway:{s.settings.region}::/restapis/{api}/stages/{stage}"


@handles("aws:apigateway/apiKey:ApiKey")
def _api_key(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    made = s.client("apigateway").create_api_key(name=i["name"], description=i.get("description", ""),
                                                 enabled=bool(i.get("enabled", True)), tags=tag_map(i))
    return made["id"], ""


@handles("aws:apigateway/usagePlan:UsagePlan")
def _usage_plan(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"name": i["name"], "tags": tag_map(i),
                              "apiStages": [{"apiId": st["apiId"], "stage": st["stage"]} for st in i.get("apiStages", [])]}
    throttle = i.get("throttleSettings") or {}
    if throttle:
        kwargs["throttle"] = {"rateLimit": float(throttle.get("rateLimit", 0)), "burstLimit": int(throttle.get("burstLimit", 0))}
    quota = i.get("quotaSettings") or {}
    if quota:
        kwargs["quota"] = {"limit": int(quota["limit"]), "period": quota.get("period", "DAY")}
    made = s.client("apigateway").create_usage_plan(**kwargs)
    return made["id"], ""


@handles("aws:apigateway/usagePlanKey:UsagePlanKey")
def _usage_plan_key(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("apigateway").create_usage_plan_key(usagePlanId=i["usagePlanId"], keyId=i["keyId"],
                                                 keyType=i.get("keyType", "API_KEY"))
    return None


# ---- traces ------------------------------------------------------------------------------
def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def xray_trace_id(otel_trace_id: str) -> str:
    """X-Ray's form of a W3C trace id: ``1-<first 8 hex>-<other 24>``."""
    return f"1-{otel_trace_id[:8]}-{otel_trace_id[8:]}"


def segments(records: Sequence[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    """Span records (``flows.tracing.span_record``) as X-Ray segment documents, the way the
    collector's awsxray exporter sends them: a span without a parent is a segment named after
    the service, every other span an independent subsegment named after the span (``parent_id``:
    its parent); span attributes go to the ``default`` metadata namespace, an error is a fault."""
    docs = []
    for rec in records:
        doc: dict[str, Any] = {"name": rec["name"] if rec.get("parent") else service, "id": rec["span_id"],
                               "trace_id": xray_trace_id(rec["trace_id"]), "start_time": _epoch(rec["start"]),
                               "end_time": _epoch(rec["end"]),
                               "metadata": {"default": {"otel.span.name": rec["name"], **(rec.get("attributes") or {})}}}
        if rec.get("parent"):
            doc.update(type="subsegment", parent_id=rec["parent"])
        if rec.get("status") == "ERROR":
            doc["fault"] = True
        docs.append(doc)
    return docs


def put_trace(client: Callable[[str], Any], records: Sequence[dict[str, Any]], service: str) -> list[str]:
    """Put the spans' segments into X-Ray (PutTraceSegments takes up to 50 documents a call);
    returns the X-Ray trace ids."""
    docs = segments(records, service)
    xray = client("xray")
    for start in range(0, len(docs), 50):
        refused = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs[start:start + 50]])
        if refused.get("UnprocessedTraceSegments"):
            raise RuntimeError(f"X-Ray refused segments: {refused['UnprocessedTraceSegments']}")
    return sorted({d["trace_id"] for d in docs})


def pipeline_spans(env: str, directory: Any, *, run_id: str, skip: str | None = None) -> list[dict[str, Any]]:
    """A daily-pipeline run's spans made by the platform's tracing code (``flows.tracing``: its
    provider, ``span`` and file exporter), the step ``skip`` left out; as span records."""
    import time
    from pathlib import Path

    from flows import tracing
    from validation.tracing import ROOT, STEPS

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tracing.exporting(tracing.JsonLinesExporter(directory)):
        with tracing.span(ROOT, run_id=run_id, env=env):
            for step in STEPS:
                if step != skip:
                    with tracing.span(step, env=env):
                        time.sleep(0.01)
    return tracing.read_spans(directory)


def activity(settings: Any, client: Callable[[str], Any], *, run_id: str = "seeded-run",
             skip: str | None = None) -> list[str]:
    """What a pipeline run leaves in X-Ray: one run's trace (see :func:`pipeline_spans`); its trace ids."""
    import tempfile
    import time

    from flows.tracing import SERVICE

    with tempfile.TemporaryDirectory() as scratch:
        ids = put_trace(client, pipeline_spans(settings.env, scratch, run_id=run_id, skip=skip), SERVICE)
    time.sleep(1.1)  # the emulator summarises a trace only once it ended before the query's (whole) second
    return ids
