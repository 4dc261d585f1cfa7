"""Canary for the simulator's patches to moto's internals (harness/sim/moto_patches.py).

When a moto release moves what the patches touch, these tests fail and name it; the version
bound in pyproject.toml keeps such a release from being installed unnoticed."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import moto.backend_index as moto_backend_index
import moto.core.errors as moto_errors
import moto.core.responses as moto_responses
import moto.s3.models as moto_s3
import pytest
from botocore.exceptions import ClientError
from moto.core.models import botocore_stubber

from harness.sim import moto_patches
from harness.sim.s3 import simulated_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
WHEN = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_everything_the_patches_rely_on_is_where_they_expect_it() -> None:
    assert moto_patches.problems() == []


def test_pyproject_bounds_moto_to_the_supported_releases() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    ((low, high),) = {
        (m.group(1), m.group(2))
        for spec in extras["sim"] + extras["test"]
        if (m := re.fullmatch(r"moto\[[\w,]+\]>=([\d.]+),<([\d.]+)", spec))
    }
    (major, minor), (upper_major, upper_minor) = moto_patches.SUPPORTED
    assert (low, high) == (f"{major}.{minor}", f"{upper_major}.{upper_minor}")


def test_a_changed_moto_stops_the_run_and_says_what_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(moto_patches, "_checked", ["moto.s3.models.utcnow is gone"])
    with (
        pytest.raises(moto_patches.MotoChanged, match=r"utcnow is gone.*spot-harness\[sim\]"),
        simulated_bucket("canary", now=lambda: WHEN, seed=1),
    ):
        pass


#: The request-id function the run rebinds in moto.core.responses, which imports it from
#: moto.utilities without re-exporting it (so it is read by name).
REQUEST_ID = "gen_amzn_requestid_long"


def test_a_run_sees_virtual_time_and_seeded_ids_and_everything_is_undone_after() -> None:
    originals = (
        moto_s3.S3Backend.urls,
        moto_backend_index.backend_url_patterns,
        getattr(moto_responses, REQUEST_ID),
        moto_errors.ErrorLookupFactory,
        vars(moto_s3)["compute_checksum"],  # imported there from moto.s3.utils
        botocore_stubber.enabled,
    )
    runs = []
    for _ in range(2):
        with simulated_bucket("canary", now=lambda: WHEN, seed=7) as client:
            put = client.put_object(Bucket="canary", Key="k", Body=b"v")
            head = client.head_object(Bucket="canary", Key="k")
            runs.append((put["VersionId"], put["ResponseMetadata"]["RequestId"]))
            assert head["LastModified"] == WHEN
            listed = client.list_objects_v2(Bucket="canary")  # moto dates this answer
            assert listed["ResponseMetadata"]["HTTPHeaders"]["date"] == (
                "Sun, 01 Mar 2026 12:00:00 GMT"  # the run's calendar, not the wall clock
            )
    assert runs[0] == runs[1]  # the same seed, the same ids
    assert (
        moto_s3.S3Backend.urls,
        moto_backend_index.backend_url_patterns,
        getattr(moto_responses, REQUEST_ID),
        moto_errors.ErrorLookupFactory,
        vars(moto_s3)["compute_checksum"],  # imported there from moto.s3.utils
        botocore_stubber.enabled,
    ) == originals


def test_errors_are_moto_s_own_with_its_error_table_built_once() -> None:
    """The shared error-shape table answers every error as moto's fresh one does: the same code,
    message and status, run after run; and the table is built once, not once per error."""

    def missing(client: S3Client) -> ClientError:
        with pytest.raises(ClientError) as raised:
            client.get_object(Bucket="canary", Key="absent")
        return raised.value

    with simulated_bucket("canary", now=lambda: WHEN, seed=3) as client:
        errors = [missing(client).response for _ in range(3)]
        assert moto_errors.ErrorLookupFactory() is moto_errors.ErrorLookupFactory()
    fresh = moto_errors.ErrorLookupFactory()
    assert fresh is not moto_errors.ErrorLookupFactory()  # moto's own again after the run
    for error in errors:
        assert error["Error"]["Code"] == "NoSuchKey"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert len({str(e["Error"]) for e in errors}) == 1
