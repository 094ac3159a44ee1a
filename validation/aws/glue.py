"""Live probes for S13: the Glue catalog, job and crawler as deployed, and the job's last run.

What they are compared with is the program's dry plan (``Live.plan``): the
database, the silver tables with the columns the bronze→silver job writes
(``jobs.datasets``), the job's script, role, Glue version and arguments, the
crawler's database, target and schedule. The job's script object must be the
commit's ``jobs/glue_bronze_to_silver.py`` byte for byte. Found through the
stack outputs (``glue_job``, ``glue_database``, ``glue_crawler``), else the
stack's tags (Glue's ListJobs and ListCrawlers filter by tag; the database is
the crawler's).
"""

from __future__ import annotations

from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live
from validation.aws.transform import list_keys, read_object

NOT_RUN = "moto models a job run's states (STARTING → RUNNING → SUCCEEDED) but runs no script, and no run can fail"


def _planned(live: Live, type_: str) -> dict[str, Any]:
    return dict(live.plan.one(type_).inputs)


def _tagged(live: Live, kind: str) -> list[str]:
    """Names of the Glue jobs or crawlers carrying this stack's tags."""
    glue = live.client("glue")
    if kind == "job":
        return list(glue.list_jobs(Tags=live.tags).get("JobNames", []))
    return list(glue.list_crawlers(Tags=live.tags).get("CrawlerNames", []))


def job_name(live: Live) -> str:
    if live.output("glue_job"):
        return str(live.output("glue_job"))
    names = [n for n in _tagged(live, "job") if n.endswith("-bronze-to-silver")]
    if not names:
        raise live.nothing_deployed("Glue bronze→silver job")
    return names[0]


def _crawler_name(live: Live) -> str:
    if live.output("glue_crawler"):
        return str(live.output("glue_crawler"))
    names = _tagged(live, "crawler")
    if not names:
        raise live.nothing_deployed("Glue crawler")
    return names[0]


def _database_name(live: Live, crawler: dict[str, Any] | None) -> str:
    if live.output("glue_database"):
        return str(live.output("glue_database"))
    if crawler and crawler.get("DatabaseName"):
        return str(crawler["DatabaseName"])
    raise live.nothing_deployed("Glue database")


def _get(call: Any, key: str, **kwargs: Any) -> dict[str, Any] | None:
    """One Glue description, or None when Glue has no such entity."""
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)[key]  # type: ignore[no-any-return]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
            return None
        raise


def _table_problems(live: Live, database: str, planned: dict[str, Any], silver: str | None) -> tuple[list[str], Any]:
    """One silver table: exists, the job's columns with the program's types, partitioned by date, at its prefix."""
    import io

    import pyarrow.parquet as pq

    glue = live.client("glue")
    name = planned["name"]
    table = _get(glue.get_table, "Table", DatabaseName=database, Name=name)
    if table is None:
        return [f"Glue table {database}.{name} does not exist"], None
    sd = table.get("StorageDescriptor") or {}
    have = [(c["Name"], c["Type"]) for c in sd.get("Columns", [])]
    want = [(c["name"], c["type"]) for c in planned["storageDescriptor"]["columns"]]
    problems = []
    if have != want:
        kinds = dict(have)
        diff = [f"missing {[c for c, _ in want if c not in kinds]}" if any(c not in kinds for c, _ in want) else "",
                f"extra {[c for c, _ in have if c not in dict(want)]}" if any(c not in dict(want) for c, _ in have) else "",
                "; ".join(f"{c} is {kinds[c]}, not {t}" for c, t in want if c in kinds and kinds[c] != t)]
        problems.append(f"Glue table {database}.{name} does not have the columns the job writes: "
                        + ("; ".join(d for d in diff if d) or "the same columns in another order"))
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if keys != [k["name"] for k in planned.get("partitionKeys", [])]:
        problems.append(f"Glue table {database}.{name} is partitioned by {keys}, not by date")
    if sd.get("Location") != planned["storageDescriptor"]["location"]:
        problems.append(f"Glue table {database}.{name} reads {sd.get('Location')}, not {planned['storageDescriptor']['location']}")
    written = None
    if silver:  # the columns really in silver, when the job has written some
        prefix = planned["storageDescriptor"]["location"].split("/", 3)[-1]
        part = next((k for k in list_keys(live, silver, prefix + "date=") if k.endswith(".parquet")), None)
        data = read_object(live, silver, part) if part else None
        if data is not None:
            written = [n for n in pq.read_schema(io.BytesIO(data)).names if n not in keys]
            if written != [c for c, _ in have]:
                problems.append(f"s3://{silver}/{part} has columns {written}; Glue table {database}.{name} "
                                f"declares {[c for c, _ in have]}")
    return problems, written


