"""One way to reach AWS APIs: the moto server locally, AWS itself otherwise.

Every package (devstack, connector, flows, API) builds its boto3 clients here,
so that endpoint, region, timeouts and placeholder credentials agree.

Which endpoint, first match wins:

1. ``FINKS_S3_ENDPOINT_URL`` (finks's own setting), for every service;
2. the standard AWS variables, ``AWS_ENDPOINT_URL_<SERVICE>`` (e.g.
   ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``) then
   ``AWS_ENDPOINT_URL``: boto3 reads them itself, so no endpoint is passed and
   nothing here overrides them (``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``
   turns them off, as in boto3);
3. locally, the moto server (``FINKS_MOTO_PORT``); on AWS environments, AWS.

So the same probes run against AWS or an emulator: ``finks verify --env dev``
with ``AWS_ENDPOINT_URL=http://127.0.0.1:5000`` reads a moto server.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings


@lru_cache(maxsize=64)
def _service_variable(service: str) -> str:
    """``AWS_ENDPOINT_URL_<SERVICE ID>``, as boto3 names it (``logs`` -> ``..._CLOUDWATCH_LOGS``)."""
    import botocore.session

    service_id = botocore.session.get_session().get_service_model(service).service_id
    return "AWS_ENDPOINT_URL_" + str(service_id).replace(" ", "_").upper()


def configured_endpoint(service: str | None = None) -> str | None:
    """The endpoint the standard AWS variables set for ``service`` (or for every service), if any."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return None
    if service is not None:
        try:
            specific = os.environ.get(_service_variable(service))
        except Exception:  # noqa: BLE001 - an unknown service: boto3 itself will say so
            specific = None
        if specific:
            return specific
    return os.environ.get("AWS_ENDPOINT_URL") or None


def endpoint_for(settings: Settings, service: str | None = None) -> str | None:
    """The endpoint a client for ``service`` reaches (None: AWS's own), by the order above."""
    return settings.s3_endpoint_url or configured_endpoint(service) or settings.s3_endpoint


def client_kwargs(settings: Settings, *, fast_fail: bool = False, service: str | None = None) -> dict[str, Any]:
    """boto3 client arguments for the environment's endpoint (for ``service``, when given)."""
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": settings.region}
    # boto3 resolves AWS_ENDPOINT_URL[_<SERVICE>] itself: passing an endpoint would override it.
    standard = configured_endpoint(service) is not None and not settings.s3_endpoint_url
    if settings.s3_endpoint and not standard:
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
    return factory(service, **client_kwargs(settings, fast_fail=fast_fail, service=service))


# ---- shared clients ----------------------------------------------------------
# A client costs about 3 ms to build and opens its own connection, so a small-object
# call through a new one takes about twice as long as through a kept one (against the
# moto server; on AWS a new connection is also a TLS handshake). boto3's clients are
# thread-safe, its default session is not: clients are built under one lock.
_SHARED_MAX = 32
_shared: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_shared_lock = threading.Lock()


def _forget_shared() -> None:
    """In a forked child: the parent's connections are not ours to use."""
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_shared)


def shared_client(settings: Settings, service: str) -> Any:
    """A client for ``service`` kept for this process: the client :func:`client` would
    build, reused by every caller that reaches the same endpoint with the same region and
    the same ``AWS_*`` variables (boto3 reads endpoints and profiles from them when it
    builds one), so a client is never used for another endpoint.

    For plain calls only: a caller that registers event handlers on its client (the
    IAM recording of :mod:`validation.aws.policy`) takes one of its own from :func:`client`.
    """
    # Everything client_kwargs and boto3 read: the settings' region and endpoints, and the
    # AWS_* variables (credentials, profile, AWS_ENDPOINT_URL[_<SERVICE>]).
    key = (service, settings.region, settings.s3_endpoint_url, settings.s3_endpoint,
           tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = client(settings, service)
            while len(_shared) > _SHARED_MAX:
                _shared.popitem(last=False)  # dropped, not closed: a caller may still hold it
        else:
            _shared.move_to_end(key)
    return found
