"""Glue: catalog database, silver tables, a bronze crawler and the bronze->silver Spark job.

The job runs `jobs/glue_bronze_to_silver.py` (the same transformation the
local DuckDB engine runs), uploaded to the logs bucket's `glue/` prefix by
Pulumi so the deployed script always matches the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent

SCRIPT = Path("jobs/glue_bronze_to_silver.py")
SCRIPT_KEY = "glue/scripts/glue_bronze_to_silver.py"

# Silver tables: (column, Glue type) per dataset, partitioned by `date`.
# Silver's columns come from the one definition the bronze→silver job uses
# (jobs/datasets.py); only their Glue types are decided here. `date` is the
# partition key, so it is not a column of the table.
_GLUE_TYPES = {
    "volume": "bigint", "average_volume": "bigint", "full_time_employees": "bigint",
    "ingested_at": "timestamp", "quote_timestamp": "timestamp", "ipo_date": "date",
    "is_etf": "boolean", "is_actively_trading": "boolean", "is_adr": "boolean", "is_fund": "boolean",
}
_STRINGS = {"symbol", "name", "exchange", "exchange_full_name", "company_name", "sector", "industry", "country",
            "currency", "price_range", "cik", "isin", "cusip", "website", "ceo", "source_file"}


def _silver_tables() -> dict[str, list[tuple[str, str]]]:
    from jobs.datasets import DATASETS

    return {
        name: [(col, "string" if col in _STRINGS else _GLUE_TYPES.get(col, "double"))
               for col in dataset.columns if col != "date"]
        for name, dataset in DATASETS.items()
    }


SILVER_TABLES = _silver_tables()


@dataclass(frozen=True)
class GlueArgs:
    common: Common
    role_arn: pulumi.Input[str]
    buckets: dict[str, pulumi.Output[str]]
    kms_key_arn: pulumi.Input[str]
    repo_root: Path


class Glue(FinksComponent):
    kind = "Glue"

    def __init__(self, name: str, args: GlueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        db_name = c.prefix.replace("-", "_")
        self.database = aws.glue.CatalogDatabase(
            self.child("db"), name=db_name, description="Finks lake: silver tables and crawled bronze",
            tags=c.tags, opts=self.opts(),
        )
        silver = args.buckets["silver"]
        self.tables = {
            dataset: aws.glue.CatalogTable(
                self.child(f"table-{dataset}"),
                name=f"silver_{dataset}",
                database_name=self.database.name,
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "parquet", "EXTERNAL": "TRUE"},
                partition_keys=[aws.glue.CatalogTablePartitionKeyArgs(name="date", type="date")],
                storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                    location=pulumi.Output.concat("s3://", silver, f"/{dataset}/"),
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                    columns=[aws.glue.CatalogTableStorageDescriptorColumnArgs(name=n, type=t) for n, t in columns],
                ),
                opts=self.opts(),
            )
            for dataset, columns in SILVER_TABLES.items()
        }
        self.security_configuration = aws.glue.SecurityConfiguration(
            self.child("security"),
            name=f"{c.prefix}-glue",
            encryption_configuration=aws.glue.SecurityConfigurationEncryptionConfigurationArgs(
                s3_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationS3EncryptionArgs(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=args.kms_key_arn
                ),
                cloudwatch_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationCloudwatchEncryptionArgs(
                    cloudwatch_encryption_mode="DISABLED"
                ),
                job_bookmarks_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationJobBookmarksEncryptionArgs(
                    job_bookmarks_encryption_mode="DISABLED"
                ),
            ),
            opts=self.opts(),
        )
        self.crawler = aws.glue.Crawler(
            self.child("bronze-crawler"),
            name=f"{c.prefix}-bronze",
            database_name=self.database.name,
            role=args.role_arn,
            table_prefix="bronze_",
            s3_targets=[
                aws.glue.CrawlerS3TargetArgs(path=pulumi.Output.concat("s3://", args.buckets["bronze"], "/fmp/"), exclusions=["**/_manifest.json"])
            ],
            schema_change_policy=aws.glue.CrawlerSchemaChangePolicyArgs(update_behavior="UPDATE_IN_DATABASE", delete_behavior="LOG"),
            security_configuration=self.security_configuration.name,
            schedule="cron(30 23 ? * MON-FRI *)",
            tags=c.tags,
            opts=self.opts(),
        )
        self.script = aws.s3.BucketObjectv2(
            self.child("script"),
            bucket=args.buckets["logs"],
            key=SCRIPT_KEY,
            source=pulumi.FileAsset(str(args.repo_root / SCRIPT)),
            content_type="text/x-python",
            tags=c.tags,
            opts=self.opts(),
        )
        self.job = aws.glue.Job(
            self.child("bronze-to-silver"),
            name=f"{c.prefix}-bronze-to-silver",
            role_arn=args.role_arn,
            glue_version="5.0",
            worker_type="G.1X",
            number_of_workers=2,
            timeout=60,
            max_retries=1,
            security_configuration=self.security_configuration.name,
            command=aws.glue.JobCommandArgs(
                name="glueetl",
                python_version="3",
                script_location=pulumi.Output.concat("s3://", args.buckets["logs"], f"/{SCRIPT_KEY}"),
            ),
            default_arguments={
                "--job-language": "python",
                "--enable-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--job-bookmark-option": "job-bookmark-disable",
                "--FINKS_ENV": c.env,
                # The script's own flags (jobs/glue_bronze_to_silver.py); each run adds --DATE.
                "--SOURCE": pulumi.Output.concat("s3://", args.buckets["bronze"]),
                "--TARGET": pulumi.Output.concat("s3://", args.buckets["silver"]),
                "--additional-python-modules": "pydantic-settings>=2.3",
            },
            execution_property=aws.glue.JobExecutionPropertyArgs(max_concurrent_runs=1),
            tags=c.tags,
            opts=self.opts(depends_on=[self.script]),
        )
        self.register_outputs({"database": self.database.name, "job": self.job.name, "crawler": self.crawler.name})
