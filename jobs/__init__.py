"""Bronze→silver jobs (DuckDB locally, Spark on Glue) and the dbt runner.

Heavy engines are imported inside the functions that need them, so importing
this package (or ``jobs.cli``) stays cheap.
"""
