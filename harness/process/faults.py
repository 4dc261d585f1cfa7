"""The storage faults in force during a process run, shared by the S3 and Redis proxies.

A fault is what a timeline entry asked for (an error code, an outage, latency, bandwidth) with
its window in run seconds, the steps it applies to and, optionally, how many calls it may still
affect. The proxies ask :meth:`FaultBook.take` for the fault that applies to each request they
see; a fault with a count is used up one request at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ActiveFault:
    """One injected storage fault (``kind``: s3.error, s3.outage, s3.latency, s3.bandwidth,
    redis.down, redis.latency)."""

    id: str
    kind: str
    start: float
    end: float | None
    ops: tuple[str, ...] | None = None
    remaining: int | None = None
    code: str | None = None
    value: float = 0.0

    def applies(self, op: str, now: float) -> bool:
        if now < self.start or (self.end is not None and now >= self.end):
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if not op.startswith(self.kind.split(".")[0] + "."):
            return False
        return self.ops is None or op in self.ops


class FaultBook:
    """Every fault of one run, in the order they were injected."""

    def __init__(
        self, now: Callable[[], float], real: Callable[[float], float] = lambda s: s
    ) -> None:
        self.now = now
        #: Real seconds of a delay in run seconds (a scaled clock waits less).
        self.real = real
        self.faults: list[ActiveFault] = []

    def add(self, fault: ActiveFault) -> None:
        self.faults.append(fault)

    def take(self, op: str, *kinds: str) -> ActiveFault | None:
        """The newest fault of one of ``kinds`` that applies to ``op`` now (its count used)."""
        now = self.now()
        for fault in reversed(self.faults):
            if fault.kind in kinds and fault.applies(op, now):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def active(self, kind: str) -> bool:
        now = self.now()
        return any(
            f.kind == kind and f.applies(kind.split(".")[0] + ".any", now) for f in self.faults
        )
