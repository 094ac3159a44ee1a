"""The docs are executed: what README.md and docs/ show is what finks does.

The convention a page follows is in docs/README.md ("The docs are executed");
in short:

- ```console blocks: `$ cmd` lines run; the lines after one, up to the next
  `$ `, must each match a printed line once both are normalised (checkout,
  state and handoffs paths, service ports, timings, run ids, dates, times,
  UUIDs, PIDs, runs of spaces); `…` stands for any text. A command exits 0
  unless its shown output contains `finks: error:`.
- ```bash / sh / shell blocks: every command line runs and exits 0.
- `<!-- docs-test: needs aws|docker|pulumi -->` or `<!-- docs-test: not run:
  REASON -->` on the line before a block: never run. `<!-- docs-test: slow -->`:
  run for real only by the slow test; the fast test runs its `finks run` /
  `make run` with `--dry-run` instead, its other commands as they are, checks
  no output and accepts exit 0 or 1 (a session blocked in a fresh state).
- Every `finks …` in code spans and shell blocks names a real command with
  real options (`--help` after the command's name exits 0); `make TARGET` is a
  Makefile target; `python -m MODULE` imports.
- `make TARGET` runs the `finks` line of `make -n TARGET` instead (no
  reinstall); `make test`, `test-fast`, `lint`, `bench`, `install` never run.
  `aws`, `docker`, `pulumi`, `claude` commands never run.

Each page runs in one bash session of its own (variables, `&` jobs and `$?`
carry from block to block) in a scratch state: FINKS_STATE_DIR and
FINKS_HANDOFFS under tmp_path, free ports for every service, a PostgreSQL
database of its own (SQLite when none answers), no `.env`; `finks dev down`
ends every page. docs/cli.md is generated from `--help` (`python -m
finks.docgen`) and checked for drift here.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATED = {ROOT / "docs" / "cli.md"}
PAGES = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if p not in GENERATED]
RUN_LANGS = {"console", "bash", "sh", "shell"}
EXTERNAL = {"aws", "docker", "pulumi", "claude"}
NEVER_RUN_MAKE = {"test", "test-fast", "lint", "bench", "install"}
DEFAULT_PORTS = {"FINKS_PREFECT_PORT": 4200, "FINKS_MOTO_PORT": 5000, "FINKS_API_PORT": 8000,
                 "FMP_SIM_PORT": 8765}
PLACEHOLDERS = [(r"YYYY-MM-DD", "2024-01-05"), (r"\bD1\b", "2024-01-02"), (r"\bD2\b", "2024-01-05"),
                (r"\bsNN\b", "s1"), (r"(?<= )N\b", "2"), (r"\$\{?D\}?(?![A-Za-z0-9_])", "2024-01-05")]
STEP_TIMEOUT_S = 300.0
SLOW_STEP_TIMEOUT_S = 1800.0
_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(.+?)\s*-->\s*$")
_SPAN = re.compile(r"`([^`]+)`")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_VOLATILE = [  # (pattern, placeholder), in this order
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b\d{8}T\d{6}Z(?:-[0-9a-f]{6})?\b"), "<run>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}\b"), "<clock>"),
    (re.compile(r"\b\d+h\d{2}m\b|\b\d+m\d{2}s\b|\b\d+(?:\.\d+)?(?:ms|s)\b"), "<t>"),
    (re.compile(r"\bpid \d+"), "pid <pid>"),
]
_PID_COLUMN = re.compile(r"(https?://\S+) \d+ ")  # `finks dev status`: the PID after the URL


# ---- reading pages ------------------------------------------------------------
@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    marker: str  # "", "slow", "needs aws …", "not run: …"
    lines: list[str]

    @property
    def where(self) -> str:
        return f"{_rel(self.page)}:{self.line}"


@dataclass
class Step:
    command: str
    shown: list[str] | None  # console: the output shown; bash: None
    line: int
    block: Block

    @property
    def where(self) -> str:
        return f"{_rel(self.block.page)}:{self.line}"


def read_page(page: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """The page's fenced blocks, and its prose lines (outside fences) with their numbers."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    lines = page.read_text().splitlines()
    open_fence: tuple[str, Block] | None = None
    previous = ""
    for number, line in enumerate(lines, 1):
        if open_fence is not None:
            if line.strip().startswith(open_fence[0]) and not line.strip().strip(open_fence[0][0]):
                blocks.append(open_fence[1])
                open_fence, previous = None, ""
            else:
                open_fence[1].lines.append(line)
            continue
        fence = _FENCE.match(line.strip())
        if fence:
            marker = _MARKER.match(previous.strip())
            open_fence = (fence.group(1), Block(page, number, fence.group(2).lower(),
                                                marker.group(1) if marker else "", []))
            prose.append((number, ""))  # a block ends the paragraph before it
            continue
        prose.append((number, line))
        if line.strip():
            previous = line
    return blocks, prose


