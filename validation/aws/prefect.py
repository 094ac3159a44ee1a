"""Live probes for S8 and S9: the environment's Prefect server behind its ALB, its logs and its
database, the ECS work pool and its worker, and the ECS services that run them — and how every
Prefect probe reaches that server (:class:`PrefectSite`). The blocks and the flows' runs (S8's
test flow, S10, S16) are read by :mod:`validation.aws.prefect_flows`.

A probe reaches Prefect at the stack output ``prefect_url`` (``https://<prefectDomain>``: the
ALB's HTTPS listener with the ACM certificate), else at the stack file's ``prefectDomain``. The
certificate is always verified — against ``SSL_CERT_FILE`` when set (``PREFECT_API_SSL_CERT_FILE``
first), else certifi's roots; ``PREFECT_API_TLS_INSECURE_SKIP_VERIFY`` is overridden. The probes
only read: no flow run, block or worker is created (see
:func:`validation.aws.prefect_flows.deployment_run_completed` for why the test-flow criterion
reads a recent run rather than starting one).

Against an emulator (``AWS_ENDPOINT_URL``) no ECS task runs, so whatever answers at
``prefect_url`` is a stand-in for the service's task: the evidence says so.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

HTTP_TIMEOUT_S = 15.0
LOG_WINDOW_HOURS = 24  # the server logs every ALB health check (30 s): a quiet day means it is not running
HEARTBEAT_MISSES = 3  # Prefect's own rule: a worker is offline after three missed heartbeats
STANDIN = "the emulator runs no ECS task: the Prefect answering at prefect_url is a stand-in for the service's task"
# Tables the server's migrations create, read through the API that serves each; the last ones
# come from Prefect 3's later migrations (a server on a half-migrated database answers 500 there).
CORE_TABLES = {
    "flow": "flows/filter", "flow_run": "flow_runs/filter", "task_run": "task_runs/filter",
    "deployment": "deployments/filter", "work_pool": "work_pools/filter", "work_queue": "work_queues/filter",
    "block_document": "block_documents/filter", "block_type": "block_types/filter",
    "variable": "variables/filter", "artifact": "artifacts/filter", "log": "logs/filter",
    "concurrency_limit_v2": "v2/concurrency_limits/filter", "automation": "automations/filter",
}
SERVICE_SUFFIXES = {"prefect-server": "-prefect-server", "prefect-worker": "-prefect-worker"}


# ---- reaching the environment's Prefect -------------------------------------------------
@dataclass
class PrefectSite:
    """The environment's Prefect as the internet sees it: the ALB's URL, verified TLS."""

    live: Live
    url: str

    @classmethod
    def of(cls, live: Live) -> PrefectSite:
        url = live.output("prefect_url") or f"https://{live.config.prefect_domain}"
        return cls(live, str(url).rstrip("/"))

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    @property
    def ca_file(self) -> str:
        import certifi

        return os.environ.get("PREFECT_API_SSL_CERT_FILE") or os.environ.get("SSL_CERT_FILE") or certifi.where()

    def ssl_context(self) -> Any:
        import ssl

        return ssl.create_default_context(cafile=self.ca_file)

    def reach(self) -> dict[str, Any]:
        """GET /api/health and the UI over verified HTTPS; a failure names what broke and what to do."""
        import ssl

        import httpx

        if not self.url.startswith("https://"):
            raise self.live.fail([f"Prefect is published at {self.url}: plain HTTP, not HTTPS"], {"url": self.url},
                                 "serve it through the ALB's HTTPS listener (prefect_url is https://<prefectDomain>); "
                                 + self.live.redeploy())
        try:
            with httpx.Client(verify=self.ssl_context(), timeout=HTTP_TIMEOUT_S) as http:
                with http.stream("GET", f"{self.api}/health") as health:
                    cert = health.extensions["network_stream"].get_extra_info("ssl_object").getpeercert()
                    health.read()
                ui = http.get(f"{self.url}/", follow_redirects=True)
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in str(exc).lower():
                raise self.live.fail([f"the certificate of {self.url} does not verify ({exc})"], {"url": self.url},
                                     "check the HTTPS listener's ACM certificate (issued, not expired, for "
                                     f"{self.url.removeprefix('https://')}) and that its DNS validation completed; "
                                     + self.live.redeploy()) from None
            raise self.unreachable(exc) from None
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), dt.UTC)
        figures = {"url": self.url, "health": health.status_code, "ui": ui.status_code, "ui_bytes": len(ui.content),
                   "certificate_expires": expires.isoformat(), "certificate_days_left": (expires - dt.datetime.now(dt.UTC)).days}
        problems = []
        if health.status_code != 200 or health.text.strip() != "true":
            problems.append(f"{self.api}/health answers {health.status_code} {health.text[:80]!r}, not 200 true")
        if ui.status_code != 200 or "<html" not in ui.text.lower():
            problems.append(f"the Prefect UI at {self.url}/ answers {ui.status_code} without a page")
        if problems:
            raise self.live.fail(problems, figures, "read the prefect-server task's logs in CloudWatch (is it "
                                 "healthy in its target group?); " + self.live.redeploy())
        return figures

    def unreachable(self, exc: Exception) -> Any:
        return self.live.fail([f"Prefect at {self.url} does not answer ({type(exc).__name__}: {exc})"], {"url": self.url},
                              "check the ALB's target group health and the prefect-server ECS service; "
                              + self.live.redeploy())

    @contextmanager
    def client(self) -> Iterator[Any]:
        """Prefect's own sync client for this site (blocks load through it too): verified TLS."""
        import httpx
        from prefect.client.orchestration import get_client
        from prefect.settings import (
            PREFECT_API_SSL_CERT_FILE,
            PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
            PREFECT_API_URL,
            temporary_settings,
        )

        updates = {PREFECT_API_URL: self.api, PREFECT_API_SSL_CERT_FILE: self.ca_file,
                   PREFECT_API_TLS_INSECURE_SKIP_VERIFY: False}
        try:
            with temporary_settings(updates=updates), get_client(sync_client=True) as client:
                yield client
        except httpx.HTTPError as exc:
            raise self.live.fail([f"the Prefect API at {self.api} refused a read: {type(exc).__name__}: {exc}"],
                                 {"url": self.url}, "read the prefect-server task's logs in CloudWatch") from None

    def read_tables(self, tables: list[str]) -> dict[str, int]:
        """POST each table's filter endpoint (limit 1): table -> HTTP status."""
        import httpx

        try:
            with httpx.Client(verify=self.ssl_context(), timeout=HTTP_TIMEOUT_S) as http:
                return {t: http.post(f"{self.api}/{CORE_TABLES[t]}", json={"limit": 1}).status_code for t in tables}
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None

    def notes(self) -> list[str]:
        return [STANDIN] if self.live.emulated else []


