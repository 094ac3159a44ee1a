"""Live probes for S19: the read API as deployed — API Gateway REST in front of the Lambda function.

Two sides. The AWS side (:func:`rest_api_deployed`): the REST API's stage is deployed, every
method wants an API key and hands the request to the function, a usage plan binds a key to
the stage, the function is the program's (image, handler, environment, tracing) and API
Gateway may invoke it, its log group keeps a retention. The HTTP side
(:func:`endpoints_with_key`, :func:`responses_cached`): requests to the stack's ``api_url``
output with the usage plan's key and without it, the OpenAPI document, revalidation by ETag.

The REST API is found by the stack's outputs (``api_rest_api_id``, else the host of
``api_url``), else by the program's name and tags; the stage is the last part of ``api_url``
(the program names it after the environment). The key's value is read from API Gateway
(GetApiKey includeValue), as a client of the API would be handed it, and never reported.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

DATA_PATH = "/v1/portfolios"
SPEC_PATH = "/openapi.json"
TIMEOUT_S = 30


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NotFoundException", "ResourceNotFoundException")


def rest_api(live: Live) -> tuple[str, str]:
    """(REST API id, stage name) of the stack's read API."""
    url = str(live.output("api_url") or "")
    stage = urlsplit(url).path.strip("/").split("/")[0] if url else live.ctx.env
    if live.output("api_rest_api_id"):
        return str(live.output("api_rest_api_id")), stage or live.ctx.env
    host = urlsplit(url).hostname or ""
    if ".execute-api." in host:
        return host.split(".", 1)[0], stage
    name = f"{live.config.prefix}-api"
    for page in live.client("apigateway").get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            if api.get("name") == name and live.tagged(api.get("tags")):
                return str(api["id"]), stage or live.ctx.env
    raise live.nothing_deployed(f"REST API {name}")


def _plans(live: Live, api: str, stage: str) -> list[dict[str, Any]]:
    """The usage plans that cover the stage, each with its keys (values included)."""
    gw = live.client("apigateway")
    plans = []
    for page in gw.get_paginator("get_usage_plans").paginate():
        for plan in page.get("items", []):
            if any(s.get("apiId") == api and s.get("stage") == stage for s in plan.get("apiStages", [])):
                keys = gw.get_usage_plan_keys(usagePlanId=plan["id"]).get("items", [])
                plan["keys"] = [gw.get_api_key(apiKey=k["id"], includeValue=True) for k in keys if k.get("type") == "API_KEY"]
                plans.append(plan)
    return plans


def api_key(live: Live, api: str, stage: str) -> str | None:
    """The value of an enabled key of a usage plan on the stage: what a client of the API is given."""
    for plan in _plans(live, api, stage):
        for key in plan["keys"]:
            if key.get("enabled") and key.get("value"):
                return str(key["value"])
    return None


def base_url(live: Live, api: str, stage: str) -> str:
    url = live.output("api_url")
    return str(url).rstrip("/") if url else f"https://{api}.execute-api.{live.settings.region}.amazonaws.com/{stage}"


def _function_problems(live: Live, api: str) -> tuple[dict[str, Any], list[str]]:
    import json

    from botocore.exceptions import ClientError

    name = str(live.output("api_function_name") or f"{live.config.prefix}-api")
    planned = next((r.inputs for r in live.plan.of_type("aws:lambda/function:Function") if r.inputs.get("name") == name), {})
    try:
        fn = live.client("lambda").get_function(FunctionName=name)["Configuration"]
    except ClientError as exc:
        if _not_found(exc):
            return {"function": name}, [f"Lambda function {name} does not exist"]
        raise
    command = ((fn.get("ImageConfigResponse") or {}).get("ImageConfig") or {}).get("Command") or []
    env = (fn.get("Environment") or {}).get("Variables") or {}
    seen = {"function": name, "state": fn.get("State"), "package": fn.get("PackageType"), "command": command,
            "tracing": (fn.get("TracingConfig") or {}).get("Mode")}
    problems = []
    if fn.get("State", "Active") != "Active":
        problems.append(f"Lambda function {name} is {fn.get('State')}: {fn.get('StateReason')}")
    want_command = (planned.get("imageConfig") or {}).get("commands") or [live.config.api_lambda_handler]
    if fn.get("PackageType") != "Image" or command != want_command:
        problems.append(f"Lambda function {name} runs {fn.get('PackageType')} {command or fn.get('Handler')}, "
                        f"not the API image's {want_command}")
    wrong = {k: env.get(k) for k, v in ((planned.get("environment") or {}).get("variables") or {}).items()
             if env.get(k) != str(v)}
    if wrong:
        problems.append(f"Lambda function {name} has {wrong} where the program sets "
                        f"{ {k: planned['environment']['variables'][k] for k in wrong} }")
    if seen["tracing"] != "Active":
        problems.append(f"Lambda function {name} traces {seen['tracing']}, not Active (X-Ray)")
    try:
        policy = json.loads(live.client("lambda").get_policy(FunctionName=name)["Policy"])
    except ClientError as exc:
        if not _not_found(exc):
            raise
        policy = {}
    invokers = [st for st in policy.get("Statement", []) if (st.get("Principal") or {}).get("Service") == "apigateway.amazonaws.com"
                and f":{api}/" in json.dumps(st.get("Condition", {}))]
    if not invokers:
        problems.append(f"API Gateway may not invoke {name} for REST API {api} (no resource policy statement)")
    group = f"/aws/lambda/{name}"
    groups = [g for g in live.client("logs").describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
              if g["logGroupName"] == group]
    seen["log_group"] = {"name": group, "retention_days": groups[0].get("retentionInDays") if groups else None}
    if not groups:
        problems.append(f"log group {group} does not exist: the function's logs go nowhere the program keeps")
    elif not groups[0].get("retentionInDays"):
        problems.append(f"log group {group} keeps its events forever (no retention)")
    return seen, problems


