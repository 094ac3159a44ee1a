"""docker-compose.yml cannot run here (no Docker engine): validate its structure instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_defines_postgres_prefect_and_localstack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "prefect-server", "localstack"}


def test_every_image_tag_is_pinned(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        image, _, tag = svc["image"].rpartition(":")
        assert image and tag and tag != "latest", f"{name}: image {svc['image']} is not pinned"
        assert re.match(r"^\d+(\.\d+)+", tag), f"{name}: tag {tag} is not a version"


def test_every_service_has_a_healthcheck_with_timeouts(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        check = svc.get("healthcheck") or {}
        assert check.get("test") and check.get("interval") and check.get("timeout"), name
        assert int(check.get("retries", 0)) >= 3, name


def test_prefect_waits_for_healthy_postgres_and_uses_it(compose: dict[str, Any]) -> None:
    prefect = compose["services"]["prefect-server"]
    assert prefect["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = prefect["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in url
    assert prefect["environment"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_ports_are_the_plan_ports_bound_to_localhost(compose: dict[str, Any]) -> None:
    ports = {name: svc.get("ports", []) for name, svc in compose["services"].items()}
    assert any(p.endswith(":4200") and p.startswith("127.0.0.1:") for p in ports["prefect-server"])
    assert "127.0.0.1:4566:4566" in ports["localstack"]
    assert ports["postgres"] == []  # only reachable inside the compose network


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name in ("postgres", "prefect-server", "localstack"):
        mounts = compose["services"][name]["volumes"]
        sources = {m.split(":", 1)[0] for m in mounts}
        assert sources and sources <= declared, f"{name} mounts {sources}, not named volumes"


def test_localstack_emulates_the_services_finks_bootstraps(compose: dict[str, Any]) -> None:
    from finks.devstack.services import EMULATED

    services = set(compose["services"]["localstack"]["environment"]["SERVICES"].split(","))
    assert set(EMULATED) <= services
    assert compose["services"]["localstack"]["environment"]["DEFAULT_REGION"].endswith("ca-central-1}")
