"""Live probes for the transformation sessions (S12, S14, S17): the dbt task as deployed, and what
its runs left in the gold bucket.

The dbt ECS task keeps its artifacts in the lake (``jobs.dbt.artifacts``):
``<gold>/_dbt/latest.json`` names the last whole-project build, whose
``run_results.json``, ``manifest.json`` and ``sources.json`` are under
``<gold>/_dbt/runs/<run_id>/``; ``docs`` publishes the site to ``<gold>/_dbt/docs/``;
every run's quality record is ``<gold>/_quality/<run_id>.json`` (``jobs.quality``).
The probes read them through boto3 and judge them as the local checks judge
a build (validation.transform). The mart itself is read in :mod:`validation.aws.gold`,
the Glue side in :mod:`validation.aws.glue`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

OK = ("success", "pass")            # a model or seed built; a test passed
WARNED = "warn"                      # a test that warns passes (jobs.dbt.audit counts it so)
STAGING = ("stg_fmp_quotes", "stg_fmp_company_profile")
QUALITY_KINDS = ("relationships", "accepted_values", "expression_is_true", "unique", "not_null")
NO_EMULATED_RUN = "no ECS task runs in the emulator: the artifacts read are the ones in its S3"


# ---- reading the gold bucket ---------------------------------------------------------------
def read_object(live: Live, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such key."""
    from botocore.exceptions import ClientError

    try:
        return bytes(live.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def read_json(live: Live, bucket: str, key: str) -> Any:
    data = read_object(live, bucket, key)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise live.fail([f"s3://{bucket}/{key} is not valid JSON"], {"object": f"s3://{bucket}/{key}"},
                        "rerun the step that writes it") from None


def list_keys(live: Live, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in live.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def gold_bucket(live: Live) -> str:
    gold = live.buckets().get("gold")
    if not gold:
        raise live.nothing_deployed("gold bucket")
    return gold


def rerun(live: Live) -> str:
    return (f"run the daily pipeline on {live.ctx.env} (`finks pipeline run --env {live.ctx.env} --date YYYY-MM-DD`): "
            "its dbt step runs the dbt ECS task, which keeps its artifacts in the gold bucket")


# ---- the last whole-project build -------------------------------------------------------------
@dataclass
class Build:
    """The last whole-project dbt build, as its artifacts in the gold bucket say."""

    bucket: str
    latest: dict[str, Any]
    run_results: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.latest["run_id"])

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def prefix(self) -> str:
        from jobs.dbt.artifacts import PREFIX, RUNS

        return f"{PREFIX}/{RUNS}/{self.run_id}/"

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.run_results.get("results") or [])

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        """The results of one resource type ("model", "test", "unit_test", "seed")."""
        return [r for r in self.results if str(r.get("unique_id", "")).split(".", 1)[0] in kinds]

    @property
    def tests(self) -> list[dict[str, Any]]:
        return self.of("test", "unit_test")

    @property
    def figures(self) -> dict[str, Any]:
        meta = self.run_results.get("metadata") or {}
        return {"run_id": self.run_id, "artifacts": self.where, "target": self.latest.get("target"),
                "dbt_version": meta.get("dbt_version"), "generated_at": meta.get("generated_at")}


def latest_build(live: Live, *, need: tuple[str, ...] = ()) -> Build:
    """The build ``<gold>/_dbt/latest.json`` names, with its run_results.json (and ``need``ed artifacts)."""
    from jobs.dbt.artifacts import LATEST, PREFIX

    gold = gold_bucket(live)
    latest = read_json(live, gold, f"{PREFIX}/{LATEST}")
    if not isinstance(latest, dict) or not latest.get("run_id"):
        raise live.fail([f"no dbt build has left its artifacts in s3://{gold}/{PREFIX}/ (no {LATEST})"],
                        {"gold": gold}, rerun(live))
    build = Build(gold, latest, {})
    found: dict[str, Any] = {}
    for name in ("run_results.json", *need):
        found[name] = read_json(live, gold, build.prefix + name)
        if found[name] is None:
            raise live.fail([f"dbt build {build.run_id} left no {name} at {build.where}"], build.figures, rerun(live))
    build.run_results = found["run_results.json"]
    build.manifest = found.get("manifest.json") or {}
    if "sources.json" in need:
        build.sources = found["sources.json"]
    return build


