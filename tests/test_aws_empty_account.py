"""On an AWS account where nothing is deployed, no live probe of the plan passes.

Every check the plan runs only on the AWS environments is called against an
empty moto account of this module's own, with no recorded stack outputs: each
must fail, saying what is missing on which environment. A probe that passed
here would verify a criterion with nothing deployed (a security scan of an
empty account finds nothing to complain about, an empty log group list has no
empty group). The list comes from the plan, so a new probe is covered the day
it is added. S0's checks are about the operator's machine and credentials, not
the stack, and are left out; S2's preview needs the Pulumi CLI.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.paths import REPO_ROOT
from finks.checks import CheckContext, CheckFailed
from finks.loader import load_plan
from tests.fixtures.deployed import endpoint_env

AWS_ENVS = {"dev", "staging", "prod"}
NOT_THE_STACK = {"s0"}  # the operator's toolchain, credentials and key
NEEDS_THE_PULUMI_CLI = {("s2", "program-previews")}  # an error before it reads the account, on any machine here


def _live_probes() -> list[tuple[str, str, str]]:
    out = []
    for sid, session in load_plan().sessions.items():
        if sid in NOT_THE_STACK:
            continue
        for criterion in session.criteria:
            for check in criterion.checks:
                if (sid, check.id) in NEEDS_THE_PULUMI_CLI:
                    continue
                if check.python and check.envs and set(check.envs) <= AWS_ENVS and "dev" in check.envs:
                    out.append((sid, check.id, check.python))
    return out


PROBES = _live_probes()


@pytest.fixture(scope="module")
def empty_account() -> Iterator[str]:
    from validation.emulator import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def on_empty_account(empty_account: str, monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint_env(monkeypatch, empty_account)
    return empty_account


def test_the_plan_has_live_probes_for_every_stack_session() -> None:
    sessions = {sid for sid, _, _ in PROBES}
    assert len(PROBES) >= 50
    assert {"s3", "s5", "s6", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18",
            "s19", "s20", "s21"} <= sessions


@pytest.mark.parametrize(("sid", "check", "target"), PROBES, ids=[f"{s}-{c}" for s, c, _ in PROBES])
def test_no_live_probe_passes_on_an_account_where_nothing_is_deployed(on_empty_account: str, tmp_path: Path,
                                                                       sid: str, check: str, target: str) -> None:
    module, _, name = target.partition(":")
    probe = getattr(importlib.import_module(module), name)
    ctx = CheckContext("dev", REPO_ROOT, tmp_path / "state", tmp_path / "work")
    with pytest.raises(CheckFailed) as failed:
        probe(ctx)
    assert "dev" in str(failed.value), f"{sid} {check}: the failure does not name the environment: {failed.value}"
