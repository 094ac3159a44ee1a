"""``.env``: variables for this checkout, read once per process.

Precedence, highest first: the process environment, ``.env``
(``FINKS_ENV_FILE`` names another file), ``finks.yaml``, the defaults. A
variable already set in the environment is never overridden, so a value
typed on the command line wins over the file.

The file's variables are exported into this process's environment (as
python-dotenv's ``load_dotenv`` does, without override), because not only
the settings model reads them: Prefect, boto3 and the tools finks starts
inherit them too. A ``FINKS_*`` or ``FMP_*`` name that finks does not read
is a configuration error naming the file and line: a typo would otherwise
be ignored in silence.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from core.errors import ConfigError
from core.paths import repo_root

OURS = re.compile(r"^(FINKS|FMP)_[A-Z0-9_]+$")
_LOADED: set[Path] = set()


def env_file_path() -> Path:
    return Path(os.environ.get("FINKS_ENV_FILE") or repo_root() / ".env")


def documented_variables(example: Path | None = None) -> set[str]:
    """The variables `.env.example` documents (set or commented out)."""
    path = example or repo_root() / ".env.example"
    if not path.is_file():
        return set()
    names = re.findall(r"^#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=", path.read_text(), flags=re.M)
    return set(names)


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"^\s*(export\s+)?{re.escape(key)}\s*=", line):
            return number
    return 0


def load_env_file(path: Path | None = None, known: set[str] | None = None) -> dict[str, str]:
    """Export the file's variables that the environment does not set yet; return them.

    ``known`` is every FINKS_*/FMP_* name finks reads (default: those
    `.env.example` documents, which a test keeps equal to what the code reads;
    without an `.env.example`, as in an installed copy, nothing is refused).
    """
    path = (path or env_file_path()).resolve()
    if path in _LOADED or not path.is_file():
        return {}
    from dotenv import dotenv_values

    text = path.read_text()
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    if known is None:
        known = documented_variables()
    unknown = sorted((k for k in values if known and OURS.match(k) and k not in known),
                     key=lambda k: _line_of(text, k))
    if unknown:
        where = ", ".join(f"{path}:{_line_of(text, k)} {k}" for k in unknown)
        raise ConfigError(f"not a variable finks reads: {where}",
                          hint="check the spelling against .env.example")
    exported = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(exported)
    _LOADED.add(path)
    return exported