def steps(block: Block) -> list[Step]:
    found: list[Step] = []
    pending = ""
    for offset, raw in enumerate(block.lines, 1):
        number = block.line + offset
        line = raw.rstrip()
        if pending:
            pending += "\n" + line
            if not line.endswith("\\"):
                found[-1].command = pending
                pending = ""
            continue
        if block.lang == "console":
            if line.startswith("$ "):
                found.append(Step(line[2:], [], number, block))
                pending = line[2:] if line.endswith("\\") else ""
            elif found and found[-1].shown is not None:
                found[-1].shown.append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            found.append(Step(line, None, number, block))
            pending = line if line.endswith("\\") else ""
    return found


def command_lines(page: Path) -> Iterator[tuple[int, str]]:
    """Every command the page shows: prose code spans, and the command lines of shell blocks."""
    blocks, prose = read_page(page)
    paragraph: list[tuple[int, str]] = []
    for number, line in [*prose, (0, "")]:  # a code span may run over a line break, not a paragraph
        if line.strip():
            paragraph.append((number, line))
            continue
        if paragraph:
            text = "\n".join(part for _, part in paragraph)
            for match in _SPAN.finditer(text):
                yield paragraph[0][0] + text.count("\n", 0, match.start()), " ".join(match.group(1).split())
        paragraph = []
    for block in blocks:
        if block.lang in RUN_LANGS:
            for step in steps(block):
                yield step.line, step.command


def _tokens(segment: str) -> list[str]:
    try:
        tokens = shlex.split(segment, comments=True)
    except ValueError:
        return []
    while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
        tokens.pop(0)
    return tokens


def invocations(text: str) -> Iterator[list[str]]:
    """The programs a command line calls, placeholders filled: ['finks', 'run', 's1'], ['make', 'run']…"""
    for pattern, value in PLACEHOLDERS:
        text = re.sub(pattern, value, text)
    for segment in re.split(r"\|\||&&|[|;&()\n]|\s--\s", text):
        tokens = _tokens(segment)
        if not tokens:
            continue
        if tokens[0].endswith("/bin/finks"):
            tokens[0] = "finks"
        kept: list[str] = []
        for token in tokens:
            # the rest is elided or a placeholder: `finks …`, `<session>`, `make TARGET`
            if "…" in token or token == "..." or token.startswith("<") \
                    or re.fullmatch(r"[A-Z][A-Z_]+", token):
                if kept and kept[-1].startswith("-"):
                    kept.pop()  # its value is the placeholder: `--help` must not become the value
                break
            kept.append(token)
        if kept:
            yield kept


# ---- the CLI, the Makefile ------------------------------------------------------
def _finks_help(args: list[str]) -> str | None:
    """None when `finks COMMAND --help OPTIONS…` exits 0, else what it said.

    `--help` goes right after the (sub)command, so it can never be taken as an
    option's value and run the command; click still refuses an unknown option.
    """
    import typer
    import typer.main
    from typer.testing import CliRunner

    from finks.cli import app

    command: object = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="finks")  # type: ignore[arg-type]
    depth = 0
    while depth < len(args) and hasattr(command, "get_command"):
        sub = command.get_command(ctx, args[depth])
        if sub is None:
            break
        command, ctx, depth = sub, typer.Context(sub, info_name=args[depth], parent=ctx), depth + 1
    if hasattr(command, "get_command") and depth < len(args) and not args[depth].startswith("-"):
        return f"no such command {' '.join(['finks', *args[:depth + 1]])!r}"
    result = CliRunner().invoke(app, [*args[:depth], "--help", *args[depth:]], prog_name="finks")
    if result.exit_code == 0 and "Usage: finks" in result.output:
        return None
    return (result.output.strip().splitlines() or [f"exit {result.exit_code}"])[-1]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M))


