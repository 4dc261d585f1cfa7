"""saved_before_deadline under two notices: a stop, saved for on the local disk, then a
terminate that reaches the machine after its process has exited and wipes the disk before the
stop's deadline (found by a coverage-steered exploration against the reference). The stop was
answered; the terminate found no process to answer it."""

from __future__ import annotations

from harness.history import Kind
from harness.scenario.loader import load_text
from harness.sim.runner import run_scenario

TWO_NOTICES = """
description: a stop answered with a local save, then a terminate once the process is gone
seed: 175
target: reference
job:
  items: 480
  seconds_per_item: 1s
  checkpoint_every: 90s
  state_size: 1GiB
  output_every: 40
  runtime: {poll_interval: 2s}
env:
  cloud: aws
  replacement: {delay: 41s}
  imdsv2: required
  s3: {upload: 20MB/s, download: 30MB/s}
  disk: {write: 100MB/s}
  redis: {latency: 20ms}
timeline:
  - at: 240s
    notice: {lead: 112s, action: terminate, rebalance_before: 239s}
  - on: {delay: 6s, nth: 3, event: checkpoint.started}
    notice: {action: stop, rebalance_before: 177s, lead: 170s}
expect: [saved_before_deadline]
"""


def test_a_local_save_for_a_stop_counts_though_a_later_terminate_wipes_the_disk() -> None:
    (loaded,) = load_text(TWO_NOTICES, file="<test>")
    result = run_scenario(loaded.scenario)
    first = next(e.instance for e in result.history if e.kind == Kind.INSTANCE_STARTED)
    story = [
        (e.kind, e.data.get("action"), e.data.get("tier"))
        for e in result.history
        if e.instance == first
        and (
            (e.kind == Kind.NOTICE_ISSUED and e.data.get("action"))
            or (e.kind == Kind.CHECKPOINT_DURABLE and e.data.get("position") == 366)
            or e.kind in (Kind.INSTANCE_EXITED, Kind.INSTANCE_KILLED)
        )
    ]
    assert story == [
        (Kind.NOTICE_ISSUED, "stop", None),
        (Kind.CHECKPOINT_DURABLE, None, "local"),
        (Kind.INSTANCE_EXITED, None, None),
        (Kind.NOTICE_ISSUED, "terminate", None),
        (Kind.INSTANCE_KILLED, "terminate", None),
    ]
    (saved,) = result.checks
    assert saved.result.status == "passed", saved.result.violations
    assert saved.result.summary == "1 interruption(s) with work to save"
