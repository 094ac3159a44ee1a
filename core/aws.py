"""One way to reach AWS APIs: the moto server locally, AWS itself otherwise.

Every package (devstack, connector, flows, API) builds its boto3 clients here,
so that endpoint, region, timeouts and placeholder credentials agree.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings


def client_kwargs(settings: Settings, *, fast_fail: bool = False) -> dict[str, Any]:
    """boto3 client arguments for the environment's endpoint."""
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.s3_endpoint:
        kwargs["endpoint_url"] = settings.s3_endpoint
        # The emulator accepts any credentials; a developer machine may have none,
        # and boto3 would otherwise search the machine (and its metadata service).
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    if fast_fail:
        # Best-effort calls (metrics): a missing endpoint should cost seconds, not minutes.
        kwargs["config"] = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 2})
    else:
        kwargs["config"] = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})
    return kwargs


def client(settings: Settings, service: str, *, fast_fail: bool = False) -> Any:
    """A boto3 client for ``service`` at the environment's endpoint."""
    import boto3

    factory: Any = boto3.client  # typed per service by boto3-stubs; the service is a runtime value
    return factory(service, **client_kwargs(settings, fast_fail=fast_fail))
