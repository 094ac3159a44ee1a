"""The parsed dbt project, shared by the invocations of a process and kept between runs.

dbt parses the whole project on every invocation, about half of what a build
costs. :func:`jobs.dbt.invoke.invoke` instead hands dbt a Manifest
(``dbtRunner(manifest=...)``: dbt/cli/requires.py ``setup_manifest`` then
skips parsing), parsed once with ``dbt parse`` and kept here in memory under a
key that changes whenever anything a parse reads does:

    every file of the project (path and content)
    the target, and the vars the project names
    the environment variables the project and its profile read (``env_var``), and DBT_*
    dbt's version

Two values are left out, because neither can change what a parse produces:

* the directory of the run's DuckDB file: every run has its own
  (write-audit-publish), but dbt-duckdb names the database after the file
  name, and that is ``candidate.duckdb`` in every run;
* vars the project never names (``run_date``): when every ``var(...)`` of the
  project names its var literally, no other var can reach a model; when one
  does not, every var counts.

A new process starts from dbt's partial parsing: each (target, vars, profile)
parses in a directory of its own under ``<home>/dbt/parse/``, kept between
runs, with the DuckDB path pointing into it, so dbt finds its
``partial_parse.msgpack`` again and its profile unchanged (dbt compares the
profile's values; the per-run path alone would force a full parse every time).
dbt re-reads the files it finds changed, and parses in full when vars,
profile, target or its version differ. A lock keeps two processes from
parsing in one directory at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.environ import scoped
from jobs.dbt.args import DUCKDB_PATH_VAR, DbtArgs

KEEP = 4                    # manifests held in memory (a run needs one; Athena's two phases two)
_SKIP_DIRS = frozenset({"target", "logs", "__pycache__", ".git"})
# what dbt renders: SQL, YAML values, Python models, docs blocks (not the project's README)
_JINJA = frozenset({".sql", ".yml", ".yaml", ".py", ".md"})
_ENV_VAR = re.compile(r"""\benv_var\(\s*['"]([^'"]+)['"]""")
_ENV_VAR_ANY = re.compile(r"\benv_var\b")
_VAR = re.compile(r"""\bvar\(\s*['"]([^'"]+)['"]""")
_VAR_ANY = re.compile(r"\bvar\b")

_lock = threading.Lock()
_manifests: OrderedDict[str, Any] = OrderedDict()


@dataclass(frozen=True)
class Project:
    """What a parse reads from the project directory."""

    digest: str                         # every file's path and content (a README's too)
    env_vars: frozenset[str] | None     # names given to env_var(); None: one is not a literal
    var_names: frozenset[str] | None    # names given to var(); None: one is not a literal


@dataclass(frozen=True)
class Parse:
    """How to parse for one run, and where the result is kept."""

    key: str                            # the in-memory cache key
    vars: dict[str, Any]                # the vars the parse is given
    slot: Path | None                   # kept between runs for dbt's partial parsing
    env: dict[str, str]                 # environment changes for the parse


def scan(project_dir: Path) -> Project:
    digest = hashlib.sha256()
    env_vars: set[str] | None = set()
    var_names: set[str] | None = set()
    for path in sorted(_files(project_dir)):
        data = path.read_bytes()
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + data + b"\0")
        if path.suffix not in _JINJA or (path.suffix == ".md" and path.parent == project_dir):
            continue
        text = data.decode("utf-8", "replace")
        if path.suffix in (".yml", ".yaml"):
            # dbt renders YAML values, never its comments
            text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        env_vars = _names(text, _ENV_VAR, _ENV_VAR_ANY, env_vars)
        var_names = _names(text, _VAR, _VAR_ANY, var_names)
    return Project(digest.hexdigest(),
                   None if env_vars is None else frozenset(env_vars),
                   None if var_names is None else frozenset(var_names))


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                yield Path(dirpath) / name


def _names(text: str, literal: re.Pattern[str], any_use: re.Pattern[str],
           found: set[str] | None) -> set[str] | None:
    """Add the literal names; None (stays None) once a use is not a literal name."""
    if found is None:
        return None
    names = literal.findall(text)
    if len(any_use.findall(text)) != len(names):
        return None
    return found | set(names)


def plan(args: DbtArgs, environ: Mapping[str, str] | None = None) -> Parse:
    """The key, vars, directory and environment of the parse ``args`` need."""
    import dbt.version

    env = os.environ if environ is None else environ
    project = scan(args.project_dir)
    names = project.env_vars if project.env_vars is not None else frozenset(env)
    seen = {n: _comparable(n, env.get(n)) for n in sorted(names | {k for k in env if k.startswith("DBT_")})}
    parse_vars = {k: v for k, v in args.vars.items()
                  if project.var_names is None or k in project.var_names}
    profile = {"target": args.target, "vars": parse_vars, "env": seen, "dbt": dbt.version.__version__}
    key = _hash({**profile, "project": project.digest, "dir": str(args.project_dir)})
    slot = None
    overrides: dict[str, str] = {}
    if args.parse_root is not None:
        slot = args.parse_root / f"{args.target}-{_hash({**profile, 'dir': str(args.project_dir)})[:16]}"
        if env.get(DUCKDB_PATH_VAR):
            overrides[DUCKDB_PATH_VAR] = str(slot / Path(env[DUCKDB_PATH_VAR]).name)
    return Parse(key, parse_vars, slot, overrides)


def _comparable(name: str, value: str | None) -> str | None:
    if name == DUCKDB_PATH_VAR and value:
        return Path(value).name         # the database is named after the file, not its folder
    return value


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def parsing(parse: Parse) -> Iterator[None]:
    """The parse's environment, and its slot to itself (other processes wait)."""
    if parse.slot is None:
        with scoped(parse.env):
            yield
        return
    parse.slot.mkdir(parents=True, exist_ok=True)
    with open(parse.slot / ".lock", "w") as lock, scoped(parse.env):
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def lookup(key: str) -> Any | None:
    with _lock:
        manifest = _manifests.get(key)
        if manifest is not None:
            _manifests.move_to_end(key)
        return manifest


def remember(key: str, manifest: Any) -> None:
    with _lock:
        _manifests[key] = manifest
        _manifests.move_to_end(key)
        while len(_manifests) > KEEP:
            _manifests.popitem(last=False)


def forget() -> None:
    """Drop every manifest held in memory (the next invocation parses again)."""
    with _lock:
        _manifests.clear()