def glue_catalog_and_job(ctx: CheckContext) -> Evidence:
    """The Glue database, a silver table per dataset with the columns the job writes (and, where
    silver exists, the columns really in it), the job (script = this commit's, role, Glue version,
    arguments) and the bronze crawler, as the program declares them."""
    from infra.components.glue import SCRIPT

    live = Live.of(ctx)
    glue = live.client("glue")
    buckets = live.buckets()
    problems: list[str] = []
    crawler_name = _crawler_name(live)
    crawler = _get(glue.get_crawler, "Crawler", Name=crawler_name)
    database = _database_name(live, crawler)
    if _get(glue.get_database, "Database", Name=database) is None:
        problems.append(f"Glue database {database} does not exist")
    tables: dict[str, Any] = {}
    for planned in live.plan.of_type("aws:glue/catalogTable:CatalogTable"):
        found, written = _table_problems(live, database, dict(planned.inputs), buckets.get("silver"))
        problems += found
        tables[planned.inputs["name"]] = {"silver_columns_checked": written is not None}

    want_job = _planned(live, "aws:glue/job:Job")
    name = job_name(live)
    job = _get(glue.get_job, "Job", JobName=name)
    job_figures: dict[str, Any] = {"name": name}
    if job is None:
        problems.append(f"Glue job {name} does not exist")
    else:
        script = (job.get("Command") or {}).get("ScriptLocation", "")
        job_figures.update(script=script, glue_version=job.get("GlueVersion"), role=str(job.get("Role", "")).rsplit("/", 1)[-1])
        if script != want_job["command"]["scriptLocation"]:
            problems.append(f"Glue job {name} runs {script}, not {want_job['command']['scriptLocation']}")
        else:
            bucket, _, key = script.removeprefix("s3://").partition("/")
            deployed = read_object(live, bucket, key)
            if deployed is None:
                problems.append(f"Glue job {name}'s script {script} does not exist")
            elif deployed != (ctx.root / SCRIPT).read_bytes():
                problems.append(f"Glue job {name}'s script {script} is not this commit's {SCRIPT}")
        if job.get("GlueVersion") != want_job["glueVersion"]:
            problems.append(f"Glue job {name} runs Glue {job.get('GlueVersion')}, not {want_job['glueVersion']}")
        if job_figures["role"] != live.roles().get("glue"):
            problems.append(f"Glue job {name} runs as {job_figures['role']}, not {live.roles().get('glue')}")
        arguments = job.get("DefaultArguments") or {}
        for flag in ("--SOURCE", "--TARGET"):
            if arguments.get(flag) != want_job["defaultArguments"][flag]:
                problems.append(f"Glue job {name} has {flag} {arguments.get(flag)}, not {want_job['defaultArguments'][flag]}")

    want_crawler = _planned(live, "aws:glue/crawler:Crawler")
    crawler_figures: dict[str, Any] = {"name": crawler_name}
    if crawler is None:
        problems.append(f"Glue crawler {crawler_name} does not exist")
    else:
        paths = [t.get("Path") for t in (crawler.get("Targets") or {}).get("S3Targets", [])]
        schedule = (crawler.get("Schedule") or {}).get("ScheduleExpression")
        crawler_figures.update(targets=paths, schedule=schedule, database=crawler.get("DatabaseName"))
        if crawler.get("DatabaseName") != want_crawler["databaseName"]:
            problems.append(f"Glue crawler {crawler_name} writes to {crawler.get('DatabaseName')}, not {want_crawler['databaseName']}")
        if paths != [t["path"] for t in want_crawler["s3Targets"]]:
            problems.append(f"Glue crawler {crawler_name} crawls {paths}, not {[t['path'] for t in want_crawler['s3Targets']]}")
        if schedule != want_crawler.get("schedule"):
            problems.append(f"Glue crawler {crawler_name} is scheduled {schedule}, not {want_crawler.get('schedule')}")
    figures = {"database": database, "tables": tables, "job": job_figures, "crawler": crawler_figures}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"Glue database {database}, {len(tables)} silver tables with the job's columns, job {name} "
                         f"(Glue {job_figures['glue_version']}, this commit's script), crawler {crawler_name} "
                         f"({crawler_figures['schedule']})", figures, ["the crawler is declared, not started"])


