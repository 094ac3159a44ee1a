"""What git says about the tree a run validated: its commit and what is uncommitted."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DIRTY_FILES_SHOWN = 20


def git_info(root: Path, ignore: Iterable[Path] = ()) -> dict[str, Any]:
    """Commit and dirty state of the working tree under root, or why unknown.

    ``ignore``: directories left out, such as the handoffs folder: finks' own
    notes from the previous run must not make the next run's tree "dirty".
    ``dirty_files`` names up to :data:`DIRTY_FILES_SHOWN` changed or untracked
    files (paths from the repository's top), ``dirty_count`` all of them.
    """
    excludes = []
    for path in ignore:
        try:
            rel = Path(path).resolve().relative_to(Path(root).resolve())
        except ValueError:
            continue  # outside the tree: git does not see it anyway
        excludes.append(f":(exclude){rel.as_posix()}")
    cmd = ["git", "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--", ".", *excludes]
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:  # git is evidence, never a reason to fail a run
        return {"commit": None, "dirty": None, "error": type(exc).__name__}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"commit": None, "dirty": None, "error": lines[-1] if lines else f"git exited {proc.returncode}"}
    commit, files = None, []
    records = iter(proc.stdout.split("\0"))
    for record in records:
        if record.startswith("# branch.oid "):
            oid = record.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid[:12]
        elif record.startswith("1 "):
            files.append(record.split(" ", 8)[8])
        elif record.startswith("2 "):
            files.append(record.split(" ", 9)[9])
            next(records, None)  # the path it was renamed from
        elif record.startswith("u "):
            files.append(record.split(" ", 10)[10])
        elif record.startswith("? "):
            files.append(record[2:])
    return {"commit": commit, "dirty": bool(files), "dirty_files": files[:DIRTY_FILES_SHOWN],
            "dirty_count": len(files)}
