"""``--time-scale N``: the process's clock runs N times faster, through libfaketime.

libfaketime (``LD_PRELOAD``) makes a process read a faked ``time()``, ``clock_gettime()``
(CLOCK_MONOTONIC included) and wait faked durations in ``sleep``, ``nanosleep``, ``poll``,
``select`` and ``epoll_wait``, so Python's ``time.sleep``, asyncio, and most C, Go (with cgo) or
shell programs wait N times less than they believe. The harness scales with it: its run clock,
its timers (leads, delays, ``at:`` times, the budget), the times in notices and the delays its
proxies inject all count faked seconds.

Where it does not work: statically linked binaries and Go binaries built without cgo (they do not
go through libc, so they keep real time); programs that measure time with the CPU's TSC; and
anything that talks to a server outside the run in real time. The faked wall clock starts at
whole seconds, so a process may be up to one faked second behind the harness at its start.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: Where Debian's libfaketime package puts the library.
LIBRARY_PATHS = (
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
    Path("/usr/local/lib/faketime/libfaketime.so.1"),
)


def faketime_library() -> Path | None:
    return next((path for path in LIBRARY_PATHS if path.exists()), None)


def why_not(scale: float) -> str:
    """Why ``--time-scale`` cannot be used (empty when it can, or when the scale is 1)."""
    if scale == 1:
        return ""
    if scale < 1:
        return f"--time-scale must be at least 1 (got {scale:g}); a process cannot be slowed down"
    if faketime_library() is None:
        return (
            "--time-scale needs libfaketime (Debian: apt-get install libfaketime; "
            "tests/system_packages.txt lists it)"
        )
    return ""


class RunClock:
    """The run's clock: seconds from the start of the run, ``scale`` times faster than real
    time (the history's, the fakes' and the timers' clock), and the calendar that goes with it."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.origin = time.monotonic()
        self.wall_origin = datetime.now(UTC)

    def monotonic(self) -> float:
        return (time.monotonic() - self.origin) * self.scale

    def now(self) -> datetime:
        return self.wall_origin + timedelta(seconds=self.monotonic())

    def real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of the run's clock take."""
        return seconds / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real(seconds))

    def target_origin(self) -> float:
        """The run's start on a target's CLOCK_MONOTONIC: the real one, or with libfaketime the
        faked epoch seconds (it fakes the monotonic clock as the calendar)."""
        return self.origin if self.scale == 1 else self.wall_origin.timestamp()

    def target_now(self) -> float:
        """Now, on a target's CLOCK_MONOTONIC (see :meth:`target_origin`)."""
        if self.scale == 1:
            return time.monotonic()
        return self.wall_origin.timestamp() + self.monotonic()

    def environment(self, base_preload: str | None) -> dict[str, str]:
        """``LD_PRELOAD`` and ``FAKETIME`` for a process started now (none at scale 1)."""
        library = faketime_library()
        if self.scale == 1 or library is None:
            return {}
        start = self.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        preload = " ".join(filter(None, [str(library), base_preload]))
        return {
            "LD_PRELOAD": preload,
            "FAKETIME": f"@{start} x{self.scale:g}",
            "TZ": "UTC",  # FAKETIME's date is UTC
        }
