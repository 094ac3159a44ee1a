"""Finks read API: FastAPI over the published gold marts.

Locally the app queries the marts' Parquet files with DuckDB; in AWS the same
app runs behind API Gateway on Lambda (Mangum) and queries Athena. Entry
points: :func:`api.app.create_app`, ``api.lambda_handler.handler`` and the
``serve`` / ``openapi`` commands in :mod:`api.cli`.
"""

API_VERSION = "v1"