def glue_job_succeeded(ctx: CheckContext) -> Evidence:
    """The bronze→silver job's last finished run SUCCEEDED, on this stack's bronze and silver,
    and the silver partitions of its date are there."""
    from jobs.datasets import DATASETS

    live = Live.of(ctx)
    name = job_name(live)
    runs = []
    for page in live.client("glue").get_paginator("get_job_runs").paginate(JobName=name):
        runs += page.get("JobRuns", [])
    finished = sorted((r for r in runs if r.get("JobRunState") not in ("STARTING", "RUNNING", "STOPPING", "WAITING")),
                      key=lambda r: r["StartedOn"], reverse=True)
    figures: dict[str, Any] = {"job": name, "runs": len(runs), "running": len(runs) - len(finished)}
    remedy = f"run bronze→silver for a date on {ctx.env} (`finks pipeline run --env {ctx.env} --date YYYY-MM-DD`)"
    if not finished:
        raise live.fail([f"Glue job {name} has no finished run" + (" (one is running)" if runs else "")], figures, remedy)
    last = finished[0]
    arguments = last.get("Arguments") or {}
    figures.update(run_id=last["Id"], state=last["JobRunState"], started=str(last["StartedOn"]),
                   date=arguments.get("--DATE"), seconds=last.get("ExecutionTime"))
    if last["JobRunState"] != "SUCCEEDED":
        raise live.fail([f"Glue job {name}'s last run {last['Id']} ended {last['JobRunState']}: "
                         f"{last.get('ErrorMessage') or 'no error message'}"], figures,
                        "read the run's log in CloudWatch (/aws-glue/jobs), fix the script or the data, then " + remedy)
    buckets = live.buckets()
    problems = [f"Glue job {name}'s last run {last['Id']} had {flag} {arguments.get(flag)}, not s3://{buckets.get(zone)}"
                for flag, zone in (("--SOURCE", "bronze"), ("--TARGET", "silver"))
                if arguments.get(flag, "").rstrip("/") != f"s3://{buckets.get(zone)}"]
    day = arguments.get("--DATE")
    if not day:
        problems.append(f"Glue job {name}'s last run {last['Id']} names no --DATE")
    elif not problems:
        wanted = arguments.get("--DATASETS", ",".join(d.silver for d in DATASETS.values())).split(",")
        problems += [f"Glue job {name}'s last run {last['Id']} SUCCEEDED for {day} but wrote no "
                     f"s3://{buckets['silver']}/{ds}/date={day}/"
                     for ds in wanted if not list_keys(live, buckets["silver"], f"{ds}/date={day}/")]
    if problems:
        raise live.fail(problems, figures, remedy)
    return live.evidence(f"Glue job {name}: last run {last['Id']} SUCCEEDED for {day}; its silver partitions are in "
                         f"s3://{buckets['silver']}", figures, [NOT_RUN])
