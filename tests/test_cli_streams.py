"""The platform commands' streams: data on stdout (one JSON document with --json),
sparse uncoloured progress on stderr without a terminal, a progress bar on one,
and Prefect's and dbt's logs in the run's log file."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.logsetup import command_console, progress
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FINKS = [sys.executable, "-c", "from finks.cli import main; main()"]
START, END = "2024-03-11", "2024-03-13"


def _env(lake: Path, fmp_url: str, **extra: str) -> dict[str, str]:
    """The stack's variables (the session fixture exported them) plus this test's lake and FMP."""
    env = {k: v for k, v in os.environ.items() if k not in ("FMP_API_KEY", "FORCE_COLOR", "CLICOLOR_FORCE")}
    env.update(FINKS_ENV="local", FINKS_LAKE_URI=str(lake), FMP_BASE_URL=fmp_url, FINKS_TASK_RETRY_DELAY_S="0",
               NO_COLOR="1", COLUMNS="120", LINES="40")
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FINKS, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _log_file(stderr: str) -> Path:
    match = re.search(r"^log: (.+)$", stderr, re.M)
    assert match, stderr
    return Path(match.group(1))


# ---- the console, in-process ------------------------------------------------

def test_stdout_written_during_a_run_goes_to_the_log_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    with command_console(tmp_path, "demo", stream=err):
        print("12:00:01  1 of 2 OK created sql table model main.dim_company")  # as dbt's console logger does
        progress("start", title="demo", total=2, unit="dates")
        progress("advance", item="2024-03-11", status="ok")
        progress("advance", item="2024-03-12", status="failed", detail="DateLocked")
    assert capsys.readouterr().out == ""
    lines = err.getvalue().splitlines()
    assert lines[:3] == ["demo: 2 dates", "demo 1/2: 2024-03-11 ok", "demo 2/2: 2024-03-12 failed (DateLocked)"]
    log = _log_file(err.getvalue())
    assert log.parent == tmp_path / "logs" and log.name.startswith("demo-")
    assert "1 of 2 OK created sql table model" in log.read_text()


def test_verbose_shows_log_records_and_nothing_leaks_after(tmp_path: Path) -> None:
    err = io.StringIO()
    with command_console(tmp_path, "demo", stream=err, verbose=True):
        logging.getLogger("prefect.flow_runs").warning("Finished in state Failed()")
        print("dbt line")
    progress("advance", item="late", status="ok")  # after the run: nobody listens
    text = err.getvalue()
    assert "prefect.flow_runs: Finished in state Failed()" in text and "dbt line" in text
    assert "late" not in text and "\x1b" not in text


def test_nothing_logged_means_no_log_file(tmp_path: Path) -> None:
    err = io.StringIO()
    with command_console(tmp_path, "quiet", stream=err):
        pass
    assert err.getvalue() == ""
    assert list((tmp_path / "logs").glob("quiet-*")) == []


# ---- the commands, as a shell runs them -------------------------------------

@pytest.fixture(scope="module")
def stream_lake(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A simulator and an empty lake that this module's commands fill in order."""
    from validation import support

    with support.simulator() as sim:
        yield tmp_path_factory.mktemp("streams") / "lake", sim.base_url


@pytest.fixture(scope="module")
def plain_backfill(stream_lake: tuple[Path, str]) -> subprocess.CompletedProcess[str]:
    lake, url = stream_lake
    return _run(["backfill", "--start", START, "--end", END, "--concurrency", "3"], _env(lake, url))


@pytest.mark.services
@pytest.mark.slow
def test_backfill_without_a_tty_prints_a_few_plain_lines(plain_backfill: subprocess.CompletedProcess[str]) -> None:
    proc = plain_backfill
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, err = proc.stdout.splitlines(), proc.stderr.splitlines()
    assert len(out) + len(err) <= 30, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    assert out[0].startswith(f"backfill {START}..{END}: 3 trading days, 3 ran")
    assert f"backfill {START}..{END}: 3 dates" in err
    assert {line.split(": ", 1)[1] for line in err if "/3: " in line} == {f"{d} ok" for d in (START, "2024-03-12", END)}
    log = _log_file(proc.stderr).read_text()
    assert "Finished in state Completed()" in log  # Prefect's records
    assert "finks.stdout" in log  # dbt's console, relayed


@pytest.mark.services
@pytest.mark.slow
def test_backfill_json_is_one_document(stream_lake: tuple[Path, str], plain_backfill: Any) -> None:
    lake, url = stream_lake
    proc = _run(["backfill", "--start", START, "--end", END, "--json"], _env(lake, url))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # the whole of stdout: nothing before or after the document
    assert report["schema"] == "finks.backfill/v1"
    assert report["skipped"] == 3 and report["gold"] == "published"
    assert "\x1b" not in proc.stderr


@pytest.mark.services
@pytest.mark.slow
def test_pipeline_run_json_is_one_document(stream_lake: tuple[Path, str], plain_backfill: Any) -> None:
    lake, url = stream_lake
    proc = _run(["pipeline", "run", "--date", END, "--json"], _env(lake, url))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["schema"] == "finks.pipeline-run/v1" and report["status"] == "ok"
    assert [s["step"] for s in report["steps"]] == ["ingestion", "transformation", "dbt"]
    err = proc.stderr.splitlines()
    assert [line.split(": ", 1)[1] for line in err if "/3: " in line] == [
        "ingestion completed", "transformation completed", "dbt completed"]
    assert "\x1b" not in proc.stderr


@pytest.mark.services
@pytest.mark.slow
def test_backfill_on_a_terminal_draws_progress(stream_lake: tuple[Path, str], plain_backfill: Any) -> None:
    lake, url = stream_lake
    env = _env(lake, url)
    env.pop("NO_COLOR")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*FINKS, "backfill", "--start", START, "--end", END, "--force"], env=env, cwd=ROOT,
                            stdin=follower, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    screen = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], 600)
        if not ready:
            proc.kill()
            pytest.fail(f"no output for 600s: {screen[-2000:]!r}")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=60) == 0, screen[-3000:]
    drawn = screen.decode(errors="replace")
    assert "3/3" in drawn and "dates" in drawn and "Traceback" not in drawn
    assert "\x1b" not in stdout and stdout.startswith(f"backfill {START}..{END}: 3 trading days, 3 ran")


def test_ingest_json_is_one_document(fmp_sim: Any, tmp_path: Path) -> None:
    env = {**_env(tmp_path / "lake", fmp_sim.base_url), "FINKS_STATE_DIR": str(tmp_path / "state"),
           "FMP_API_KEY": "sk-test", "FMP_CALLS_PER_MINUTE": "60000"}
    proc = _run(["ingest", "--date", "2024-03-05", "--symbols", "AAPL,MSFT", "--json"], env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["schema"] == "finks.ingest/v1" and result["counts"]["ok"] == 2
    assert proc.stderr == ""