def _not_ok(results: list[dict[str, Any]]) -> list[str]:
    return [f"{r.get('unique_id')} is {r.get('status')}" + (f" ({r['failures']} failing rows)" if r.get("failures") else "")
            for r in results if r.get("status") not in (*OK, WARNED)]


# ---- S12 -------------------------------------------------------------------------------------
def dbt_task_definition(ctx: CheckContext) -> Evidence:
    """The dbt task family's current revision is what the program declares: ACTIVE, the image
    ``<this stack's dbt ECR repository>:<imageTag>``, the command ``python -m jobs.dbt build --docs
    --target athena``, logs to the dbt log group, and the pipeline task role (lake and Athena access)."""
    from botocore.exceptions import ClientError

    from infra.components.ecs import TASKS

    live = Live.of(ctx)
    family = live.task_families().get("dbt")
    if not family:
        raise live.fail([f"no dbt task family found ({live.found_by})"], {})
    try:
        td = live.client("ecs").describe_task_definition(taskDefinition=family)["taskDefinition"]
    except ClientError:
        raise live.fail([f"task family {family} has no ACTIVE revision"], {"family": family}) from None
    revision = f"{family}:{td['revision']}"
    container = next((c for c in td.get("containerDefinitions", []) if c.get("name") == "dbt"), None)
    figures: dict[str, Any] = {"revision": revision, "status": td.get("status")}
    if td.get("status", "ACTIVE") != "ACTIVE" or container is None:
        raise live.fail([f"{revision} is {td.get('status')}" if container else f"{revision} has no dbt container"],
                        figures)
    repo = (live.repositories() or {}).get("dbt")
    uri = live.client("ecr").describe_repositories(repositoryNames=[repo])["repositories"][0]["repositoryUri"] \
        if repo else None
    want_image = f"{uri}:{live.config.image_tag}" if uri else None
    log = container.get("logConfiguration") or {}
    options = log.get("options") or {}
    role = str(td.get("taskRoleArn", "")).rsplit("/", 1)[-1]
    figures.update(image=container.get("image"), command=container.get("command"), log_group=options.get("awslogs-group"),
                   task_role=role)
    problems = []
    if want_image is None:
        problems.append(f"no dbt ECR repository found ({live.found_by}): {revision}'s image cannot be checked")
    elif container.get("image") != want_image:
        problems.append(f"{revision} runs {container.get('image')}, not {want_image} (this stack's dbt repository, "
                        f"tag {live.config.image_tag})")
    if container.get("command") != TASKS["dbt"][3]:
        problems.append(f"{revision} runs {container.get('command')}, not {TASKS['dbt'][3]}")
    group = live.log_groups().get("dbt")
    if log.get("logDriver") != "awslogs" or options.get("awslogs-group") != group:
        problems.append(f"{revision} logs to {log.get('logDriver')}:{options.get('awslogs-group')}, not awslogs:{group}")
    if role != live.roles().get("pipeline-task"):
        problems.append(f"{revision} has task role {role or 'none'}, not {live.roles().get('pipeline-task')} "
                        "(the lake and Athena)")
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"{revision} ACTIVE: {container['image']} runs `{' '.join(container['command'])}`, logs to "
                         f"{group}, task role {role}", figures, ["the task definition is registered, not run"])