def _make_dry(target: str) -> tuple[int, list[str]]:
    done = subprocess.run(["make", "-n", "-s", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.splitlines()


# ---- running pages ---------------------------------------------------------------
class Shell:
    """One bash session fed command by command; output (stdout and stderr) up to a marker."""

    def __init__(self, env: dict[str, str]) -> None:
        self.token = uuid.uuid4().hex
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def run(self, command: str, timeout: float) -> tuple[int, list[str]]:
        assert self.proc.stdin is not None
        # `(exit $rc)` gives the command the previous one's $?; stdin is /dev/null so
        # nothing reads the rest of this script.
        script = (f"(exit ${{__docs_rc:-0}})\n{{ {command}\n}} </dev/null\n__docs_rc=$?\n"
                  f"printf '\\n{self.token} %s\\n' \"$__docs_rc\"\n")
        self.proc.stdin.write(script.encode())
        self.proc.stdin.flush()
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no end after {timeout:.0f}s; last lines: {out[-5:]}") from None
            if line is None:
                raise RuntimeError(f"the shell exited; last lines: {out[-5:]}")
            if line.startswith(self.token):
                if out and out[-1] == "":
                    out.pop()
                return int(line.split()[1]), out
            out.append(line)

    def close(self) -> None:
        try:
            self.run("kill $(jobs -p) 2>/dev/null; wait", timeout=30)
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)  # this session's own process group
                self.proc.wait(30)


@dataclass
class Scratch:
    tmp: Path
    ports: dict[str, int]
    database_url: str | None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state, self.handoffs = self.tmp / "state", self.tmp / "handoffs"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINKS_", "FMP_", "PREFECT_"))}
        env.update({k: str(v) for k, v in self.ports.items()})
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            FINKS_STATE_DIR=str(self.state), FINKS_HANDOFFS=str(self.handoffs),
            FINKS_ENV_FILE=str(self.tmp / "no.env"),  # this checkout's .env is not the docs'
            DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PYTHONUNBUFFERED="1", NO_COLOR="1",
        )
        if self.database_url:
            env["FINKS_DATABASE_URL"] = self.database_url
        else:
            env["FINKS_PREFECT_DATABASE"] = "sqlite"
        self.env = env

    def command(self, text: str) -> str:
        """The command as typed, aimed at this scratch's ports instead of the defaults."""
        for name, default in DEFAULT_PORTS.items():
            text = re.sub(rf"(?<![\d.]){default}(?!\d)", str(self.ports[name]), text)
        return text

    def normalise(self, line: str) -> str:
        line = _ANSI.sub("", line)
        for real, shown in ((str(self.state), ".finks"), (str(self.handoffs), "handoffs"),
                            (f"{ROOT}/", ""), (str(ROOT), ".")):
            line = line.replace(real, shown)
        for name, port in self.ports.items():
            line = re.sub(rf"(?<!\d){port}(?!\d)", str(DEFAULT_PORTS[name]), line)
        if not self.database_url:  # without PostgreSQL here, read the shown backend as ours
            line = line.replace("(sqlite)", "(postgresql)")
        for pattern, placeholder in _VOLATILE:
            line = pattern.sub(placeholder, line)
        line = " ".join(line.split())
        return _PID_COLUMN.sub(r"\1 <pid> ", line + " ").strip()


def missing(shown: list[str], printed: list[str], scratch: Scratch) -> list[str]:
    """The shown lines no printed line matches."""
    real = [scratch.normalise(line) for line in printed]
    absent = []
    for line in shown:
        want = scratch.normalise(line)
        if want in ("", "…"):
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("…")))
        if not any(pattern.fullmatch(r) for r in real):
            absent.append(line)
    return absent


