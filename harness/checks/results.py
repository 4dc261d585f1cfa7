"""What a check returns: a verdict and the violations that prove it, each citing its events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.history import Event

#: A check's verdict. ``unverified``: the harness saw nothing that could prove or refute the
#: guarantee (no S3 write, no notice, ...); it is never a pass.
CheckStatus = Literal["passed", "failed", "unverified"]

#: The evidence a check may rest on, by name (``CheckResult.evidence``). Everything but
#: ``target.events`` is seen by the harness itself, whatever the target says.
EVIDENCE = {
    "s3.ops": "S3 requests made through the client the harness handed out, as the harness saw them",
    "redis.ops": "Redis commands sent through the client the harness handed out",
    "local.files": "the instance's local directory, read by the harness at every kill and exit",
    "storage.snapshot": "S3 versions, uploads, Redis keys and local files read at the end",
    "imds.requests": "metadata requests the fake metadata plane served",
    "imds.gaps": "stretches in which an instance sent the metadata plane no request at all",
    "lifecycle": "notices, deadlines, kills and exits the harness caused or saw",
    "golden": "the outcome of an uninterrupted run of the same target",
    "target.events": "events the target reported about itself",
}


@dataclass(frozen=True, slots=True)
class EventRef:
    """A pointer into the history: enough to find and show the event."""

    seq: int
    t: float
    kind: str
    instance: str | None

    @classmethod
    def of(cls, event: Event) -> EventRef:
        return cls(seq=event.seq, t=event.t, kind=event.kind, instance=event.instance)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": round(self.t, 6),
            "kind": self.kind,
            "instance": self.instance,
        }


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken promise: what is wrong, and the events (seq, time) that prove it."""

    message: str
    events: tuple[EventRef, ...] = ()

    @classmethod
    def citing(cls, message: str, events: Iterable[Event | None]) -> Violation:
        """A violation citing ``events`` in history order (``None`` entries are skipped)."""
        refs = {e.seq: EventRef.of(e) for e in events if e is not None}
        return cls(message=message, events=tuple(refs[s] for s in sorted(refs)))

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "events": [e.to_json() for e in self.events]}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict of one check: its status, the violations that prove a failure, the evidence
    it rested on and, when ``unverified``, why nothing could be judged."""

    name: str
    status: CheckStatus
    violations: tuple[Violation, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    #: One line on what was verified, for reports (e.g. "3 notices, 3 saved in time").
    summary: str = ""
    #: Names from :data:`EVIDENCE` the verdict rests on.
    evidence: tuple[str, ...] = ()
    #: Why the check is ``unverified`` ("no S3 write was seen"); empty otherwise.
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def unverified(self) -> bool:
        return self.status == "unverified"

    @classmethod
    def from_violations(
        cls,
        name: str,
        violations: Iterable[Violation],
        *,
        params: Mapping[str, Any] | None = None,
        summary: str = "",
        evidence: Iterable[str] = (),
        unverified: str = "",
    ) -> CheckResult:
        """Failed if there are violations; else ``unverified`` with the reason ``unverified``
        when one is given (nothing to judge), else passed."""
        found = tuple(violations)
        status: CheckStatus = "failed" if found else ("unverified" if unverified else "passed")
        return cls(
            name=name,
            status=status,
            violations=found,
            params=dict(params or {}),
            summary=summary,
            evidence=tuple(sorted(set(evidence))),
            reason=unverified if status == "unverified" else "",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "params": dict(self.params),
            "summary": self.summary,
            "evidence": list(self.evidence),
            "reason": self.reason,
            "violations": [v.to_json() for v in self.violations],
        }
