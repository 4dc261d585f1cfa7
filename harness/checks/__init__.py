"""The checks: pure functions of a run's history, its final storage state and the golden outcome.

Public API::

    snapshot = await take_snapshot(s3_client, bucket, redis, local_dirs)
    results = evaluate(["durable", {"lost_work": {"at_most": "30s"}}], history, snapshot, golden)

Every :class:`CheckResult` names its check, says whether it passed, and lists violations citing
the events (seq, time) that prove them. See ``docs/checks.md`` for what each check verifies and
which events it reads.
"""

from harness.checks.golden import (
    Golden,
    digest_matches,
    golden_from_run,
    same_digest,
    sha256_digest,
)
from harness.checks.results import CheckResult, EventRef, Violation
from harness.checks.snapshot import (
    Blob,
    MultipartUpload,
    ObjectVersion,
    RedisEntry,
    StorageSnapshot,
    take_snapshot,
)
from harness.checks.spec import (
    CHECKS,
    DEFAULT_EXPECT,
    CheckInfo,
    CheckSpec,
    CheckSpecError,
    evaluate,
    parse_check_spec,
)

__all__ = [
    "CHECKS",
    "DEFAULT_EXPECT",
    "Blob",
    "CheckInfo",
    "CheckResult",
    "CheckSpec",
    "CheckSpecError",
    "EventRef",
    "Golden",
    "MultipartUpload",
    "ObjectVersion",
    "RedisEntry",
    "StorageSnapshot",
    "Violation",
    "digest_matches",
    "evaluate",
    "golden_from_run",
    "parse_check_spec",
    "same_digest",
    "sha256_digest",
    "take_snapshot",
]
