"""`finks status` in a fresh process without typer or pydantic, when nothing it reads has changed.

A status is derived from files only: the plan (``sessions/``), the history,
the files each session's fingerprint covers, and finks' own code. After
rendering, `finks status` stores its output here (:func:`remember`) with the
stat (size, mtime_ns) of every one of those files and the mtime of every
directory it walked, under ``<state dir>/cache/status-*.json``. A later
`finks status` restats them (:func:`answer_status`); when every one matches,
it prints the stored output: a few hundred stats instead of importing typer
and pydantic, most of the ~200 ms a full run takes. Any other command, any
option it does not know, or any changed input takes the ordinary path, which
stores a fresh memo.

Not remembered: a board with a run under way or interrupted (that depends
on locks, not files), ``--json`` of a board with a live claim (its
``remaining_s`` moves with the clock), and inputs modified less than
``RACY_S`` ago (another write within the same clock tick would keep their
size and mtime). The text of a board with live claims is remembered with a
``valid_until``: the moment the first "claimed by alice, 2 h left" would read
differently (or the lease expires and frees the session, no file changing).
A claim or release is an append to the history, so a memo from before it no
longer matches.

Imported first by :mod:`finks.cli`: when the process is `finks` (the
console script, ``python -m finks`` or ``python -m finks.cli``) and its arguments are a plain
`finks status`, the answer is printed and the process exits before typer is
imported. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

VERSION = 1
RACY_S = 2.0
_ENV_VARS = ("FINKS_ROOT", "FINKS_SESSIONS", "FINKS_STATE_DIR", "NO_COLOR", "TERM")


def parse(argv: list[str]) -> tuple[str | None, str, bool] | None:
    """(sessions, env, as_json) of a plain `finks [--sessions DIR] status [--env E] [--json]`, else None."""
    args = list(argv)
    sessions = os.environ.get("FINKS_SESSIONS") or None
    if args and args[0].startswith("--sessions"):
        if args[0] == "--sessions" and len(args) > 1:
            sessions, args = args[1], args[2:]
        elif args[0].startswith("--sessions="):
            sessions, args = args[0].split("=", 1)[1], args[1:]
        else:
            return None
    if not args or args[0] != "status":
        return None
    env = os.environ.get("FINKS_ENV", "local")
    as_json = False
    rest = args[1:]
    while rest:
        arg = rest.pop(0)
        if arg == "--json":
            as_json = True
        elif arg in ("--env", "-e") and rest:
            env = rest.pop(0)
        elif arg.startswith("--env="):
            env = arg.split("=", 1)[1]
        else:
            return None
    if env not in ("local", "dev", "staging", "prod"):
        return None  # the ordinary path says what is wrong
    return sessions, env, as_json


def _state_dir() -> str:
    from core.paths import state_dir

    return str(state_dir())


def _memo_path(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(_state_dir(), "cache", f"status-{digest}.json")


def memo_key(sessions: str | None, env: str, as_json: bool, tty: bool, colour: bool) -> dict[str, Any]:
    """Everything besides files that the output depends on."""
    return {"v": VERSION, "sessions": str(sessions or ""), "env": env, "json": as_json, "tty": tty,
            "colour": colour, "cwd": os.getcwd(), "vars": {k: os.environ.get(k) for k in _ENV_VARS}}


def _colour(stream: Any) -> bool:
    """As finks.reporters.use_colour decides it."""
    return bool(stream.isatty()) and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _unchanged(memo: dict[str, Any]) -> bool:
    for path, want in memo["files"].items():
        try:
            st = os.stat(path)
        except OSError:
            if want is not None:
                return False
            continue
        if want is None or st.st_size != want[0] or st.st_mtime_ns != want[1]:
            return False
    for path, want in memo["dirs"].items():
        try:
            if os.stat(path).st_mtime_ns != want:
                return False
        except OSError:
            if want is not None:
                return False
    return True


def answer_status(argv: list[str]) -> bool:
    """Print the remembered output of this `finks status` if nothing it read has changed."""
    parsed = parse(argv)
    if parsed is None:
        return False
    sessions, env, as_json = parsed
    key = memo_key(sessions, env, as_json, sys.stdout.isatty(), _colour(sys.stdout))
    try:
        with open(_memo_path(key), encoding="utf-8") as handle:
            memo = json.load(handle)
        if memo.get("key") != key or not _unchanged(memo):
            return False
        if memo.get("valid_until") is not None and time.time() >= memo["valid_until"]:
            return False  # a claim's time left now reads differently, or its lease has expired
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    sys.stdout.write(memo["text"] + "\n")
    sys.stdout.flush()
    return True


def remember(key: dict[str, Any], text: str, files: dict[str, tuple[int, int] | None], dirs: list[str],
             valid_until: float | None = None) -> None:
    """Store a rendered status with the stat of its inputs (and, if it reads the clock, until when it
    holds: an epoch time); quietly give up on a racy or unwritable one."""
    now = time.time()
    stats: dict[str, list[int] | None] = {}
    for path, seen in files.items():
        try:
            st = os.stat(path)
        except OSError:
            stats[path] = None
            continue
        if seen is not None and (st.st_size, st.st_mtime_ns) != tuple(seen):
            return  # it changed while status read it
        if now - st.st_mtime_ns / 1e9 < RACY_S:
            return
        stats[path] = [st.st_size, st.st_mtime_ns]
    dir_stats: dict[str, int | None] = {}
    for path in dirs:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            dir_stats[path] = None  # not there yet (no history): its creation is a change
            continue
        if now - mtime / 1e9 < RACY_S:
            return
        dir_stats[path] = mtime
    target = _memo_path(key)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"key": key, "text": text, "files": stats, "dirs": dir_stats, "valid_until": valid_until},
                      handle, separators=(",", ":"))
        os.replace(tmp, target)
    except OSError:
        pass


def code_files(root: str) -> dict[str, tuple[int, int] | None]:
    """finks' own loaded code under the repository (not third-party packages): an edit changes the output."""
    out: dict[str, tuple[int, int] | None] = {}
    venv = os.path.join(root, ".venv") + os.sep
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and path.startswith(root + os.sep) and not path.startswith(venv) and path.endswith(".py"):
            out[path] = None
    return out


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def before_status(sessions: Any, store: Any) -> dict[str, Any]:
    """Taken before the board reads anything: the plan's files and the history, as they are now."""
    from finks.loader import default_sessions_dir

    directory = str(sessions or default_sessions_dir())
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith((".yaml", ".yml")))
    except OSError:
        names = []
    files = [os.path.join(directory, n) for n in names] + [str(store.path)]
    return {"files": {f: _stat(f) for f in files}, "dirs": [directory, str(store.dir)]}


def remember_status(before: dict[str, Any], board: Any, text: str, sessions: Any, env: str, as_json: bool,
                    stream: Any) -> None:
    """Remember a `finks status` the ordinary path rendered, unless it depends on more than files."""
    from finks.outcomes import SessionState

    if any(row.status in (SessionState.in_progress, SessionState.interrupted) for row in board.all()):
        return
    valid_until = None
    if board.claims:
        if as_json:
            return  # remaining_s moves with the clock
        valid_until = board.now.timestamp() + min(c.describe_stable_s(board.now) for c in board.claims.values())
    import finks

    files = code_files(os.path.dirname(os.path.dirname(os.path.abspath(finks.__file__))))
    files.update(code_files(str(board.root)))
    files.update(board.hashes.seen)
    files.update(before["files"])
    key = memo_key(sessions, env, as_json, stream.isatty(), _colour(stream))
    remember(key, text, files, [*before["dirs"], *board.hashes.dirs], valid_until)


def _is_finks_process() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) in ("finks.cli", "finks.__main__") or os.path.basename(sys.argv[0]) == "finks"


if _is_finks_process() and answer_status(sys.argv[1:]):
    sys.exit(0)