def reached(ctx: CheckContext) -> tuple[Live, PrefectSite]:
    """The environment's stack and its Prefect, which answers over verified HTTPS (else CheckFailed)."""
    live = Live.of(ctx)
    site = PrefectSite.of(live)
    site.reach()
    return live, site


# ---- the ECS services -----------------------------------------------------------------
def service_names(live: Live) -> dict[str, str]:
    """prefect-server / prefect-worker -> ECS service name (outputs, else the cluster's tagged services)."""
    if live.output("ecs_services"):
        return {str(k): str(v) for k, v in live.output("ecs_services").items()}
    ecs, cluster = live.client("ecs"), live.cluster_name()
    arns = [a for page in ecs.get_paginator("list_services").paginate(cluster=cluster) for a in page["serviceArns"]]
    found: dict[str, str] = {}
    for i in range(0, len(arns), 10):
        for svc in ecs.describe_services(cluster=cluster, services=arns[i:i + 10], include=["TAGS"])["services"]:
            for key, suffix in SERVICE_SUFFIXES.items():
                if svc["serviceName"].endswith(suffix) and live.tagged(svc.get("tags"), "key", "value"):
                    found[key] = svc["serviceName"]
    return found


def running_service(live: Live, key: str, want: int = 1) -> dict[str, Any]:
    """The service, ACTIVE with all of its (at least ``want``) desired tasks running; else CheckFailed."""
    name = service_names(live).get(key)
    if not name:
        raise live.nothing_deployed(f"{key} ECS service")
    cluster = live.cluster_name()
    found = live.client("ecs").describe_services(cluster=cluster, services=[name])["services"]
    if not found:
        raise live.fail([f"ECS service {name} does not exist in cluster {cluster}"], {"service": name})
    svc = found[0]
    primary: dict[str, Any] = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    figures = {"service": name, "status": svc.get("status"), "desired": svc.get("desiredCount"),
               "running": svc.get("runningCount"), "pending": svc.get("pendingCount"),
               "rollout": primary.get("rolloutState"), "task_definition": svc.get("taskDefinition")}
    problems = []
    if svc.get("status") != "ACTIVE":
        problems.append(f"ECS service {name} is {svc.get('status')}, not ACTIVE")
    elif int(svc.get("desiredCount") or 0) < want:
        problems.append(f"ECS service {name} wants {svc.get('desiredCount')} tasks; the stack wants {want}")
    elif svc.get("runningCount") != svc.get("desiredCount"):
        problems.append(f"ECS service {name} runs {svc.get('runningCount')} of {svc.get('desiredCount')} tasks")
    if primary.get("rolloutState") == "FAILED":
        problems.append(f"ECS service {name}'s deployment {primary.get('id')} FAILED: {primary.get('rolloutStateReason')}")
    if problems:
        raise live.fail(problems, figures, f"read the service's events (`aws ecs describe-services --services {name}`) "
                        "and its task logs; " + live.redeploy())
    figures["deployment_created"] = primary.get("createdAt")
    return {**svc, "_figures": figures}


