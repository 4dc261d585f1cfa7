"""One incarnation of a command target: a real process group, its output and its events.

The process is started in a session (and process group) of its own, registered with the run's
watchdog, and signalled as a group: SIGTERM (or the scenario's ``stop_signal``) when a platform
sends one, SIGSTOP to freeze it for hibernation, SIGKILL at a deadline or a crash. Its stdout and
stderr go to a log file in the run's directory (the last lines are kept for the history); the
JSON lines it appends to ``HARNESS_EVENTS`` are read as they come and recorded with source
``target``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_imds.server import FakeImds
from harness.history import HARNESS_KINDS, History
from harness.process.redisproxy import RedisProxy
from harness.process.s3proxy import S3Proxy
from harness.process.servers import Watchdog

#: How often the events file of a running process is read.
EVENTS_POLL = 0.02
#: Lines of output kept per incarnation for the history.
OUTPUT_TAIL = 40


@dataclass(eq=False)
class ProcessInstance:
    """One incarnation: its servers, its directory and (once spawned) its process group."""

    incarnation: int
    instance_id: str
    cloud: str
    local_dir: Path
    local_name: str
    imds: FakeImds
    s3: S3Proxy
    redis: RedisProxy
    events_path: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    alive: bool = True
    closed: bool = False
    doomed: bool = False  # a notice will end it
    frozen: bool = False
    webhook_url: str | None = None
    #: ``time.monotonic()`` at the start of the run: targets' CLOCK_MONOTONIC times are moved
    #: onto the run's clock by it.
    clock_origin: float = 0.0
    #: Now on the target's CLOCK_MONOTONIC, as the harness reckons it.
    clock_now: Callable[[], float] = field(default=time.monotonic)
    #: Forgets which metadata answers were recorded (so the next ones are, after a notice).
    forget_imds_answers: Callable[[], None] = field(default=lambda: None)
    exit_code: int | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_TAIL))
    _events_offset: int = 0
    _partial: bytes = b""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _line_watchers: list[Callable[[str], None]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def spawn(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        watchdog: Watchdog,
    ) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own group: signals reach its children too
        )
        watchdog.guard(self.process.pid)
        self._tasks.append(asyncio.create_task(self._pump_output()))

    def watch_lines(self, watcher: Callable[[str], None]) -> None:
        self._line_watchers.append(watcher)

    async def _pump_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("ab") as log:
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    return
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").rstrip()
                self.tail.append(text)
                for watcher in list(self._line_watchers):
                    watcher(text)

    def signal(self, signum: int) -> bool:
        """Send ``signum`` to the whole group; False if it is gone. The group may outlive its
        leader (a child left behind), so it is signalled even after the leader exited."""
        if self.process is None:
            return False
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    async def kill(self) -> None:
        """SIGKILL the group (thawed, so a frozen group dies too) and reap the process."""
        if self.process is None:
            return
        self.signal(signal.SIGKILL)
        self.signal(signal.SIGCONT)
        await self.process.wait()

    async def wait_output(self) -> None:
        """Let the output pump finish (the pipe closes when the group is gone)."""
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            task.cancel()

    def read_events(self, history: History) -> None:
        """Record the events the process appended to its events file since the last read."""
        try:
            with self.events_path.open("rb") as stream:
                stream.seek(self._events_offset)
                chunk = stream.read()
        except FileNotFoundError:
            return
        self._events_offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            parsed = parse_event(raw)
            if parsed is None:
                continue
            kind, data, t = parsed
            history.record("target", kind, self.instance_id, **self._on_run_clock(data, t))

    def _on_run_clock(self, data: dict[str, Any], t: Any) -> dict[str, Any]:
        """Move a ``deadline`` from the target's CLOCK_MONOTONIC onto the run's clock, when
        the event's own ``t`` shows that it uses that clock (the reference runtime does)."""
        now = self.clock_now()
        on_this_clock = isinstance(t, int | float) and self.clock_origin - 1 <= t <= now + 1
        deadline = data.get("deadline")
        if on_this_clock and isinstance(deadline, int | float) and not isinstance(deadline, bool):
            data["deadline"] = round(deadline - self.clock_origin, 6)
        return data


_KIND = re.compile(r"^[A-Za-z_][\w.\-]*$")


def parse_event(raw: bytes) -> tuple[str, dict[str, Any], Any] | None:
    """``{"kind": ..., ...data}`` or the reference runtime's ``{"kind", "data", ...}`` form;
    ``None`` for a line that is not an event, or one claiming a kind only the harness records.
    The third item is the event's own ``t``, if any."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return None
    kind = record["kind"]
    if not _KIND.match(kind) or kind in HARNESS_KINDS:
        return None
    if isinstance(record.get("data"), dict):
        data = dict(record["data"])
    else:
        data = {k: v for k, v in record.items() if k not in ("kind", "t", "seq", "instance")}
    return kind, json.loads(json.dumps(data, default=str)), record.get("t")