def dbt_build_ran(ctx: CheckContext) -> Evidence:
    """The last whole-project dbt build (the dbt task's, kept in S3) ran every node of its
    run_results.json successfully: models and seeds built, tests passed."""
    live = Live.of(ctx)
    build = latest_build(live)
    results = build.results
    figures = {**build.figures, "nodes": len(results),
               "by_type": {k: len(build.of(k)) for k in ("model", "seed", "test", "unit_test")},
               "warned": [r["unique_id"] for r in results if r.get("status") == WARNED]}
    if not results:
        raise live.fail([f"dbt build {build.run_id}'s run_results.json ({build.where}) lists no node"], figures, rerun(live))
    bad = _not_ok(results)
    if bad:
        raise live.fail([f"dbt build {build.run_id}: {b}" for b in bad], figures,
                        f"read {build.where}run_results.json and the dbt task's log, fix the data or the model, then "
                        + rerun(live))
    return live.evidence(f"dbt build {build.run_id} (target {build.latest.get('target')}, dbt "
                         f"{figures['dbt_version']}): all {len(results)} nodes succeeded", figures, [NO_EMULATED_RUN])


# ---- S14 -------------------------------------------------------------------------------------
def staging_models_built(ctx: CheckContext) -> Evidence:
    """The last build built every staging model of its manifest, stg_fmp_quotes and
    stg_fmp_company_profile among them."""
    live = Live.of(ctx)
    build = latest_build(live, need=("manifest.json",))
    declared = sorted(n["name"] for n in (build.manifest.get("nodes") or {}).values()
                      if n.get("resource_type") == "model" and str(n.get("path", "")).startswith("staging/"))
    status = {r["unique_id"].rsplit(".", 1)[-1]: r.get("status") for r in build.of("model")}
    figures = {**build.figures, "staging_models": {m: status.get(m) for m in declared}}
    problems = [f"{m} is not a staging model of build {build.run_id}'s manifest" for m in STAGING if m not in declared]
    problems += [f"staging model {m} was not built by build {build.run_id} ({status.get(m) or 'not in run_results'})"
                 for m in declared if status.get(m) != "success"]
    if problems:
        raise live.fail(problems, figures, "fix the staging model, then " + rerun(live))
    return live.evidence(f"build {build.run_id} built staging models {', '.join(declared)}", figures, [NO_EMULATED_RUN])


def dbt_tests_passed(ctx: CheckContext) -> Evidence:
    """The last build ran data and unit tests, and every one passed (a warning passes)."""
    live = Live.of(ctx)
    build = latest_build(live)
    tests = build.tests
    units = build.of("unit_test")
    figures = {**build.figures, "tests": len(tests), "unit_tests": len(units)}
    if not tests or not units:
        raise live.fail([f"dbt build {build.run_id} ran {len(tests)} tests, {len(units)} of them unit tests"], figures,
                        rerun(live))
    failed = _not_ok(tests)
    if failed:
        raise live.fail([f"dbt build {build.run_id}: test {f}" for f in failed], figures,
                        f"read {build.where}run_results.json: fix the data or the model, then " + rerun(live))
    return live.evidence(f"build {build.run_id}: {len(tests)} dbt tests passed ({len(units)} unit tests)", figures,
                         [NO_EMULATED_RUN])


def docs_published(ctx: CheckContext) -> Evidence:
    """The docs site is published (``<gold>/_dbt/docs/``: index.html, catalog.json) and its catalog
    documents every model of the last build."""
    from jobs.dbt.artifacts import DOCS_DIR, PREFIX

    live = Live.of(ctx)
    build = latest_build(live, need=("manifest.json",))
    where = f"s3://{build.bucket}/{PREFIX}/{DOCS_DIR}/"
    remedy = (f"the daily dbt task (`python -m jobs.dbt build --docs --target athena`) publishes the site to {where} "
              f"after each published build: run the pipeline on {live.ctx.env}, or that command as the dbt ECS task")
    index = read_object(live, build.bucket, f"{PREFIX}/{DOCS_DIR}/index.html")
    catalog = read_json(live, build.bucket, f"{PREFIX}/{DOCS_DIR}/catalog.json")
    missing = [n for n, v in (("index.html", index), ("catalog.json", catalog)) if v is None]
    if missing:
        raise live.fail([f"no {m} at {where}" for m in missing], {"docs": where}, remedy)
    documented = sorted(k.rsplit(".", 1)[-1] for k in (catalog.get("nodes") or {}) if k.startswith("model."))
    models = sorted(n["name"] for n in (build.manifest.get("nodes") or {}).values() if n.get("resource_type") == "model")
    undocumented = [m for m in models if m not in documented]
    figures = {"docs": where, "models_documented": documented, "generated_at": (catalog.get("metadata") or {}).get(
        "generated_at"), "build": build.run_id}
    if not documented or undocumented:
        raise live.fail([f"the docs catalog at {where} lacks model {m} of build {build.run_id}"
                         for m in undocumented or models], figures, remedy)
    return live.evidence(f"dbt docs published at {where}: index.html, catalog of {len(documented)} models", figures)


