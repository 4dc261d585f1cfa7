"""Failure reports: the timeline marks the cited events and stays short."""

from __future__ import annotations

from harness.history import History, Kind
from harness.report.render import clock_text, replay_command, timeline_lines


def test_clock_text_is_fixed_width() -> None:
    assert clock_text(0) == "0:00:00.000"
    assert clock_text(75.5) == "0:01:15.500"
    assert clock_text(3 * 3600 + 61.0004) == "3:01:01.000"


def test_replay_command_quotes_paths() -> None:
    assert replay_command("scenarios/a b.yaml", 7) == "harness run 'scenarios/a b.yaml' --seed 7"


def test_timeline_marks_cited_events_and_keeps_them_when_long() -> None:
    now = [0.0]
    history = History(lambda: now[0])
    history.record("harness", Kind.RUN_STARTED)
    history.record("harness", Kind.INSTANCE_STARTED, "i-1", incarnation=1, cloud="aws")
    for position in range(1, 200):
        now[0] = position * 10.0
        history.record("target", Kind.ITEM_DONE, "i-1", position=position)
        history.record("target", Kind.CHECKPOINT_DURABLE, "i-1", position=position, tier="s3")
    cited = history.record("harness", Kind.NOTICE_ISSUED, "i-1", action="terminate", deadline=2000)
    lines = timeline_lines(history, [cited.seq, 4])
    assert len(lines) <= 45
    marked = [line for line in lines if line.startswith(">")]
    assert len(marked) == 2
    assert "notice.issued" in marked[1] and "deadline=33m20s" in marked[1]
    assert "job.item_done" in marked[0]  # cited, although item events are not shown otherwise
    assert " #1 " in lines[1]  # instance ids are shortened to their incarnation
