"""``python -m jobs.dbt build --target athena``: the dbt image's CMD."""

from jobs.dbt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
