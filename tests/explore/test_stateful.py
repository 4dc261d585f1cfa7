"""A stateful exploration against a model of what must survive: the last durable checkpoint and
the outputs committed.

The story grows one step at a time, each later than the one before: a notice, a crash at a
persistence step, a host loss, an S3 outage, Redis down or restarted empty. After each step the
whole story is replayed in simulation. Before the new step's time the world must be exactly what
it was without it (the run is deterministic and causal), so the model, read from the previous
run up to that time, holds what was durable and committed when the step struck. The new run must
then agree with the model: no instance resumes from before the last checkpoint the model holds
durable in S3, every output the model holds committed is in S3 exactly once, and the reference
runtime breaks no invariant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from harness.explore import INVARIANTS, JOB, to_scenario
from harness.history import Event, Kind
from harness.sim.runner import RunResult, run_scenario

_GAPS = st.integers(20, 150)


@dataclass
class Model:
    """What a correct world holds at a moment of the story."""

    #: Position of the newest checkpoint reported durable on S3 (0: none yet).
    durable: int = 0
    #: Output keys reported committed.
    committed: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, events: list[Event]) -> Model:
        durable = [
            int(e.data.get("position") or 0)
            for e in events
            if e.kind == Kind.CHECKPOINT_DURABLE and e.data.get("tier") == "s3"
        ]
        committed = {str(e.data["key"]) for e in events if e.kind == Kind.OUTPUT_COMMITTED}
        return cls(durable=max(durable, default=0), committed=committed)


def _before(result: RunResult, t: float) -> list[tuple[Any, ...]]:
    """The run's events before ``t``, comparable across runs (the run's own start excluded: it
    names the scenario)."""
    return [
        (e.kind, e.instance, round(e.t, 6), sorted(e.data.items(), key=str))
        for e in result.history
        if e.t < t and e.kind != Kind.RUN_STARTED
    ]


class DurableStory(RuleBasedStateMachine):
    target: Any = "reference"

    def __init__(self) -> None:
        super().__init__()
        self.timeline: list[dict[str, Any]] = []
        self.now = 0
        self.previous: RunResult | None = None

    # -- the steps ------------------------------------------------------------------------------
    @rule(gap=_GAPS, action=st.sampled_from(("terminate", "stop")), lead=st.integers(30, 150))
    def notice(self, gap: int, action: str, lead: int) -> None:
        self.step(gap, {"notice": {"action": action, "lead": f"{lead}s"}})

    @rule(gap=_GAPS, step=st.sampled_from(("s3.upload_part", "s3.put_object", "redis.write")))
    def crash(self, gap: int, step: str) -> None:
        self.step(gap, {"crash": {"at": step}})

    @rule(gap=_GAPS, kept=st.booleans())
    def host_lost(self, gap: int, kept: bool) -> None:
        self.step(gap, {"kill": {"local_disk": "kept" if kept else "wiped"}})

    @rule(gap=_GAPS, seconds=st.integers(5, 90))
    def s3_outage(self, gap: int, seconds: int) -> None:
        self.step(gap, {"s3": {"outage": True, "for": f"{seconds}s"}})

    @rule(gap=_GAPS, seconds=st.integers(5, 60))
    def redis_down(self, gap: int, seconds: int) -> None:
        self.step(gap, {"redis": {"down": True, "for": f"{seconds}s"}})

    @precondition(lambda self: self.timeline)
    @rule(gap=_GAPS)
    def redis_restarted_empty(self, gap: int) -> None:
        self.step(gap, {"redis": {"restart": True}})

    # -- the comparison -------------------------------------------------------------------------
    def step(self, gap: int, action: dict[str, Any]) -> None:
        self.now += gap
        self.timeline.append({"at": f"{self.now}s", **action})
        result = run_scenario(self.scenario())
        assert result.error is None, result.error
        model = Model()
        if self.previous is not None:
            # The new step changes nothing before it fires.
            assert _before(result, self.now) == _before(self.previous, self.now)
            model = Model.of([e for e in self.previous.history if e.t < self.now])
        self.agrees(result, model)
        self.previous = result

    def agrees(self, result: RunResult, model: Model) -> None:
        resumed = [
            e for e in result.history.of_kind(Kind.RESUMED) if e.t >= self.now and e.instance
        ]
        for event in resumed:
            position = int(event.data.get("position") or 0)
            assert position >= model.durable, (
                f"{event.instance} resumed at {position}, before the checkpoint at "
                f"{model.durable} that was durable on S3 when step {len(self.timeline)} struck"
            )
        snapshot = result.snapshot
        assert snapshot is not None
        for key in sorted(model.committed):
            versions = snapshot.versions_of(key)
            assert len(versions) == 1, f"committed output {key} has {len(versions)} versions"
        broken = {c.spec.name: c.result.reason for c in result.broken_checks}
        assert broken == {}, broken

    def scenario(self) -> Any:
        return to_scenario(
            {
                "description": "A story built one step at a time.",
                "seed": 5,
                "target": self.target,
                "job": dict(JOB),
                "env": {"cloud": "aws", "imdsv2": "required", "replacement": {"delay": "10s"}},
                "timeline": self.timeline,
                "expect": list(INVARIANTS),
            }
        )


TestDurableStory = DurableStory.TestCase
TestDurableStory.settings = settings(
    max_examples=3, stateful_step_count=3, derandomize=True, database=None, deadline=None
)


def test_the_model_catches_an_output_written_twice() -> None:
    """A target that rewrites committed outputs after a host loss disagrees with the model."""

    class Story(DurableStory):
        target = {"python": "harness.examples.broken:duplicate_outputs"}

    story = Story()
    story.host_lost(100, kept=False)
    with pytest.raises(AssertionError, match=r"committed output outputs/.* has 2 versions"):
        story.host_lost(100, kept=False)


def test_the_model_catches_a_resume_from_an_older_checkpoint() -> None:
    class Story(DurableStory):
        target = {"python": "harness.examples.broken:off_by_one_resume"}

    story = Story()
    with pytest.raises(AssertionError, match="resume_correct"):
        story.host_lost(200, kept=False)
