"""What a session's evidence was about: its fingerprint.

A session validated once stays complete only while nothing it was judged on
has changed. Its fingerprint has three parts:

    deliverables  the content of every file under its deliverables
    entry         its own plan entry (the session's YAML as the model reads it, canonical JSON)
    code          the source of what its checks and actions call: for ``python: mod:fn``
                  the file of ``mod``; for ``plan:`` the criteria module and the Pulumi
                  program (``infra/``); for a pytest selection the test files it names

Files are hashed once per content: :class:`FileHashes` keeps each file's
sha256 by (path, size, mtime_ns) in a small JSON file under the state
directory, so that `finks status` only stats files it has seen before. A file
modified less than :data:`RACY_S` seconds ago is hashed but not remembered:
another write within the same clock tick would keep its size and mtime.

Module files are found by path, never by importing: the repository root
first, then ``sys.path`` (a check module on PYTHONPATH, as in tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finks.models import Session

RACY_S = 2.0
CACHE_VERSION = 1
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", "target", "logs", "dbt_packages", ".venv"}
# What a plan check runs besides its criteria module: the Pulumi program and its stack files.
PROGRAM_DIR = "infra"


@dataclass
class FileHashes:
    """sha256 of files by (size, mtime_ns); ``seen`` and ``dirs`` say what was looked at."""

    path: Path | None = None
    entries: dict[str, list[Any]] = field(default_factory=dict)
    seen: dict[str, tuple[int, int] | None] = field(default_factory=dict)  # file -> (size, mtime_ns) | missing
    dirs: dict[str, int] = field(default_factory=dict)  # directory walked -> mtime_ns
    _dirty: bool = False

    @classmethod
    def load(cls, path: Path | None) -> FileHashes:
        cache = cls(path)
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("v") == CACHE_VERSION:
                    cache.entries = data.get("files", {})
            except (OSError, ValueError, AttributeError):
                pass  # no cache, or a broken one: hash afresh
        return cache

    def digest(self, file: Path) -> str | None:
        """The file's sha256 (hex), or None when it does not exist or cannot be read."""
        key = str(file)
        try:
            st = file.stat()
        except OSError:
            self.seen[key] = None
            return None
        self.seen[key] = (st.st_size, st.st_mtime_ns)
        known = self.entries.get(key)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return str(known[2])
        try:
            value = hashlib.sha256(file.read_bytes()).hexdigest()
        except OSError:
            return None
        if time.time() - st.st_mtime_ns / 1e9 > RACY_S:
            self.entries[key] = [st.st_size, st.st_mtime_ns, value]
            self._dirty = True
        return value

    def walk(self, top: Path) -> list[Path]:
        """Every file under a directory, in a stable order, minus caches and build output."""
        files: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(top):
            try:
                self.dirs[dirpath] = os.stat(dirpath).st_mtime_ns
            except OSError:
                continue
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
            files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith((".pyc", ".pyo")))
        return files

    def save(self) -> None:
        """Write the cache (atomically) if it learned anything; a failure only costs speed."""
        if not self._dirty or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({"v": CACHE_VERSION, "files": self.entries}, separators=(",", ":")),
                           encoding="utf-8")
            tmp.replace(self.path)
            self._dirty = False
        except OSError:
            pass


def deliverables_digest(root: Path, paths: Iterable[str], hashes: FileHashes) -> str:
    """Content hash of every file under the deliverables (missing ones count).

    The same value the older ``deliverables_hash`` gave, so that both can be compared.
    """
    digest = hashlib.sha256()
    for rel in sorted(paths):
        target = root / rel
        if target.is_file():
            files = [target]
        elif target.is_dir():
            files = hashes.walk(target)
        else:
            hashes.seen[str(target)] = None
            digest.update(f"missing:{rel}\n".encode())
            continue
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            value = hashes.digest(file)
            digest.update(bytes.fromhex(value) if value else b"unreadable")
    return digest.hexdigest()[:16]


def entry_digest(session: Session) -> str:
    """The session's plan entry as canonical JSON: any change to its YAML that the model reads.

    Fields left at their defaults are left out, so that a new field in the model
    (with a default) does not make every session stale.
    """
    data = session.model_dump(mode="json", exclude_defaults=True)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_MODULE_FILES: dict[tuple[str, str], str | None] = {}


