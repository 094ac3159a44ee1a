"""Pipeline errors: each one names the date, the step and what to do next.

    FinksError
    └── PipelineError (exit 1)
        ├── IngestionFailed        the connector could not land a complete bronze partition
        ├── TransformFailed        bronze→silver failed
        │   └── GlueJobFailed      a Glue job run ended FAILED/STOPPED/ERROR/TIMEOUT
        │       └── GlueJobTimeout we stopped waiting for a Glue job run
        ├── QualityGateFailed      dbt tests failed: gold was not published
        ├── EcsTaskFailed          an ECS task exited non-zero
        └── DateLocked             another run holds the date's lock
"""

from __future__ import annotations

from core.errors import FinksError


class PipelineError(FinksError):
    exit_code = 1


class IngestionFailed(PipelineError):
    pass


class TransformFailed(PipelineError):
    pass


class GlueJobFailed(TransformFailed):
    pass


class GlueJobTimeout(GlueJobFailed):
    pass


class QualityGateFailed(PipelineError):
    pass


class EcsTaskFailed(PipelineError):
    pass


class DateLocked(PipelineError):
    pass
