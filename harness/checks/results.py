"""What a check returns: a verdict and the violations that prove it, each citing its events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.history import Event


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
    """The verdict of one check."""

    name: str
    passed: bool
    violations: tuple[Violation, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    #: One line on what was verified, for reports (e.g. "3 notices, 3 saved in time").
    summary: str = ""

    @classmethod
    def from_violations(
        cls,
        name: str,
        violations: Iterable[Violation],
        *,
        params: Mapping[str, Any] | None = None,
        summary: str = "",
    ) -> CheckResult:
        found = tuple(violations)
        return cls(
            name=name,
            passed=not found,
            violations=found,
            params=dict(params or {}),
            summary=summary,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "params": dict(self.params),
            "summary": self.summary,
            "violations": [v.to_json() for v in self.violations],
        }
