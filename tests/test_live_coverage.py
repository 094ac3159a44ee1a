"""On an AWS environment every criterion can be verified: it has a check that runs there and gives
verified evidence (a live probe, or a property of the code proven by running it). The probes pass on
the healthy "deployed" fixture (tests/test_aws_probes.py runs every one of them for the policy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finks.loader import load_plan
from tests.planbuilder import criterion, session, write_plan


def unverifiable(plan_dir: Path | None, env: str) -> list[str]:
    """Criteria of ``env`` with no check that runs there and gives verified evidence."""
    plan = load_plan(plan_dir) if plan_dir else load_plan()
    out = []
    for sid, s in plan.sessions.items():
        for c in s.criteria:
            if c.applies(env) and not any(env in k.envs and k.evidence_grade.value == "verified" for k in c.checks):
                out.append(f"{sid}: {c.text}")
    return out


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_criterion_of_an_aws_environment_has_a_check_that_verifies_it_there(env: str) -> None:
    assert unverifiable(None, env) == []


def test_a_criterion_proven_only_under_mocks_or_only_locally_is_named(tmp_path: Path) -> None:
    write_plan(tmp_path, [session("s1", criteria=[
        criterion("planned only", {"id": "mocked", "plan": "infra.criteria:ecs_fargate_cluster"}),
        criterion("local only", {"id": "here", "shell": "true", "envs": ["local"]}),
        criterion("live", {"id": "probe", "shell": "true", "envs": ["dev"]}),
        criterion("local by nature", {"id": "ports", "shell": "true"}, envs=["local"]),
    ])])
    assert unverifiable(tmp_path, "dev") == ["s1: planned only", "s1: local only"]