def task_started(live: Live, svc: dict[str, Any]) -> tuple[Any, str]:
    """When the service's current tasks started (the earliest running one), and how that was read."""
    ecs, cluster, name = live.client("ecs"), live.cluster_name(), svc["serviceName"]
    arns = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING").get("taskArns", [])
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    # AWS groups a service's tasks as `service:<name>` (the filter above is all moto ignores).
    starts = [t["startedAt"] for t in tasks if t.get("group") == f"service:{name}" and t.get("startedAt")]
    if starts:
        return min(starts), f"task start ({len(starts)} running task(s))"
    primary = next(d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY")
    return primary["createdAt"], "the service deployment's creation (no running task reports its start)"


def container(live: Live, task_definition: str, name: str) -> dict[str, Any]:
    td = live.client("ecs").describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    found = next((c for c in td.get("containerDefinitions", []) if c.get("name") == name), None)
    if found is None:
        raise live.fail([f"task definition {td['family']}:{td['revision']} has no {name} container"],
                        {"task_definition": task_definition})
    return {**found, "_revision": f"{td['family']}:{td['revision']}"}


# ---- S8: the server ----------------------------------------------------------------------
def ui_over_https(ctx: CheckContext) -> Evidence:
    """GET ``/api/health`` and the UI at ``prefect_url`` over HTTPS, the certificate verified."""
    live = Live.of(ctx)
    site = PrefectSite.of(live)
    figures = site.reach()
    return live.evidence(f"Prefect UI and API healthy at {site.url} over HTTPS; certificate verified "
                         f"({figures['certificate_days_left']} days left)", figures, site.notes())


def server_survives_restart(ctx: CheckContext) -> Evidence:
    """The prefect-server service is ACTIVE with every desired task running, and Prefect's history
    predates the task that serves it now: a flow run started before that task did survived the
    replacement (it lives in RDS, not in the task). Read-only: nothing is restarted."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
    from prefect.client.schemas.sorting import FlowRunSort

    live = Live.of(ctx)
    svc = running_service(live, "prefect-server", live.config.prefect_server_count)
    started, how = task_started(live, svc)
    site = PrefectSite.of(live)
    site.reach()
    with site.client() as client:
        older: Any = client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(before_=started)),
                                           sort=FlowRunSort.START_TIME_ASC, limit=1)
        any_run: Any = older or client.read_flow_runs(sort=FlowRunSort.START_TIME_ASC, limit=1)
    figures = {**svc["_figures"], "task_started": started.isoformat(), "started_from": how}
    if not older:
        oldest = any_run[0].start_time.isoformat() if any_run and any_run[0].start_time else None
        raise live.fail([f"no flow run on {site.url} started before the prefect-server task that serves it now "
                         f"(started {started.isoformat()}; oldest run {oldest or 'none'}): the history did not "
                         "survive the task's replacement"], {**figures, "oldest_run": oldest},
                        "check that the task definition's PREFECT_SERVER_DATABASE_* settings point at the stack's "
                        "RDS instance (validation.aws.prefect:server_on_postgresql)")
    run = older[0]
    figures |= {"older_run": str(run.id), "older_run_started": run.start_time.isoformat()}
    notes = site.notes() + (["the emulator starts no task for a service: compared with its deployment's creation"]
                            if "deployment" in how else [])
    return live.evidence(f"ECS service {svc['serviceName']} runs {svc['runningCount']}/{svc['desiredCount']} tasks; "
                         f"flow run {run.name} ({run.start_time:%Y-%m-%d %H:%M} UTC) predates the current task "
                         f"({started:%Y-%m-%d %H:%M} UTC, from {how})", figures, notes)


def server_logs_in_cloudwatch(ctx: CheckContext) -> Evidence:
    """The server container logs to CloudWatch (awslogs, the stack's log group) and its log group
    received events from it in the last day."""
    live = Live.of(ctx)
    svc = running_service(live, "prefect-server", live.config.prefect_server_count)
    box = container(live, svc["taskDefinition"], "prefect-server")
    options = (box.get("logConfiguration") or {}).get("options", {})
    group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix", "")
    want = (live.log_groups() or {}).get("prefect-server")
    figures: dict[str, Any] = {"task_definition": box["_revision"], "log_group": group, "stream_prefix": prefix}
    if (box.get("logConfiguration") or {}).get("logDriver") != "awslogs" or not group:
        raise live.fail([f"{box['_revision']} prefect-server does not log to CloudWatch (awslogs)"], figures)
    if want and group != want:
        raise live.fail([f"{box['_revision']} prefect-server logs to {group}, not the stack's {want}"], figures)
    since = int((time.time() - LOG_WINDOW_HOURS * 3600) * 1000)
    kwargs = {"logStreamNamePrefix": f"{prefix}/"} if prefix else {}
    events = live.client("logs").filter_log_events(logGroupName=group, startTime=since, limit=1, **kwargs).get("events", [])
    if not events:
        raise live.fail([f"log group {group} received no event from the prefect-server container in "
                         f"{LOG_WINDOW_HOURS} h"], figures,
                        f"the server is not running or cannot write its logs: check ECS service {svc['serviceName']} "
                        "and its execution role's logs:PutLogEvents")
    figures["event_in_window"] = dt.datetime.fromtimestamp(events[0]["timestamp"] / 1000, dt.UTC).isoformat()
    return live.evidence(f"prefect-server logs reach {group} (streams {prefix}/…): events in the last "
                         f"{LOG_WINDOW_HOURS} h", figures)


def _database(live: Live) -> tuple[dict[str, Any], list[str]]:
    """What the running server task is told about its database, compared with the stack's RDS instance."""
    from urllib.parse import urlsplit

    svc = running_service(live, "prefect-server", live.config.prefect_server_count)
    box = container(live, svc["taskDefinition"], "prefect-server")
    env = {e["name"]: e.get("value", "") for e in box.get("environment", [])}
    secrets = {s["name"]: s.get("valueFrom", "") for s in box.get("secrets", [])}
    url_key = next((k for k in ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")
                    if k in env or k in secrets), None)
    if url_key:
        # A whole URL in a secret is read to compare its host; nothing of it is recorded.
        raw = env.get(url_key) or live.client("secretsmanager").get_secret_value(SecretId=secrets[url_key])["SecretString"]
        parts = urlsplit(raw)
        said = {"driver": parts.scheme, "host": parts.hostname, "port": str(parts.port or 5432),
                "name": parts.path.lstrip("/"), "credentials": secrets.get(url_key) or "in the URL"}
    else:
        said = {"driver": env.get("PREFECT_SERVER_DATABASE_DRIVER", ""), "host": env.get("PREFECT_SERVER_DATABASE_HOST"),
                "port": env.get("PREFECT_SERVER_DATABASE_PORT", "5432"), "name": env.get("PREFECT_SERVER_DATABASE_NAME"),
                "credentials": secrets.get("PREFECT_SERVER_DATABASE_PASSWORD") or "none"}
    ident = live.db_identifier()
    db = live.client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    endpoint = db.get("Endpoint") or {}
    managed = (db.get("MasterUserSecret") or {}).get("SecretArn")
    figures = {"task_definition": box["_revision"], "db": ident, "engine": db.get("Engine"),
               "db_status": db.get("DBInstanceStatus"), "server_database": {k: v for k, v in said.items() if k != "credentials"}}
    problems = []
    if not str(said["driver"]).startswith("postgresql"):
        problems.append(f"{box['_revision']} gives the server database driver {said['driver'] or 'none'} "
                        "(SQLite in the task: lost on restart), not postgresql+asyncpg")
    if said["host"] != endpoint.get("Address") or str(said["port"]) != str(endpoint.get("Port", 5432)):
        problems.append(f"{box['_revision']} points the server at {said['host']}:{said['port']}, not RDS instance "
                        f"{ident} ({endpoint.get('Address')}:{endpoint.get('Port')})")
    if db.get("Engine") != "postgres" or db.get("DBInstanceStatus") != "available":
        problems.append(f"RDS instance {ident} is {db.get('Engine')} {db.get('DBInstanceStatus')}, not postgres available")
    if db.get("DBName") and said["name"] and said["name"] != db["DBName"]:
        problems.append(f"{box['_revision']} names database {said['name']}; RDS instance {ident} holds {db['DBName']}")
    secret = str(said["credentials"])
    if managed and secret.startswith("arn:") and ":".join(secret.split(":")[:7]) != managed:
        problems.append(f"{box['_revision']} takes the database password from {':'.join(secret.split(':')[:7])}, "
                        f"not RDS instance {ident}'s managed secret")
    return figures, problems


def server_on_postgresql(ctx: CheckContext) -> Evidence:
    """The server task's database settings name the stack's RDS PostgreSQL instance (host, port,
    database, the instance's managed secret), and the server answers reads of its flow tables."""
    live = Live.of(ctx)
    figures, problems = _database(live)
    site = PrefectSite.of(live)
    site.reach()
    statuses = site.read_tables(["flow", "flow_run"])
    problems += [f"{site.api}/{CORE_TABLES[t]} answers {s}: the server cannot read table {t}"
                 for t, s in statuses.items() if s != 200]
    figures["reads"] = statuses
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"Prefect server ({figures['task_definition']}) on RDS PostgreSQL {figures['db']} "
                         f"({figures['server_database']['host']}); its API reads flows and flow runs", figures,
                         site.notes())


def database_migrated(ctx: CheckContext) -> Evidence:
    """The server's database (the stack's RDS instance, as for :func:`server_on_postgresql`) holds
    every core table: the API answers a read of each, down to the tables of Prefect 3's latest
    migrations (a server on a half-migrated database answers 500 there)."""
    live = Live.of(ctx)
    figures, problems = _database(live)
    site = PrefectSite.of(live)
    site.reach()
    statuses = site.read_tables(list(CORE_TABLES))
    figures["reads"] = statuses
    problems += [f"{site.api}/{CORE_TABLES[t]} answers {s}: table {t} is missing or behind (migrations incomplete)"
                 for t, s in statuses.items() if s != 200]
    if problems:
        raise live.fail(problems, figures, "read the prefect-server task's start-up logs for the migration error; "
                        "restart the service to run migrations again (`aws ecs update-service --force-new-deployment`)")
    with site.client() as client:
        version = figures["prefect_version"] = client.api_version()
    return live.evidence(f"Prefect {version} answers reads of all {len(statuses)} core tables on RDS {figures['db']}",
                         figures, site.notes())


# ---- S9: the ECS work pool and its worker ----------------------------------------------------
def ecs_work_pool(ctx: CheckContext) -> Evidence:
    """The work pool ``ecs_work_pool`` exists, is of type ecs, sends flow runs to this stack's
    cluster and has a worker whose last heartbeat is recent; the worker's ECS service runs, and
    its task starts ``prefect worker`` on that pool against this Prefect."""
    from prefect.exceptions import ObjectNotFound

    live = Live.of(ctx)
    pool_name = str(live.output("ecs_work_pool") or f"{live.config.prefix}-ecs")
    svc = running_service(live, "prefect-worker")
    box = container(live, svc["taskDefinition"], "prefect-worker")
    site = PrefectSite.of(live)
    site.reach()
    with site.client() as client:
        try:
            pool: Any = client.read_work_pool(pool_name)
        except ObjectNotFound:
            raise live.fail([f"work pool {pool_name} does not exist on {site.url}"], {"pool": pool_name},
                            f"run `finks deploy --env {ctx.env}` (it creates the pool)") from None
        workers: Any = client.read_workers_for_work_pool(pool_name)
    now = dt.datetime.now(dt.UTC)
    beats = {w.name: (w.last_heartbeat_time, w.heartbeat_interval_seconds or 30) for w in workers}
    alive = [n for n, (t, every) in beats.items() if t and (now - t).total_seconds() <= HEARTBEAT_MISSES * every]
    cluster = ((pool.base_job_template.get("variables") or {}).get("properties", {}).get("cluster") or {}).get("default")
    command, env = box.get("command") or [], {e["name"]: e.get("value") for e in box.get("environment", [])}
    figures = {"pool": pool_name, "type": pool.type, "paused": pool.is_paused, "cluster": cluster,
               "workers": {n: t.isoformat() if t else None for n, (t, _) in beats.items()}, "live_workers": alive,
               "worker_service": svc["_figures"], "worker_command": command}
    problems = []
    if pool.type != "ecs":
        problems.append(f"work pool {pool_name} is of type {pool.type}, not ecs")
    if pool.is_paused:
        problems.append(f"work pool {pool_name} is paused: no flow run leaves it")
    if cluster not in (live.cluster_name(), live.output("ecs_cluster_arn")):
        problems.append(f"work pool {pool_name} sends flow runs to cluster {cluster}, not {live.cluster_name()}")
    if not alive:
        problems.append(f"work pool {pool_name} has no live worker (last heartbeats: "
                        f"{figures['workers'] or 'none ever'})")
    if "--pool" not in command or command[command.index("--pool") + 1:][:1] != [pool_name]:
        problems.append(f"{box['_revision']} starts {' '.join(command) or 'no command'}, not a worker of {pool_name}")
    if env.get("PREFECT_API_URL") != f"https://{live.config.prefect_domain}/api":  # prefect_url's, on AWS
        problems.append(f"{box['_revision']} talks to {env.get('PREFECT_API_URL')}, not the stack's "
                        f"https://{live.config.prefect_domain}/api")
    if problems:
        raise live.fail(problems, figures, f"read the logs of ECS service {svc['serviceName']} (log group of "
                        f"prefect-worker); `finks deploy --env {ctx.env}` recreates the pool; " + live.redeploy())
    return live.evidence(f"ECS work pool {pool_name} on cluster {cluster}: worker {alive[0]} heartbeating; ECS service "
                         f"{svc['serviceName']} runs {svc['runningCount']}/{svc['desiredCount']}", figures, site.notes())
