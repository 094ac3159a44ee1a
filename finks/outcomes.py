"""The orchestrator's words for results, as ``str`` enums.

Their values are what the state files and every ``--json`` document hold, so
a member compares, formats and serialises as its plain string::

    Outcome         what one check came to (see finks.checks)
    SessionOutcome  what one session came to in a run or a batch
    SessionState    a session's status, derived from the evidence (finks.status)
    GateState       a weekly gate's status, derived the same way
    Grade           the kind of evidence a check gives (verified | planned)
    Verdict         what the evidence says of one criterion (finks.verdicts)

"Failed", "could not run" and "blocked upstream" stay different words.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """A check's outcome; finks.checks re-exports it for check authors."""

    passed = "passed"  # the criterion was verified
    failed = "failed"  # it ran and the criterion does not hold
    error = "error"  # it could not run: import error, timeout, missing target, not implemented
    skipped = "skipped"  # not for this environment


# A check record "did not verify" when it failed or could not run. Records read
# back from the state hold plain strings; they compare equal to the members.
FAILING = frozenset({Outcome.failed, Outcome.error})


class Grade(enum.StrEnum):
    """The kind of evidence a check gives when it passes."""

    verified = "verified"  # it exercised the real thing
    planned = "planned"  # it asserted on the Pulumi program under mocks


class Verdict(enum.StrEnum):
    """What a criterion's evidence amounts to (see finks.verdicts)."""

    verified = "verified"  # an applicable check passed with verified evidence
    planned = "planned"  # only checks with planned evidence passed
    unverified = "unverified"  # no applicable check ran, or every one was skipped
    failed = "failed"  # a check failed, or could not run (its label says "error")


class SessionOutcome(enum.StrEnum):
    """A session's outcome: the first four are recorded runs, the rest batch results."""

    passed = "passed"  # every criterion that applies has evidence the environment accepts
    failed = "failed"  # an action or a check failed, or could not run
    unverified = "unverified"  # nothing failed, but some criterion has no evidence the environment accepts
    not_applicable = "not_applicable"  # no criterion applies to this environment (criterion-level envs)
    skipped_upstream = "skipped_upstream"  # a predecessor in the same batch did not pass
    blocked = "blocked"  # refused: a predecessor outside the batch, or a gate, is not passed
    up_to_date = "up_to_date"  # already complete: not run again
    would_run = "would_run"  # a dry run's answer

    @property
    def ok(self) -> bool:
        """Whether a batch with this result may still call itself successful."""
        return self not in NOT_OK


# What makes a batch fail, and what 'finks retry' runs again.
NOT_OK = frozenset({SessionOutcome.failed, SessionOutcome.unverified, SessionOutcome.skipped_upstream,
                    SessionOutcome.blocked})


class SessionState(enum.StrEnum):
    """A session's status; see :mod:`finks.status` for how each is derived."""

    complete = "complete"
    not_applicable = "not_applicable"  # no criterion applies to this environment: counts as done
    stale = "stale"
    failed = "failed"
    unverified = "unverified"  # some criterion has no evidence the environment accepts
    in_progress = "in_progress"
    interrupted = "interrupted"
    ready = "ready"
    blocked = "blocked"
    optional = "optional"

    @property
    def label(self) -> str:
        """The status as people read it: ``in progress``."""
        return self.value.replace("_", " ")


class GateState(enum.StrEnum):
    passed = "passed"  # recorded as passed, and its sessions are still complete
    stale = "stale"  # passed once, but one of its sessions is no longer complete
    pending = "pending"  # waiting for its sessions
    failed = "failed"  # its sessions are complete, its own checks failed
    unverified = "unverified"  # its sessions are complete, but none of its checks gave accepted evidence
    ready = "ready"  # its sessions are complete: 'finks gate' can evaluate it
