"""S16's live idempotence probe: reruns leave one row per key in every silver partition."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from finks.checks import CheckFailed
from validation.aws import idempotence

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")


def _a_partition(d: Deployed) -> tuple[str, str]:
    s3, silver = d.client("s3"), d.outputs["buckets"]["silver"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=silver, Prefix="eod_prices/").get("Contents", [])]
    return silver, sorted(k for k in keys if k.endswith(".parquet"))[-1]


def test_the_seeded_silver_holds_one_row_per_key(deployed_dev: Deployed) -> None:
    evidence = idempotence.reruns_left_no_duplicates(deployed_dev.ctx())
    assert evidence.figures["partitions"] > 0 and evidence.figures["rows"] > 0
    assert "one row per key" in evidence.message


@pytest.mark.check_fails("validation.aws.idempotence:reruns_left_no_duplicates")
def test_a_rerun_that_appended_is_named_by_its_partition(deployed_dev: Deployed) -> None:
    s3 = deployed_dev.client("s3")
    silver, key = _a_partition(deployed_dev)
    copy = key.replace(".parquet", "-rerun.parquet")
    deployed_dev.undo(lambda: s3.delete_object(Bucket=silver, Key=copy))
    s3.copy_object(Bucket=silver, Key=copy, CopySource={"Bucket": silver, "Key": key})
    folder = key.rsplit("/", 1)[0]
    with pytest.raises(CheckFailed, match=rf"^s3://{silver}/{folder}/: \d+ duplicate symbol\+date rows in 2 file"):
        idempotence.reruns_left_no_duplicates(deployed_dev.ctx())
