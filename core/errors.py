"""The errors finks raises on purpose.

Only the CLI catches them: it prints one line on stderr and exits with the
error's code, without a traceback. Anything else is a bug and keeps its
traceback (exit 3).

    FinksError (exit 3)
    ├── UsageError (exit 2)              bad arguments, unknown session, empty selector
    ├── ConfigError (exit 2)             invalid settings or finks.yaml
    │   └── PlanError (exit 2)           sessions/ YAML that does not validate
    ├── BlockedError (exit 1)            a session whose predecessors are not complete
    ├── StateError (exit 3)              a corrupt state file
    │   └── StateLockedError (exit 3)    another finks process holds the state lock
    └── ServiceError (exit 1)            a local service that will not start or answer
"""

from __future__ import annotations


class FinksError(Exception):
    """Base of every error finks raises deliberately."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class UsageError(FinksError):
    exit_code = 2


class ConfigError(FinksError):
    exit_code = 2


class PlanError(ConfigError):
    """One or more problems in the plan files, each naming file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = problems[0] if len(problems) == 1 else f"{len(problems)} problems in the plan"
        super().__init__(head)

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return "\n".join([f"{len(self.problems)} problems in the plan:", *("  " + p for p in self.problems)])


class BlockedError(FinksError):
    exit_code = 1


class StateError(FinksError):
    exit_code = 3


class StateLockedError(StateError):
    exit_code = 3


class ServiceError(FinksError):
    exit_code = 1