# ---- S17 -------------------------------------------------------------------------------------
def quality_tests_pass(ctx: CheckContext) -> Evidence:
    """The last build's project has source freshness, referential integrity (relationships),
    accepted values, business-rule (expression_is_true) and unit tests; its freshness audit
    found every source fresh and every one of those tests passed."""
    live = Live.of(ctx)
    build = latest_build(live, need=("manifest.json", "sources.json"))
    nodes = build.manifest.get("nodes") or {}
    kinds = {str((n.get("test_metadata") or {}).get("name", "singular")) for n in nodes.values()
             if n.get("resource_type") == "test"}
    fresh = [s["unique_id"] for s in (build.manifest.get("sources") or {}).values()
             if ((s.get("freshness") or s.get("config", {}).get("freshness") or {}).get("error_after") or {}).get("count")]
    freshness = {r.get("unique_id"): r.get("status") for r in (build.sources or {}).get("results") or []}
    figures = {**build.figures, "kinds": sorted(kinds), "sources_with_freshness": fresh, "freshness": freshness}
    problems = [f"build {build.run_id}'s project has no {k} test" for k in QUALITY_KINDS if k not in kinds]
    if not fresh:
        problems.append(f"build {build.run_id}'s project sets no source freshness (error_after)")
    if not build.manifest.get("unit_tests"):
        problems.append(f"build {build.run_id}'s project has no unit test")
    problems += [f"source {s} is {st} in build {build.run_id}'s freshness audit" for s, st in freshness.items()
                 if st != "pass"]
    problems += [f"source {s} was not checked for freshness by build {build.run_id}" for s in fresh if s not in freshness]
    problems += [f"build {build.run_id}: test {f}" for f in _not_ok(build.tests)]
    if problems:
        raise live.fail(problems, figures, "fix the data, the sources or the tests, then " + rerun(live))
    return live.evidence(f"build {build.run_id}: freshness of {len(freshness)} sources, {', '.join(sorted(kinds))} and "
                         f"unit tests all pass", figures, [NO_EMULATED_RUN])