def module_file(root: Path, module: str) -> str | None:
    """The source file of a module, found by path (no import): under root, then sys.path."""
    key = (str(root), module)
    if key not in _MODULE_FILES:
        rel = Path(*module.split("."))
        found = None
        for base in [str(root), *(p for p in sys.path if p)]:
            for candidate in (Path(base) / rel.with_suffix(".py"), Path(base) / rel / "__init__.py"):
                if candidate.is_file():
                    found = str(candidate.resolve())
                    break
            if found:
                break
        _MODULE_FILES[key] = found
    return _MODULE_FILES[key]


def _pytest_files(root: Path, selection: str) -> list[str]:
    """The test files (or directories) a pytest selection names; options and their values are not files."""
    out, skip = [], False
    for token in selection.split():
        if skip:
            skip = False
            continue
        if token in ("-m", "-k", "-p", "-c", "--rootdir", "-o"):
            skip = True
            continue
        if token.startswith("-"):
            continue
        out.append(token.split("::", 1)[0])
    return out


def code_files(root: Path, session: Session) -> list[str]:
    """Every source file the session's checks and actions call, as paths (absolute or under root)."""
    files: set[str] = set()
    unresolved: set[str] = set()
    targets = [c.python or c.plan for c in session.checks if c.python or c.plan]
    targets += [t.action.python for t in session.tasks if t.action and t.action.python]
    for target in targets:
        module = (target or "").partition(":")[0]
        path = module_file(root, module)
        if path:
            files.add(path)
        else:
            unresolved.add(f"module:{module}")
    if any(c.plan for c in session.checks):
        files.add(str(root / PROGRAM_DIR))
    for check in session.checks:
        if check.pytest:
            files.update(str(root / rel) for rel in _pytest_files(root, check.pytest))
    return sorted(files) + sorted(unresolved)


@dataclass(frozen=True)
class Fingerprint:
    """A session's fingerprint now; :meth:`changes` compares it with a recorded one."""

    deliverables: str
    entry: str
    code: dict[str, str]

    @property
    def combined(self) -> str:
        text = json.dumps([self.deliverables, self.entry, sorted(self.code.items())], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"deliverables": self.deliverables, "entry": self.entry, "code": self.code}

    def changes(self, recorded: dict[str, Any]) -> list[str]:
        """What differs from a recorded fingerprint, in words; empty when nothing does."""
        out = []
        if recorded.get("deliverables") != self.deliverables:
            out.append("deliverables changed")
        if recorded.get("entry") != self.entry:
            out.append("its plan entry changed")
        then: dict[str, str] = recorded.get("code") or {}
        changed = sorted(k for k in set(then) | set(self.code) if then.get(k) != self.code.get(k))
        if changed:
            out.append("check code changed: " + ", ".join(changed[:3])
                       + (f" (+{len(changed) - 3})" if len(changed) > 3 else ""))
        return out


def _code_digest(root: Path, path: str, hashes: FileHashes) -> str:
    if path.startswith("module:"):
        return "unresolved"
    target = Path(path)
    if target.is_dir():
        digest = hashlib.sha256()
        for file in hashes.walk(target):
            if file.suffix in (".py", ".yaml", ".yml"):
                digest.update(str(file.relative_to(target)).encode() + b"\0")
                digest.update((hashes.digest(file) or "unreadable").encode())
        return digest.hexdigest()[:16]
    value = hashes.digest(target)
    return value[:16] if value else "missing"


def fingerprint(root: Path, session: Session, hashes: FileHashes) -> Fingerprint:
    code = {_relative(root, p): _code_digest(root, p, hashes) for p in code_files(root, session)}
    return Fingerprint(deliverables_digest(root, session.deliverables, hashes), entry_digest(session), code)


def _relative(root: Path, path: str) -> str:
    """Code paths under the root are recorded relative to it: a moved checkout stays fresh."""
    try:
        return str(Path(path).relative_to(root.resolve()))
    except ValueError:
        return path
