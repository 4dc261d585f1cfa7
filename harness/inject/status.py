"""The live status line of a running injection, and the time source the watchers use.

Live injections run against real clouds in real time, but the watchers never call ``time`` or
``datetime.now`` themselves: they take a :class:`Timekeeper`, so tests drive them without real
sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from harness.units import format_duration


@dataclass(frozen=True)
class Timekeeper:
    """Sleep and calendar time, injectable."""

    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class StatusLine:
    """One line rewritten in place on a terminal; one line per change otherwise (logs, CI)."""

    def __init__(self, stream: TextIO, *, live: bool | None = None) -> None:
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._last = ""
        self._shown = False

    def show(self, text: str, elapsed: float | None = None, detail: str = "") -> None:
        """Show ``text``; ``elapsed`` is prefixed and ``detail`` (a countdown) appended, but a
        change of them alone is not a change: off a terminal, a line per change of ``text``."""
        prefix = f"[{_clock(elapsed)}] " if elapsed is not None else ""
        line = prefix + text + (f", {detail}" if detail else "")
        if self._live:
            self._stream.write("\r\x1b[2K" + line)
            self._stream.flush()
            self._shown = True
        elif text != self._last:
            self._stream.write(line + "\n")
            self._stream.flush()
        self._last = text

    def note(self, text: str) -> None:
        """A permanent line (the live line is ended first)."""
        self.end()
        self._stream.write(text + "\n")
        self._stream.flush()

    def end(self) -> None:
        if self._live and self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False


def _clock(seconds: float | None) -> str:
    whole = int(seconds or 0)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def when(moment: datetime | None) -> str:
    """``14:02:01Z`` for a time on the status line."""
    return moment.astimezone(UTC).strftime("%H:%M:%SZ") if moment else "-"


def relative(seconds: float) -> str:
    """``48s before`` / ``5s after`` phrasing helper: the magnitude only."""
    return format_duration(abs(round(seconds)))
