"""The plan as data: sessions, tasks, criteria, checks and gates.

Each file in ``sessions/`` holds one session (``sNN-<slug>.yaml``); ``gates.yaml``
holds the weekly gates. The loader (:mod:`finks.loader`) turns validation
errors into messages that name the file and line.
"""

from __future__ import annotations

import re
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.environments import AWS_ENVIRONMENTS, ENVIRONMENTS, AwsEnv, Env
from finks.outcomes import Grade

# core.environments types its tuple as plain strings; each of them is an Env.
EVERY_ENV = cast("tuple[Env, ...]", ENVIRONMENTS)
# A short slug: s0 … s22 in this repository's plan, anything like s100 or prefect-server in another's.
SESSION_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# Words a selector means by themselves: a session may not be called that (graph.select).
RESERVED_IDS = re.compile(r"^(all|week\d+)$")
NUMBERED_ID = re.compile(r"^s(\d+)$")
TARGET = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
KINDS = ("python", "pytest", "shell", "plan")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSpec(_Strict):
    """One executable check: exactly one of python / pytest / shell / plan.

    ``plan: module:function`` asserts on the dry plan of the Pulumi program
    (Pulumi's mocks): the function gets the plan, then ``args``, and returns
    ``(message, figures)``; ``stack`` plans that stack instead of the one the
    environment plans. Its evidence is always *planned*. Any other check gives
    *verified* evidence unless it says ``grade: planned`` (it asserts on mocks
    itself).
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    python: str | None = Field(None, pattern=TARGET)
    pytest: str | None = None
    shell: str | None = None
    plan: str | None = Field(default=None, pattern=TARGET)
    args: tuple[Any, ...] = ()
    stack: AwsEnv | None = None
    grade: Grade | None = None
    timeout: float = Field(120.0, gt=0, le=3600)
    envs: tuple[Env, ...] = EVERY_ENV
    # The check makes everything it uses for itself (a state dir and lake under its work dir, its
    # own simulator or stack on free ports) and reads nothing its session's other checks write:
    # with --jobs above 1 it may run while they do. Say so only when it is true.
    isolated: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> CheckSpec:
        kinds = [k for k in KINDS if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(
                f"check {self.id!r} needs exactly one of python, pytest, shell, plan (has {kinds or 'none'})"
            )
        if not self.plan and (self.args or self.stack):
            raise ValueError(f"check {self.id!r}: args and stack belong to a plan check")
        if self.plan and self.grade == Grade.verified:
            raise ValueError(f"check {self.id!r}: a plan check asserts on Pulumi mocks; its grade is planned")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k))

    @property
    def target(self) -> str:
        return self.python or self.pytest or self.shell or self.plan or ""

    @property
    def evidence_grade(self) -> Grade:
        """What a pass of this check proves: planned for plan checks, else what it declares."""
        return Grade.planned if self.plan else (self.grade or Grade.verified)


class Criterion(_Strict):
    """A success criterion in the plan's wording, proven by one or more checks."""

    text: str = Field(min_length=3)
    checks: tuple[CheckSpec, ...] = Field(min_length=1)
    # A criterion that belongs to some environments by nature; elsewhere it is no criterion at all.
    envs: tuple[Env, ...] = EVERY_ENV

    def applies(self, env: str) -> bool:
        return env in self.envs


class Action(_Strict):
    """What a task does when the session runs: a callable or a shell command."""

    python: str | None = Field(None, pattern=TARGET)
    shell: str | None = None
    timeout: float = Field(600.0, gt=0, le=7200)
    envs: tuple[Env, ...] = EVERY_ENV

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        if bool(self.python) == bool(self.shell):
            raise ValueError("an action needs exactly one of python, shell")
        return self


class Task(_Strict):
    title: str
    minutes: int | None = Field(None, ge=0)
    details: tuple[str, ...] = ()
    action: Action | None = None


