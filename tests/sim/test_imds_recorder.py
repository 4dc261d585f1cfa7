"""The metadata recorder both tiers share: which requests it keeps in the history, and the
quiet stretches (``imds.gap``) the poll-gap and client-timeout checks read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fake_imds.model import MetadataPlane, ServedRequest
from harness.clock import DEFAULT_EPOCH
from harness.history import History, Kind
from harness.sim.metadata import IMDS_GAP, IMDS_REQUEST, record_imds_changes

SPOT = "/latest/meta-data/spot/instance-action"


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return DEFAULT_EPOCH + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class Setup:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.plane = MetadataPlane(self.clock)
        self.history = History(self.clock.monotonic)
        self.alive = True
        record_imds_changes(self.history, self.plane, "i-1", lambda: self.alive)

    def serve(
        self,
        at: float,
        status: int = 404,
        path: str = SPOT,
        answered: float | None = None,
        **extra: Any,
    ) -> None:
        """A request arriving at ``at``, answered at ``answered`` (default: at once)."""
        self.clock.t = at if answered is None else answered
        self.plane.log_request(
            ServedRequest(
                t=at,
                method=extra.pop("method", "GET"),
                path=path,
                status=status,
                remote="127.0.0.1",
                dialect="aws",
                **extra,
            )
        )

    def recorded(self) -> list[tuple[str, dict[str, Any]]]:
        return [(e.kind, dict(e.data)) for e in self.history if e.kind in (IMDS_REQUEST, IMDS_GAP)]


def test_steady_polls_are_recorded_once_and_leave_no_gap() -> None:
    run = Setup()
    for t in range(0, 60, 5):
        run.serve(float(t))
    assert run.recorded() == [
        (
            IMDS_REQUEST,
            {
                "method": "GET",
                "path": SPOT,
                "status": 404,
                "dialect": "aws",
                "fault": None,
                "requested_at": 0.0,
            },
        ),
    ]


def test_a_pause_longer_than_ten_seconds_is_a_gap_from_the_last_answer() -> None:
    run = Setup()
    run.serve(0.0)
    run.serve(5.0, answered=6.0)
    run.serve(46.0)
    run.serve(51.0)
    gaps = [data for kind, data in run.recorded() if kind == IMDS_GAP]
    assert gaps == [{"since": 6.0, "until": 46.0}]


def test_a_request_held_by_the_server_covers_the_time_it_is_held() -> None:
    run = Setup()
    run.serve(5.0)
    with run.plane.serving(10.0):  # a hanging GET arrives at 10 and is held
        run.serve(30.0)  # another path, answered while the GET is held
    run.serve(10.0, answered=60.0)  # the hanging GET's answer
    run.serve(62.0)
    assert [kind for kind, _ in run.recorded()] == [IMDS_REQUEST]


def test_the_quiet_stretch_an_instance_ends_in_is_recorded_at_its_end() -> None:
    run = Setup()
    run.serve(20.0)
    run.clock.t = 100.0
    run.history.record("harness", Kind.INSTANCE_KILLED, "i-1", reason="deadline")
    run.history.record("harness", Kind.INSTANCE_KILLED, "i-1", reason="again")  # once only
    kinds = [(e.kind, dict(e.data)) for e in run.history if e.kind != IMDS_REQUEST]
    assert kinds == [
        (Kind.INSTANCE_KILLED, {"reason": "deadline"}),
        (IMDS_GAP, {"since": 20.0, "until": 100.0, "ended": True}),
        (Kind.INSTANCE_KILLED, {"reason": "again"}),
    ]


def test_protocol_facts_are_kept_whatever_the_status_before() -> None:
    run = Setup()
    expired = {"token": 1, "token_ttl": 60, "token_expired_for": 3.0}
    run.serve(0.0, status=401, note=expired)
    run.serve(5.0, status=401, note=expired)  # the same expired token again: kept
    run.serve(6.0, status=0, fault="fault-0001")  # unanswered: kept
    run.serve(8.0, status=0, fault="fault-0001")  # unanswered again: kept
    run.serve(
        9.0, status=200, path="/other", method="POST", note={"approved": ["E"], "notices": ["n"]}
    )
    run.serve(
        10.0, status=200, path="/other", method="POST", note={"approved": ["E"], "notices": ["n"]}
    )
    kept = [(d["requested_at"], d["status"]) for kind, d in run.recorded() if kind == IMDS_REQUEST]
    assert kept == [(0.0, 401), (5.0, 401), (6.0, 0), (8.0, 0), (9.0, 200), (10.0, 200)]


def test_the_request_after_an_unanswered_one_is_kept() -> None:
    run = Setup()
    other = "/latest/meta-data/instance-id"
    run.serve(0.0)
    run.serve(2.0, path=other, status=200)
    run.serve(5.0, status=0, fault="fault-0001")
    run.serve(8.0, path=other, status=200)  # same status on its path: kept as the one after
    run.serve(9.0, path=other, status=200)
    kept = [d["requested_at"] for kind, d in run.recorded() if kind == IMDS_REQUEST]
    assert kept == [0.0, 2.0, 5.0, 8.0]


def test_nothing_is_recorded_for_a_dead_instance() -> None:
    run = Setup()
    run.alive = False
    run.serve(0.0)
    run.serve(50.0)
    assert run.recorded() == []


SLOWER_THAN_THE_CLIENT = """
description: the metadata service answers more slowly than the client waits, while a notice comes
seed: 0
target: reference
job: {items: 480, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 64MiB}
env: {cloud: azure, replacement: {delay: 5s}}
timeline:
  - at: 68s
    imds: {latency: 3s, for: 24s}
  - at: 68s
    notice: {kind: preempt, lead: 30s}
expect: [polls_within_lead, client_timeout]
"""


def test_a_request_the_client_gave_up_on_is_asking_all_the_same() -> None:
    """Found by explore: answers delayed 3 s, a client that waits 2 s. Each poll the client
    abandoned was cancelled on the server and never logged, so the instance seemed to ask
    nothing for 32 s and polls_within_lead blamed it for the service's silence. Such a request
    is logged without an answer (status 0), at its arrival."""
    from harness.scenario.loader import load_text
    from harness.sim.runner import run_scenario

    (loaded,) = load_text(SLOWER_THAN_THE_CLIENT, file="<test>")
    result = run_scenario(loaded.scenario)
    verdicts = {c.spec.name: c.result.status for c in result.checks}
    assert verdicts == {"polls_within_lead": "passed", "client_timeout": "passed"}
    abandoned = [
        e.data["requested_at"]
        for e in result.history.of_kind(IMDS_REQUEST)
        if e.data["status"] == 0
    ]
    assert abandoned and all(68 <= t < 92 for t in abandoned)