def rest_api_deployed(ctx: CheckContext) -> Evidence:
    """The REST API's stage is deployed, each method requires an API key and proxies to the Lambda
    function, a usage plan binds an enabled key to the stage; the function is the program's."""
    from botocore.exceptions import ClientError

    live = Live.of(ctx)
    api, stage_name = rest_api(live)
    gw = live.client("apigateway")
    try:
        name = gw.get_rest_api(restApiId=api)["name"]
    except ClientError as exc:
        if _not_found(exc):
            raise live.fail([f"REST API {api} does not exist ({live.found_by})"], {"rest_api": api}) from None
        raise
    problems: list[str] = []
    figures: dict[str, Any] = {"rest_api": name, "id": api, "stage": stage_name}
    try:
        stage = gw.get_stage(restApiId=api, stageName=stage_name)
        gw.get_deployment(restApiId=api, deploymentId=stage["deploymentId"])
        figures["deployment"] = stage["deploymentId"]
        if not stage.get("tracingEnabled"):
            problems.append(f"stage {stage_name} of {name} does not trace requests (X-Ray off)")
    except ClientError as exc:
        if not _not_found(exc):
            raise
        problems.append(f"stage {stage_name} of REST API {name} is not deployed: requests to it answer 403")
    methods = 0
    for resource in gw.get_resources(restApiId=api, embed=["methods"]).get("items", []):
        for verb, method in (resource.get("resourceMethods") or {}).items():
            methods += 1
            where = f"{verb} {resource['path']} of {name}"
            if not method.get("apiKeyRequired"):
                problems.append(f"{where} does not require an API key: anyone can read gold")
            integration = method.get("methodIntegration") or {}
            if integration.get("type") != "AWS_PROXY" or ":function:" not in str(integration.get("uri")):
                problems.append(f"{where} is not proxied to the Lambda function ({integration.get('type')})")
    if not methods:
        problems.append(f"REST API {name} has no method: nothing is served")
    plans = _plans(live, api, stage_name)
    enabled = [k for p in plans for k in p["keys"] if k.get("enabled")]
    figures["usage_plans"] = [{"name": p.get("name"), "throttle": p.get("throttle"), "quota": p.get("quota"),
                               "keys": [k.get("name") for k in p["keys"]]} for p in plans]
    if not plans:
        problems.append(f"no usage plan covers stage {stage_name} of {name}: no API key can call it")
    elif not enabled:
        problems.append(f"the usage plan(s) of stage {stage_name} of {name} hold no enabled API key")
    elif not all(p.get("throttle") and p.get("quota") for p in plans):
        problems.append(f"a usage plan of stage {stage_name} of {name} has no throttle or no quota")
    figures["lambda"], found = _function_problems(live, api)
    problems += found
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"REST API {name} stage {stage_name} deployed ({figures['deployment']}): {methods} methods, each "
                         f"key-required and proxied to Lambda {figures['lambda']['function']} "
                         f"({' '.join(figures['lambda']['command'])}, tracing Active); usage plan "
                         f"{', '.join(str(p['name']) for p in figures['usage_plans'])} binds {len(enabled)} enabled key(s)",
                         figures, ["the function's image is not run and the methods are not invoked here"])


# ---- over HTTP ------------------------------------------------------------------------------------
def _http(live: Live) -> tuple[str, str, str | None, Any]:
    import httpx

    api, stage = rest_api(live)
    return base_url(live, api, stage), stage, api_key(live, api, stage), httpx.Client(timeout=TIMEOUT_S)


