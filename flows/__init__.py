"""Prefect orchestration of the Finks pipeline.

Small tasks with retries do the work (`flows.tasks`); flows only compose
(`ingestion`, `transformation`, `dbt`, `quality`, `master_flow`, `backfill`).
Importing this package is cheap: Prefect is imported by the flow modules only.
"""
