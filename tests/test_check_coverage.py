"""Every check the plan names has a test that makes it fail on a broken fixture.

The tests say so with ``@pytest.mark.check_fails("module:function")``; this
meta-test collects those marks (pytest's own collection, so parametrized and
f-string targets count) and compares them with the plan's python and plan
checks, gates included. A new check without such a test fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from finks.loader import load_plan

ROOT = Path(__file__).resolve().parent.parent


def plan_targets(plan_dir: Path | None = None) -> set[str]:
    plan = load_plan(plan_dir)
    specs = [c for s in plan.sessions.values() for crit in s.criteria for c in crit.checks]
    specs += [c for g in plan.gates.values() for c in g.checks]
    return {spec.target for spec in specs if spec.kind in ("python", "plan")}


def marked_targets(tmp_path: Path, *paths: str) -> dict[str, list[str]]:
    out = tmp_path / "check-fails.json"
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
           "-p", "tests.check_fails_dump", *paths]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "FINKS_CHECK_FAILS_OUT": str(out)})
    assert out.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_every_check_of_the_plan_has_a_test_that_makes_it_fail(tmp_path: Path) -> None:
    missing = sorted(plan_targets() - set(marked_targets(tmp_path, "tests")))
    assert missing == [], f"checks with no test that makes them fail: {missing}"


def test_the_meta_test_notices_an_unmarked_check(tmp_path: Path) -> None:
    tests = tmp_path / "tests_sample"
    tests.mkdir()
    (tests / "test_sample.py").write_text(
        "import pytest\n\n@pytest.mark.check_fails('validation.api:endpoints_work')\ndef test_x():\n    pass\n")
    found = marked_targets(tmp_path, str(tests))
    assert set(found) == {"validation.api:endpoints_work"}
    assert "validation.api:cache_works" in plan_targets() - set(found)
