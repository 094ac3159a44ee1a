"""The lake's small-object calls reuse one boto3 client per endpoint and AWS environment
(core.aws.shared_client), against real moto servers over HTTP; never one endpoint's client
for another, never a parent's connections in a forked child, one client for many threads."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core import aws, lake
from core.settings import Settings, load_settings
from validation.emulator import moto_server


@pytest.fixture(scope="module")
def endpoints() -> Iterator[list[str]]:
    """Two moto servers, each a process of its own: two S3s that share nothing (moto's
    state is per process, so two servers in one process would share their buckets)."""
    with moto_server() as first, moto_server() as second:
        yield [first, second]


def _lake(tmp_path: Path, endpoint: str | None, prefix: str | None = None, env: str = "local") -> Settings:
    settings = load_settings(env=env, storage="s3", state_dir=tmp_path / uuid.uuid4().hex[:6],
                             s3_endpoint_url=endpoint, bucket_prefix=prefix or f"finks-c{uuid.uuid4().hex[:8]}")
    aws.client(settings, "s3").create_bucket(
        Bucket=lake.bucket(settings, "silver"), CreateBucketConfiguration={"LocationConstraint": settings.region})
    return settings


def _uri(settings: Settings, key: str) -> str:
    return lake.join(lake.zone_uri(settings, "silver"), key)


@pytest.fixture(autouse=True)
def _testing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_small_object_calls_share_one_client(tmp_path: Path, endpoints: list[str]) -> None:
    settings = _lake(tmp_path, endpoints[0])
    lake.write_text(settings, _uri(settings, "a.json"), '{"a": 1}')
    assert lake.read_json(settings, _uri(settings, "a.json")) == {"a": 1}
    assert lake.list_names(settings, lake.zone_uri(settings, "silver")) == ["a.json"]
    kept = aws.shared_client(settings, "s3")
    assert aws.shared_client(settings, "s3") is kept
    calls: list[str] = []
    kept.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    lake.read_text(settings, _uri(settings, "a.json"))
    lake.delete(settings, _uri(settings, "a.json"))
    assert calls == ["GetObject", "DeleteObject"]  # the lake's calls went through the kept client
    # a plain client is the caller's own (it may register handlers on it)
    assert aws.client(settings, "s3") is not aws.shared_client(settings, "s3")


def test_each_endpoint_keeps_its_own_client(tmp_path: Path, endpoints: list[str]) -> None:
    first = _lake(tmp_path, endpoints[0])
    second = _lake(tmp_path, endpoints[1], first.bucket_prefix)  # the same bucket names, elsewhere
    lake.write_text(first, _uri(first, "only-here.json"), "{}")
    assert aws.shared_client(first, "s3") is not aws.shared_client(second, "s3")
    assert lake.read_text(first, _uri(first, "only-here.json")) == "{}"
    # the second server has no such bucket: a client of the first would find the object
    assert lake.read_text(second, _uri(second, "only-here.json")) is None


def test_a_changed_aws_environment_gets_a_new_client(tmp_path: Path, endpoints: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 reads AWS_ENDPOINT_URL_S3 when it builds a client: a kept client must not outlive it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoints[0])
    settings = _lake(tmp_path, None, env="dev")  # no endpoint of finks' own: boto3's variables decide
    lake.write_text(settings, _uri(settings, "first.json"), "{}")
    before = aws.shared_client(settings, "s3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoints[1])
    assert aws.shared_client(settings, "s3") is not before
    assert lake.read_text(settings, _uri(settings, "first.json")) is None  # the second server has none
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoints[0])
    assert aws.shared_client(settings, "s3") is before
    assert lake.read_text(settings, _uri(settings, "first.json")) == "{}"


def test_threads_share_one_client(tmp_path: Path, endpoints: list[str]) -> None:
    settings = _lake(tmp_path, endpoints[0])
    for n in range(16):
        lake.write_text(settings, _uri(settings, f"t{n}.json"), str(n))
    with ThreadPoolExecutor(8) as pool:
        read = list(pool.map(lambda n: lake.read_text(settings, _uri(settings, f"t{n}.json")), range(16)))
        clients = set(pool.map(lambda _: id(aws.shared_client(settings, "s3")), range(16)))
    assert read == [str(n) for n in range(16)]
    assert len(clients) == 1


def test_a_forked_child_builds_its_own(tmp_path: Path, endpoints: list[str]) -> None:
    settings = _lake(tmp_path, endpoints[0])
    lake.write_text(settings, _uri(settings, "parent.json"), "{}")
    parents = id(aws.shared_client(settings, "s3"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it started with the parent's client, then use its own
        os.close(read)
        inherited = bool(aws._shared)
        ok = lake.read_text(settings, _uri(settings, "parent.json")) == "{}"
        os.write(write, f"{int(inherited)}{int(ok)}{int(id(aws.shared_client(settings, 's3')) == parents)}".encode())
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16).decode()
    os.waitpid(pid, 0)
    assert answer == "010", answer  # nothing inherited; reads work; not the parent's client


def test_the_kept_clients_are_bounded(tmp_path: Path, endpoints: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _lake(tmp_path, endpoints[0])
    for n in range(aws._SHARED_MAX + 5):
        monkeypatch.setenv("AWS_SESSION_TOKEN", f"token-{n}")
        aws.shared_client(settings, "s3")
    assert len(aws._shared) <= aws._SHARED_MAX
