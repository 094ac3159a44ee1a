"""Shared pytest configuration: fixtures live in tests/fixtures/, one module per area."""

import os

# Offline machines: no telemetry from anything our tests start.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.fmp",
    "tests.fixtures.lake",
    "tests.fixtures.deployed",
]