def _stand_in_note(base: str) -> str:
    return (f"the emulator runs no API Gateway data plane: {urlsplit(base).netloc} stands in for it "
            "(enforcing the usage-plan key in front of the platform's handler)")


def endpoints_with_key(ctx: CheckContext) -> Evidence:
    """Over HTTPS at the stack's api_url: a data route answers 200 with rows for the usage plan's key and
    403 without it, a bad parameter is rejected (422), and the OpenAPI document is served."""
    import httpx

    live = Live.of(ctx)
    base, stage, key, http = _http(live)
    figures: dict[str, Any] = {"url": base, "stage": stage}
    if key is None:
        raise live.fail([f"no enabled API key in a usage plan of stage {stage}: the API cannot be called"], figures)
    problems: list[str] = []
    auth = {"x-api-key": key}
    try:
        with http:
            data = http.get(base + DATA_PATH, headers=auth)
            anonymous = http.get(base + DATA_PATH)
            invalid = http.get(base + DATA_PATH, params={"limit": 0}, headers=auth)
            spec = http.get(base + SPEC_PATH, headers=auth)
    except httpx.HTTPError as exc:
        raise live.fail([f"{base} cannot be reached: {type(exc).__name__}: {exc}"], figures,
                        f"check the stage's URL (api_url) and its TLS certificate; {live.redeploy()}") from None
    rows = data.json().get("data", []) if data.status_code == 200 else []
    figures["status"] = {"with_key": data.status_code, "without_key": anonymous.status_code,
                         "invalid_parameter": invalid.status_code, "openapi": spec.status_code}
    figures["rows"] = len(rows)
    if data.status_code != 200:
        problems.append(f"GET {DATA_PATH} with the usage plan's key answered {data.status_code}: {data.text[:200]}")
    elif not rows:
        problems.append(f"GET {DATA_PATH} answered 200 with no rows: gold is empty or not published")
    if anonymous.status_code != 403:
        problems.append(f"GET {DATA_PATH} without an API key answered {anonymous.status_code}, not 403: "
                        "the API does not enforce its key")
    if invalid.status_code not in (400, 422):
        problems.append(f"GET {DATA_PATH}?limit=0 answered {invalid.status_code}, not 400/422: requests are not validated")
    document = spec.json() if spec.status_code == 200 else {}
    if "openapi" not in document or DATA_PATH not in document.get("paths", {}):
        problems.append(f"GET {SPEC_PATH} answered {spec.status_code} without an OpenAPI document naming {DATA_PATH}")
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"{base}: {DATA_PATH} 200 with {len(rows)} rows for the key, 403 without; limit=0 "
                         f"{invalid.status_code}; OpenAPI {document.get('openapi')} served ({len(document['paths'])} paths)",
                         figures, [_stand_in_note(base)])


def responses_cached(ctx: CheckContext) -> Evidence:
    """A data response carries an ETag and Cache-Control, and sending the ETag back answers 304 (no body)."""
    import httpx

    live = Live.of(ctx)
    base, stage, key, http = _http(live)
    figures: dict[str, Any] = {"url": base + DATA_PATH, "stage": stage}
    if key is None:
        raise live.fail([f"no enabled API key in a usage plan of stage {stage}: the API cannot be called"], figures)
    try:
        with http:
            first = http.get(base + DATA_PATH, headers={"x-api-key": key})
            etag = first.headers.get("etag")
            again = http.get(base + DATA_PATH, headers={"x-api-key": key, "if-none-match": etag or '"none"'})
    except httpx.HTTPError as exc:
        raise live.fail([f"{base} cannot be reached: {type(exc).__name__}: {exc}"], figures) from None
    figures.update(status=first.status_code, etag=etag, cache_control=first.headers.get("cache-control"),
                   revalidated=again.status_code, x_cache=again.headers.get("x-cache"))
    problems = []
    if first.status_code != 200:
        problems.append(f"GET {DATA_PATH} answered {first.status_code}: {first.text[:200]}")
    elif not etag:
        problems.append(f"GET {DATA_PATH} carries no ETag: clients cannot revalidate")
    elif again.status_code != 304 or again.content:
        problems.append(f"GET {DATA_PATH} with If-None-Match {etag} answered {again.status_code}, not 304")
    if first.status_code == 200 and "max-age" not in (first.headers.get("cache-control") or ""):
        problems.append(f"GET {DATA_PATH} has Cache-Control {first.headers.get('cache-control')!r}, no max-age")
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"{base}{DATA_PATH}: ETag {etag}, Cache-Control {figures['cache_control']}; revalidation 304",
                         figures, [_stand_in_note(base)])
