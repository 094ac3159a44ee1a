"""Verdicts: a criterion is verified, planned, unverified or failed; a session is complete only on accepted ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from finks.models import Session
from finks.outcomes import SessionState, Verdict
from finks.verdicts import judge
from tests.planbuilder import CliEnv, cli_env, criterion, session, write_plan


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    return cli_env(tmp_path, monkeypatch)


def py(target: str, cid: str = "c", **kw: object) -> dict[str, object]:
    return {"id": cid, "python": f"tests.check_targets:{target}", **kw}


# ---- the pure rule --------------------------------------------------------------
def _session(*criteria: dict[str, object]) -> Session:
    return Session.model_validate(session("s1", criteria=list(criteria)))


def _record(check: str, outcome: str, grade: str = "verified") -> dict[str, str]:
    return {"check": check, "outcome": outcome, "grade": grade, "message": f"{check} {outcome}"}


@pytest.mark.parametrize("records, verdict, label", [
    ([_record("a", "passed")], Verdict.verified, "verified"),
    ([_record("a", "passed", "planned")], Verdict.planned, "planned"),
    ([_record("a", "passed", "planned"), _record("b", "passed")], Verdict.verified, "verified"),
    ([_record("a", "skipped"), _record("b", "skipped")], Verdict.unverified, "unverified"),
    ([], Verdict.unverified, "unverified"),
    ([_record("a", "passed"), _record("b", "failed")], Verdict.failed, "failed"),
    ([_record("a", "passed"), _record("b", "error")], Verdict.failed, "error"),
])
def test_a_criterions_verdict_follows_its_checks_records(records: list[dict[str, str]], verdict: Verdict,
                                                        label: str) -> None:
    s = _session(criterion("it works", {"id": "a", "shell": "true"}, {"id": "b", "shell": "true"}))
    (judged,) = judge(s, records, "local", accept_planned=True).criteria
    assert (judged.verdict, judged.label) == (verdict, label)


def test_planned_evidence_counts_only_where_the_policy_accepts_it() -> None:
    s = _session(criterion("it is planned", {"id": "a", "shell": "true", "grade": "planned"}))
    records = [_record("a", "passed", "planned")]
    assert judge(s, records, "local", accept_planned=True).state == SessionState.complete
    on_dev = judge(s, records, "dev", accept_planned=False)
    assert on_dev.state == SessionState.unverified
    assert "dev needs verified evidence" in on_dev.criteria[0].remedy


def test_a_criterion_for_other_environments_is_no_criterion_here() -> None:
    s = _session(criterion("local only", {"id": "a", "shell": "true"}, envs=["local"]))
    on_prod = judge(s, [], "prod", accept_planned=False)
    assert on_prod.criteria == () and on_prod.excluded == 1
    assert on_prod.state == SessionState.not_applicable


def test_a_record_without_a_grade_takes_the_plans_word_for_it() -> None:
    s = _session(criterion("planned", {"id": "a", "python": "m:f", "grade": "planned"}))
    (judged,) = judge(s, [{"check": "a", "outcome": "passed"}], "local", accept_planned=True).criteria
    assert judged.verdict == Verdict.planned


# ---- through the CLI ---------------------------------------------------------------
def test_a_session_with_a_criterion_that_has_no_applicable_check_is_unverified(env: CliEnv) -> None:
    write_plan(env.plan, [
        session("s1", criteria=[criterion("it works", {"id": "ok", "shell": "true"}),
                                criterion("it is deployed", {"id": "deployed", "shell": "true", "envs": ["dev", "prod"]})]),
        session("s2", deps=("s1",))])
    result = env.invoke("run", "s1")
    assert result.exit_code == 1  # unverified is not a pass
    assert "0 passed, 0 failed, 1 unverified" in result.stdout
    assert env.status() == {"s1": "unverified", "s2": "blocked"}  # it does not unlock s2
    why = env.invoke("why", "s1").stdout
    assert why.splitlines()[0].startswith("s1: unverified")
    assert "unverified: it is deployed — no check applies on local" in why
    assert "deployed (verified; envs dev, prod): skipped: not for environment 'local'" in why
    finished = [e for e in env.history() if e["type"] == "run_finished"][-1]
    assert finished["outcome"] == "unverified"


def test_a_session_whose_checks_all_skip_is_not_complete(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", checks=[py("skips", "a"), {"id": "b", "shell": "true", "envs": ["prod"]}])])
    assert env.invoke("run", "s1").exit_code == 1
    assert env.status()["s1"] == "unverified"
    row = env.json("status")["sessions"][0]
    (crit,) = row["verdicts"]["criteria"]
    assert crit["verdict"] == "unverified" and "its checks skipped: a: no such tool here" in crit["remedy"]


def test_a_session_all_of_whose_criteria_passed_is_complete(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", criteria=[criterion("one", py("passes", "a")),
                                                  criterion("two", {"id": "b", "shell": "true"})])])
    result = env.invoke("run", "s1")
    assert result.exit_code == 0 and "1 passed, 0 failed" in result.stdout
    assert "criteria: 2 verified" in result.stdout
    assert env.status()["s1"] == "complete"
    assert "complete         w1   1-2h  Session s1 title" in env.invoke("status").stdout
    assert "· 2 verified" in env.invoke("status").stdout
    checks = [e for e in env.history() if e["type"] == "check"]
    assert [c["grade"] for c in checks] == ["verified", "verified"]


def test_a_planned_only_criterion_is_complete_on_local_but_not_on_dev(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", checks=[py("passes", "mocked", grade="planned")])])
    assert env.invoke("run", "s1").exit_code == 0
    assert env.status("local")["s1"] == "complete"
    result = env.invoke("run", "s1", "--env", "dev")
    assert result.exit_code == 1
    assert env.status("dev")["s1"] == "unverified"
    (crit,) = env.json("status", "--env", "dev")["sessions"][0]["verdicts"]["criteria"]
    assert (crit["verdict"], crit["accepted"]) == ("planned", False)
    assert "planned only; dev needs verified evidence" in crit["remedy"]


def test_the_evidence_policy_lives_in_the_plans_yaml(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", checks=[py("passes", "mocked", grade="planned")])],
               gates={"environments": {"dev": {"accept_planned": True}, "local": {"accept_planned": False}},
                      "gates": []})
    env.invoke("run", "s1", "--env", "dev")
    env.invoke("run", "s1")
    assert env.status("dev")["s1"] == "complete"
    assert env.status("local")["s1"] == "unverified"


def test_a_session_with_no_criterion_on_an_environment_is_not_applicable_and_done(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", criteria=[criterion("local stack", {"id": "a", "shell": "true"},
                                                            envs=["local"])]),
                          session("s2", deps=("s1",))])
    result = env.invoke("run", "s1", "--env", "prod")
    assert result.exit_code == 0 and "1 not applicable on prod" in result.stdout
    assert env.status("prod") == {"s1": "not_applicable", "s2": "ready"}
    assert "no criterion applies to prod" in env.invoke("status", "--env", "prod").stdout
    assert not [e for e in env.history("prod") if e["type"] == "check"]  # nothing to check there


def test_an_error_is_a_failed_criterion_with_its_own_label(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", checks=[py("crashes")])])
    assert env.invoke("run", "s1").exit_code == 1
    (crit,) = env.json("show", "s1")["status"]["verdicts"]["criteria"]
    assert (crit["verdict"], crit["label"]) == ("failed", "error")
    assert "❌ error: s1 works" in env.invoke("show", "s1").stdout


def test_the_handoff_shows_each_criterions_verdict_with_a_legend(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", criteria=[
        criterion("real", py("passes", "a")),
        criterion("mocked", py("passes", "b", grade="planned")),
        criterion("elsewhere", {"id": "c", "shell": "true", "envs": ["prod"]}),
        criterion("broken", py("fails", "d"))])])
    env.invoke("run", "s1")
    text = (env.handoffs / "local" / "s01-session-s1-title.md").read_text()
    assert "✅ verified (exercised the real thing) · 📐 planned" in text
    assert "- ✅ real — verified" in text and "- 📐 mocked — planned (Pulumi mocks)" in text
    assert "- ⚠️ elsewhere — unverified: no check applies on local" in text and "- ❌ broken — failed" in text
    assert "`b` passed: verified the thing (env=local, session=s1) [0." in text and "s, planned]" in text
    prime = env.invoke("prime", "s1").stdout
    assert "- [x] ✅ verified: real" in prime and "- [ ] ⚠️ unverified: elsewhere" in prime
    assert env.json("handoff", "s1")["verdicts"]["counts"] == {"verified": 1, "planned": 1, "unverified": 1,
                                                              "failed": 1}


def test_a_plan_check_is_its_own_kind_in_the_yaml(tmp_path: Path) -> None:
    from core.errors import PlanError
    from finks.loader import load_plan

    text = textwrap.dedent("""\
        id: s1
        title: Planned thing
        week: 1
        area: finks-test
        estimate_hours: [1, 2]
        tasks: [{title: plan it}]
        criteria:
          - text: RDS is Multi-AZ in prod
            checks:
              - {id: multi-az, plan: "infra.criteria:rds_postgres_multi_az", args: [true], stack: prod}
    """)
    (tmp_path / "s1.yaml").write_text(text)
    (check,) = load_plan(tmp_path).sessions["s1"].checks
    assert (check.kind, check.target, check.args, check.stack, check.evidence_grade) == (
        "plan", "infra.criteria:rds_postgres_multi_az", (True,), "prod", "planned")
    (tmp_path / "s1.yaml").write_text(text.replace(", stack: prod", ", grade: verified"))
    with pytest.raises(PlanError, match="s1.yaml:10: .*its grade is planned"):
        load_plan(tmp_path)
    (tmp_path / "s1.yaml").write_text(text.replace('plan: "infra.criteria:rds_postgres_multi_az", ', 'shell: "true", '))
    with pytest.raises(PlanError, match="args and stack belong to a plan check"):
        load_plan(tmp_path)


@pytest.mark.slow
def test_plan_checks_assert_on_the_real_dry_plan(env: CliEnv) -> None:
    (env.root / "fakecriteria.py").write_text(
        "def has_resources(plan, at_least):\n"
        "    return f'{len(plan.custom)} resources', {'resources': len(plan.custom), 'at_least': at_least}\n")
    write_plan(env.plan, [
        session("s1", checks=[{"id": "any", "plan": "fakecriteria:has_resources", "args": [1]},
                              {"id": "prod-multi-az", "plan": "infra.criteria:rds_postgres_multi_az", "args": [True],
                               "stack": "prod", "timeout": 300}]),
        session("s2", checks=[{"id": "dev-multi-az", "plan": "infra.criteria:rds_postgres_multi_az", "args": [True],
                               "timeout": 300}])])
    env.invoke("run", "--all")
    checks = {e["check"]: e for e in env.history() if e["type"] == "check"}
    assert checks["any"]["outcome"] == "passed" and checks["any"]["grade"] == "planned"
    assert checks["any"]["message"].startswith("planned (Pulumi mocks), stack dev: ")
    assert checks["prod-multi-az"]["outcome"] == "passed", checks["prod-multi-az"]
    assert checks["prod-multi-az"]["message"].startswith("planned (Pulumi mocks), stack prod: ")
    assert checks["dev-multi-az"]["outcome"] == "failed"  # dev is single-AZ by its config: NotMet
    assert env.status() == {"s1": "complete", "s2": "failed"}
    assert "· 1 planned" in env.invoke("status").stdout