class Estimate(_Strict):
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError("estimate_hours must be [low, high], e.g. [3, 4]")
            return {"low": value[0], "high": value[1]}
        if isinstance(value, (int, float)):
            return {"low": value, "high": value}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Estimate:
        if self.high < self.low:
            raise ValueError(f"estimate high ({self.high:g}) is below low ({self.low:g})")
        if self.high > 40:
            raise ValueError(f"estimate of {self.high:g} hours is not one working session (max 40)")
        return self

    def __str__(self) -> str:
        return f"{self.low:g}h" if self.low == self.high else f"{self.low:g}-{self.high:g}h"


class Session(_Strict):
    id: str
    title: str = Field(min_length=3)
    week: int = Field(ge=0, le=52)
    area: str = Field(min_length=1)
    estimate_hours: Estimate
    depends_on: tuple[str, ...] = ()
    optional: bool = False
    difficulty: int | None = Field(None, ge=1, le=5)
    context_prime: str = ""
    required_resources: tuple[str, ...] = ()
    # Names of what the session's actions and checks share with other sessions (the local stack,
    # the lake it serves): a run holds one lock per name, and sessions naming the same one never
    # run at once, in one run (--jobs) or in two. ``required_resources`` is prose for people.
    resources: tuple[str, ...] = ()
    tasks: tuple[Task, ...] = Field(min_length=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)
    deliverables: tuple[str, ...] = ()
    pitfalls: tuple[str, ...] = ()
    recovery: str = ""
    handoff: str = ""
    known_issues: tuple[str, ...] = ()

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
                raise ValueError(f"resource {name!r} must be a lowercase slug, e.g. local-stack")
        return tuple(sorted(set(value)))  # one order everywhere: locks are taken in it

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not SESSION_ID.match(value) or value.endswith("-"):
            raise ValueError(f"session id {value!r} must be a short lowercase slug: a letter, then letters, "
                             "digits or '-' (at most 40), e.g. s9, s100 or prefect-server")
        if RESERVED_IDS.match(value):
            raise ValueError(f"session id {value!r} is a selector word (all, weekN); give the session another id")
        return value

    @property
    def number(self) -> int | None:
        """The N of an ``sN`` id (this repository's plan); None for any other id."""
        found = NUMBERED_ID.match(self.id)
        return int(found.group(1)) if found else None

    @property
    def label(self) -> str:
        """How headings name it: ``Session 16`` for s16, ``Session prefect-server`` otherwise."""
        return f"Session {self.number}" if self.number is not None else f"Session {self.id}"

    @property
    def file_stem(self) -> str:
        """The stem of its handoff note: ``s16-orchestration-flows``, ``prefect-server-…``."""
        head = f"s{self.number:02d}" if self.number is not None else self.id
        return f"{head}-{self.slug}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    @property
    def checks(self) -> list[CheckSpec]:
        return [check for criterion in self.criteria for check in criterion.checks]

    @model_validator(mode="after")
    def _unique_check_ids(self) -> Session:
        seen: set[str] = set()
        for check in self.checks:
            if check.id in seen:
                raise ValueError(f"check id {check.id!r} is used twice in {self.id}")
            seen.add(check.id)
        return self


class Gate(_Strict):
    id: str = Field(pattern=r"^week\d+$")
    week: int = Field(ge=0)
    title: str
    sessions: tuple[str, ...] = ()
    checks: tuple[CheckSpec, ...] = ()


class EnvPolicy(_Strict):
    """What an environment accepts as proof of a criterion."""

    accept_planned: bool


def default_policies() -> dict[str, EnvPolicy]:
    """Without an ``environments:`` block: local accepts planned evidence, AWS environments never."""
    return {env: EnvPolicy(accept_planned=env not in AWS_ENVIRONMENTS) for env in ENVIRONMENTS}


class GateFile(_Strict):
    strict: bool = True
    # Where this plan's handoff notes go, relative to the plan directory (default: ../handoffs).
    handoffs: str | None = Field(default=None, min_length=1)
    environments: dict[Env, EnvPolicy] = Field(default_factory=dict)
    gates: tuple[Gate, ...] = ()

    def policies(self) -> dict[str, EnvPolicy]:
        return {**default_policies(), **{str(env): policy for env, policy in self.environments.items()}}
