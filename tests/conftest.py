"""Shared pytest configuration: fixtures live in tests/fixtures/, one module per area."""

import os

# Offline machines: no telemetry from anything our tests start.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Most tests run a run of one or two small checks: a preloaded parent (finks.zygote) would cost
# them more than it saves. tests/test_zygote.py turns it on where it is what is tested.
os.environ.setdefault("FINKS_CHECK_PRELOAD", "0")

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.fmp",
    "tests.fixtures.lake",
    "tests.fixtures.deployed",
    "tests.fixtures.prefect_env",
    "tests.fixtures.edge",
]