def _planned(step: Step, slow: bool) -> tuple[str | None, bool, str]:
    """(command to run or None, dry-run stand-in?, note) for one step."""
    tokens = _tokens(step.command)
    if not tokens:  # only assignments, `D=2024-01-05`: they set the shell's variables
        return step.command, False, ""
    if tokens[0] in EXTERNAL:
        return None, False, "external tool"
    command = step.command
    if tokens[0] == "make":
        target = tokens[1] if len(tokens) > 1 else ""
        rc, recipe = _make_dry(target)
        if rc != 0:
            return None, False, f"`make -n {target}` exited {rc}"
        if target in NEVER_RUN_MAKE:
            return None, False, "make target of the test suite"
        lines = [re.sub(r"^\S*/bin/finks\b", "finks", line)
                 for line in recipe if re.match(r"^\S*/bin/finks ", line)]
        if not lines:
            return None, False, f"`make -n {target}` has no finks line to run"
        command, tokens = " && ".join(lines), _tokens(lines[-1])
    if step.block.marker == "slow" and not slow:
        if tokens[:2] == ["finks", "run"]:
            return shlex.join([*tokens, "--dry-run"]), True, ""
        return command, True, ""
    return command, False, ""


def run_page(page: Path, scratch: Scratch, *, slow: bool = False) -> list[str]:
    """Run a page like a newcomer; return what did not hold, each naming page and line."""
    problems: list[str] = []
    blocks, _ = read_page(page)
    shell = Shell(scratch.env)
    try:
        for block in blocks:
            if block.lang not in RUN_LANGS or block.marker.startswith(("needs", "not run")):
                continue
            for step in steps(block):
                command, stand_in, note = _planned(step, slow)
                if command is None:
                    if note.startswith("`make"):
                        problems.append(f"{step.where}: {step.command}: {note}")
                    continue
                timeout = SLOW_STEP_TIMEOUT_S if block.marker == "slow" else STEP_TIMEOUT_S
                rc, printed = shell.run(scratch.command(command), timeout)
                shown = step.shown or []
                may_fail = any("finks: error:" in line for line in shown)
                if stand_in:
                    if rc >= 2:
                        problems.append(f"{step.where}: {command} exited {rc}: {printed[-3:]}")
                    continue
                if rc != 0 and not may_fail:
                    problems.append(f"{step.where}: {step.command} exited {rc}: {printed[-5:]}")
                    continue
                absent = missing(shown, printed, scratch)
                problems += [f"{step.where}: {step.command}: shown but not printed: {line!r}"
                             for line in absent]
                if absent:
                    tail = [scratch.normalise(line) for line in printed][-12:]
                    problems.append(f"{step.where}: output was (normalised): {tail}")
    finally:
        shell.close()
        subprocess.run(["finks", "dev", "down"], cwd=ROOT, env=scratch.env, capture_output=True, timeout=120)
    return problems


def _runnable(page: Path, *, slow: bool) -> bool:
    """Fast: the page has a block to run (slow ones by stand-ins). Slow: it has a slow block."""
    blocks, _ = read_page(page)
    return any(b.lang in RUN_LANGS and not b.marker.startswith(("needs", "not run"))
               and (b.marker == "slow" or not slow) and steps(b) for b in blocks)


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else page.name


# ---- fixtures ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    from finks.devstack.procs import free_port

    chosen: dict[str, int] = {}
    for name in DEFAULT_PORTS:
        port = free_port()
        while port in chosen.values():
            port = free_port()
        chosen[name] = port
    return chosen


@pytest.fixture(scope="module")
def database_url() -> Iterator[str | None]:
    from finks.devstack.database import drop_database, postgres_available

    if not postgres_available():
        yield None
        return
    url = f"postgresql://finks@127.0.0.1:5432/finks_docs_{uuid.uuid4().hex[:10]}"
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def scratch(tmp_path: Path, ports: dict[str, int], database_url: str | None) -> Scratch:
    return Scratch(tmp_path, ports, database_url)


# ---- tests ------------------------------------------------------------------------------
def test_cli_reference_is_generated_from_help() -> None:
    from finks import docgen

    current = (ROOT / docgen.OUT).read_text() if (ROOT / docgen.OUT).is_file() else ""
    assert current == docgen.render(), "docs/cli.md is not what --help prints; run 'python -m finks.docgen'"


