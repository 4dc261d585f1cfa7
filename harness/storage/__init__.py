"""Async storage facades used by the reference runtime: local disk, S3 (a boto3 client) and Redis
(``redis.asyncio``). Each calls the instance's io_hook before every persistence step, named as in
:data:`harness.target.PERSISTENCE_STEPS`, so the harness can time, fail or crash any step.
"""

from harness.storage.blocking import BlockingCaller
from harness.storage.local import LocalDisk
from harness.storage.redis import RedisMeta
from harness.storage.s3 import S3Store, error_code, is_precondition_failed

__all__ = [
    "BlockingCaller",
    "LocalDisk",
    "RedisMeta",
    "S3Store",
    "error_code",
    "is_precondition_failed",
]