def quality_results_recorded(ctx: CheckContext) -> Evidence:
    """The last build left its quality record (``<gold>/_quality/<run_id>.json``, and latest.json)
    counting the tests its run_results.json ran; monitoring got a DataQualityScore since."""
    import datetime as dt

    from flows.metrics import NAMESPACE

    live = Live.of(ctx)
    build = latest_build(live)
    key = f"_quality/{build.run_id}.json"
    record = read_json(live, build.bucket, key)
    latest = read_json(live, build.bucket, "_quality/latest.json") or {}
    figures: dict[str, Any] = {**build.figures, "record": f"s3://{build.bucket}/{key}"}
    if not isinstance(record, dict):
        raise live.fail([f"dbt build {build.run_id} left no quality record at s3://{build.bucket}/{key}"], figures,
                        rerun(live))
    tests = build.tests
    failed = len([t for t in tests if t.get("status") in ("fail", "error")])
    figures.update({k: record.get(k) for k in ("tests_run", "tests_failed", "quality_score", "finished_at")})
    problems = []
    if latest.get("run_id") != build.run_id:
        problems.append(f"s3://{build.bucket}/_quality/latest.json names run {latest.get('run_id')}, "
                        f"not the last build {build.run_id}")
    if record.get("tests_run") != len(tests) or record.get("tests_failed") != failed:
        problems.append(f"quality record {key} counts {record.get('tests_run')} tests, {record.get('tests_failed')} "
                        f"failed; the build's run_results.json has {len(tests)}, {failed} failed")
    since = dt.datetime.fromisoformat(str(record.get("finished_at"))) if record.get("finished_at") else None
    if since is not None:
        now = dt.datetime.now(dt.UTC)
        since = max(since if since.tzinfo else since.replace(tzinfo=dt.UTC), now - dt.timedelta(days=14))
        stats = live.client("cloudwatch").get_metric_statistics(
            Namespace=NAMESPACE, MetricName="DataQualityScore", StartTime=since, EndTime=now + dt.timedelta(minutes=5),
            Period=86400, Statistics=["SampleCount"],
            Dimensions=[{"Name": "Environment", "Value": live.ctx.env}, {"Name": "Step", "Value": "quality"}])
        samples = int(sum(p.get("SampleCount", 0) for p in stats.get("Datapoints", [])))
        figures["score_datapoints_since"] = samples
        if not samples:
            problems.append(f"no DataQualityScore datapoint in {NAMESPACE} since quality record {key} "
                            f"({record.get('finished_at')}): monitoring did not get the score")
    if problems:
        raise live.fail(problems, figures, rerun(live))
    return live.evidence(f"quality record {key}: {record.get('tests_run')} tests, score {record.get('quality_score')}; "
                         "latest.json names it; DataQualityScore reported since", figures, [NO_EMULATED_RUN])


def quality_gate_held(ctx: CheckContext) -> Evidence:
    """The served gold's run clears the flows' quality gate (its record: ok, published, no failing
    test), and no recorded run whose tests failed published gold."""
    from core.gold import PUBLISHED_FILE
    from flows.errors import QualityGateFailed
    from flows.quality import quality_gate

    live = Live.of(ctx)
    gold = gold_bucket(live)
    published = read_json(live, gold, PUBLISHED_FILE)
    if not isinstance(published, dict) or not published.get("run_id"):
        raise live.fail([f"gold was never published: no s3://{gold}/{PUBLISHED_FILE}"], {"gold": gold}, rerun(live))
    served = str(published["run_id"])
    keys = sorted((k for k in list_keys(live, gold, "_quality/") if k.endswith(".json") and k != "_quality/latest.json"),
                  reverse=True)[:30]
    records = [r for r in (read_json(live, gold, k) for k in keys) if isinstance(r, dict)]
    figures: dict[str, Any] = {"served_run": served, "records_read": len(records)}
    problems = []
    record = next((r for r in records if r.get("run_id") == served), None) \
        or read_json(live, gold, f"_quality/{served}.json")  # served gold older than the last 30 runs
    try:
        figures["gate"] = quality_gate(live.settings, served, record)
    except QualityGateFailed as exc:
        problems.append(f"the served gold (run {served}) does not clear the flows' quality gate: {exc.message}")
    blocked = [r for r in records if r.get("tests_failed") or not r.get("ok")]
    figures["blocked_runs"] = [r.get("run_id") for r in blocked]
    problems += [f"run {r.get('run_id')} failed {r.get('tests_failed')} test(s) {r.get('failed_tests', [])[:3]} "
                 f"and still {'published gold' if r.get('published') else 'is the served gold'}"
                 for r in blocked if r.get("published") or r.get("run_id") == served]
    if problems:
        raise live.fail(problems, figures, "republish gold from a build whose tests pass: " + rerun(live))
    return live.evidence(f"served gold (run {served}) clears the quality gate; {len(blocked)} of the last "
                         f"{len(records)} recorded runs failed tests and none published", figures, [NO_EMULATED_RUN])