def command_problems(pages: list[Path]) -> list[str]:
    """Every `finks …`, `make …` and `python -m …` the pages show that does not exist."""
    targets = make_targets()
    problems = []
    for page in pages:
        for number, text in command_lines(page):
            for call in invocations(text):
                where = f"{_rel(page)}:{number}: {' '.join(call)}"
                if call[0] == "finks":
                    error = _finks_help(call[1:])
                    if error:
                        problems.append(f"{where}: {error}")
                elif call[0] == "make":
                    problems += [f"{where}: no target {t!r}" for t in call[1:]
                                 if "=" not in t and not t.startswith("-") and t not in targets]
                elif re.fullmatch(r"(\S*/)?python3?", call[0]) and call[1:2] == ["-m"] and len(call) > 2:
                    if importlib.util.find_spec(call[2]) is None:
                        problems.append(f"{where}: no module {call[2]}")
    return problems


def test_every_command_the_docs_show_exists_with_its_options() -> None:
    assert command_problems(PAGES) == []


def test_a_command_option_target_or_module_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Run `finks ingest --date YYYY-MM-DD --dataset quotes --colour` or `finks dev upp`;\n"
                    "then `make runn` and `python -m finks.nodoc`.\n"
                    "```bash\nFINKS_ENV=local finks run sNN --force && finks why sNN | head\n```\n")
    problems = command_problems([page])
    assert [p.split(": ", 2)[1] for p in problems] == [
        "finks ingest --date 2024-01-05 --dataset quotes --colour", "finks dev upp", "make runn",
        "python -m finks.nodoc"]
    assert "No such option: --colour" in problems[0]


def test_readme_names_exactly_the_commands_without_json() -> None:
    import typer
    import typer.main

    from finks.cli import app

    text = " ".join((ROOT / "README.md").read_text().split())
    claim = re.search(r"Every command takes `--json`.*? except (.*?)\. ", text)
    assert claim, "README.md: the sentence 'Every command takes `--json` … except …' is gone"
    named = {span for span in _SPAN.findall(claim.group(1)) if not span.startswith("-")}
    lacking = set()

    def walk(command: object, path: list[str], ctx: typer.Context) -> None:
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):  # type: ignore[attr-defined]
                sub = command.get_command(ctx, name)  # type: ignore[attr-defined]
                walk(sub, [*path, name], typer.Context(sub, info_name=name, parent=ctx))
        elif "--json" not in {o for p in getattr(command, "params", []) for o in getattr(p, "opts", [])}:
            lacking.add(" ".join(path))

    root = typer.main.get_command(app)
    walk(root, [], typer.Context(root, info_name="finks"))
    assert named == lacking


def test_a_shown_line_that_is_not_printed_or_a_failing_command_is_reported(scratch: Scratch) -> None:
    page = scratch.tmp / "page.md"
    page.write_text(
        "```console\n"
        f"$ echo 'run 20240101T000000Z-abcdef ok in 3.2s under {scratch.state}/dev'\n"
        "run 20261125T215933Z-6406ff ok in 14.0s under .finks/dev\n"
        "$ echo hello\n"
        "goodbye\n"
        "$ false\n"
        "$ (echo 'finks: error: nope'; exit 2)\n"
        "finks: error: nope\n"
        "```\n")
    problems = run_page(page, scratch)
    assert [p for p in problems if "output was" not in p] == [
        "page.md:4: echo hello: shown but not printed: 'goodbye'",
        "page.md:6: false exited 1: []",
    ]


@pytest.mark.services
@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p, slow=False)], ids=_rel)
def test_page_commands_run_and_print_what_is_shown(page: Path, scratch: Scratch) -> None:
    assert run_page(page, scratch) == []


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.skipif(not os.environ.get("FINKS_DOCS_FULL_RUN"),
                    reason="runs the whole plan (make run) once per page, ~10 min each: set FINKS_DOCS_FULL_RUN=1; "
                           "make run itself proves the plan, the fast test checks the same commands by --dry-run")
@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p, slow=True)], ids=_rel)
def test_slow_page_commands_run_for_real(page: Path, scratch: Scratch) -> None:
    assert run_page(page, scratch, slow=True) == []
