"""The checkpoint events every tier reports, in one shape."""

from __future__ import annotations

from typing import Any

from harness.history import Kind
from harness.runtime.layout import CheckpointRecord
from harness.target import Emit


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def report_failed(emit: Emit, record: CheckpointRecord, tier: str, error: BaseException) -> None:
    emit(Kind.CHECKPOINT_FAILED, checkpoint_id=record.id, tier=tier, error=describe(error))


def report_durable(emit: Emit, record: CheckpointRecord, tier: str, **extra: Any) -> None:
    emit(
        Kind.CHECKPOINT_DURABLE,
        checkpoint_id=record.id,
        tier=tier,
        position=record.position,
        key=record.key,
        checksum=record.checksum,
        **extra,
    )
