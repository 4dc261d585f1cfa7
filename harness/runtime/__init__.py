"""The reference checkpoint-and-recovery runtime.

Public API (used by the scenario engine and the checks):

* :func:`reference_target` - the in-process target, ``async (InstanceContext) -> None``.
* :class:`JobSpec`, :func:`state_after`, :func:`state_digest`, :func:`expected_outputs`,
  :func:`output_content`, :func:`output_key` - the golden job.
* :mod:`harness.runtime.layout` - where everything is stored (see ``docs/runtime.md``).
"""

from harness.runtime.config import ConfigError, RuntimeConfig
from harness.runtime.job import (
    JobSpec,
    JobSpecError,
    checksum,
    decode_state,
    expected_outputs,
    output_content,
    output_key,
    output_range,
    state_after,
    state_checksum,
    state_digest,
)
from harness.runtime.layout import (
    CheckpointRecord,
    Manifest,
    checkpoint_folder,
    checkpoint_key,
    manifest_key,
    redis_prefix,
)
from harness.runtime.runtime import Runtime, reference_target

__all__ = [
    "CheckpointRecord",
    "ConfigError",
    "JobSpec",
    "JobSpecError",
    "Manifest",
    "Runtime",
    "RuntimeConfig",
    "checkpoint_folder",
    "checkpoint_key",
    "checksum",
    "decode_state",
    "expected_outputs",
    "manifest_key",
    "output_content",
    "output_key",
    "output_range",
    "redis_prefix",
    "reference_target",
    "state_after",
    "state_checksum",
    "state_digest",
]
