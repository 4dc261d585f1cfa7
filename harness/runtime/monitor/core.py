"""Monitor state and the adapter interface."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from harness.clock import Clock
from harness.history import Kind
from harness.runtime.config import RuntimeConfig
from harness.target import Emit

URGENT_ACTIONS = ("terminate", "stop", "hibernate")


@dataclass(frozen=True)
class InterruptionNotice:
    """A notice as the runtime understands it, whatever the source."""

    source: str  # aws | gcp | azure | webhook | signals
    effect: str  # what it means for the job: terminate | stop | hibernate | rebalance
    deadline: float | None  # clock seconds (monotonic scale); None: unknown
    ident: str  # de-duplication key within the source (event id, notice time)
    notice_time: str | None = None  # the time as the cloud wrote it
    #: The cloud's own word for it (``terminate``, ``preempt``, ...), when the source says one.
    action: str | None = None
    acknowledge: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)

    @property
    def urgent(self) -> bool:
        return self.effect in URGENT_ACTIONS


class NoticeSource(Protocol):
    """An adapter: runs until cancelled, reporting into the monitor."""

    name: str

    async def run(self, monitor: Monitor) -> None: ...


def calendar_to_clock(clock: Clock, when: datetime) -> float:
    """Clock seconds of a calendar instant, through this instance's own clock (skew included)."""
    return clock.monotonic() + (when - clock.now()).total_seconds()


class Monitor:
    """Collects notices from every source. The job waits on :attr:`wake` and then reads
    :attr:`urgent` (save now and stop: the notice with the earliest deadline) and
    :meth:`take_rebalance` (checkpoint soon)."""

    def __init__(self, clock: Clock, emit: Emit, config: RuntimeConfig) -> None:
        self.clock = clock
        self.config = config
        self._emit = emit
        self._seen: set[tuple[str, str]] = set()
        self._blind: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.urgent: InterruptionNotice | None = None
        self.rebalance: InterruptionNotice | None = None
        self.wake = asyncio.Event()

    # -- reports from adapters -------------------------------------------------------------
    def report(self, notice: InterruptionNotice) -> None:
        if (notice.source, notice.ident) in self._seen:
            return
        self._seen.add((notice.source, notice.ident))
        data: dict[str, Any] = {
            "source": notice.source,
            "effect": notice.effect,
            "deadline": notice.deadline,
            "notice_time": notice.notice_time,
        }
        if notice.action is not None:
            data["action"] = notice.action
        self._emit(Kind.NOTICE_SEEN, **data)
        if notice.urgent:
            if self.urgent is None or _earlier(notice, self.urgent):
                self.urgent = notice
        else:
            self.rebalance = notice
        self.wake.set()

    def blind(self, source: str, reason: str) -> None:
        if source not in self._blind:
            self._blind.add(source)
            self._emit(Kind.MONITOR_BLIND, source=source, reason=reason)

    def sighted(self, source: str) -> None:
        if source in self._blind:
            self._blind.discard(source)
            self._emit(Kind.MONITOR_SIGHTED, source=source)

    @property
    def blind_sources(self) -> frozenset[str]:
        return frozenset(self._blind)

    def take_rebalance(self) -> InterruptionNotice | None:
        notice, self.rebalance = self.rebalance, None
        return notice

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, sources: list[NoticeSource]) -> None:
        for source in sources:
            self._tasks.append(asyncio.ensure_future(self._run(source)))

    async def _run(self, source: NoticeSource) -> None:
        try:
            await source.run(self)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # an adapter bug must not pass for "no notice"
            self.blind(source.name, f"adapter failed: {type(error).__name__}: {error}")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def acknowledge(self) -> None:
        """Tell the source the state is saved (Azure: approve the event to start early)."""
        notice = self.urgent
        if notice is not None and notice.acknowledge is not None:
            with contextlib.suppress(Exception):
                await notice.acknowledge()


def _earlier(a: InterruptionNotice, b: InterruptionNotice) -> bool:
    if a.deadline is None:
        return False
    return b.deadline is None or a.deadline < b.deadline


def build_sources(
    names: tuple[str, ...],
    *,
    base_url: str,
    signals: asyncio.Queue[str],
    extra: Mapping[str, Any],
    webhook_port: int = 0,
) -> list[NoticeSource]:
    """One adapter per configured source name."""
    from harness.runtime.monitor.aws import AwsImdsSource
    from harness.runtime.monitor.azure import AzureEventsSource
    from harness.runtime.monitor.gcp import GcpPreemptionSource
    from harness.runtime.monitor.signals import SignalSource
    from harness.runtime.monitor.webhook import WebhookSource

    sources: list[NoticeSource] = []
    for name in names:
        if name == "aws":
            sources.append(AwsImdsSource(base_url))
        elif name == "gcp":
            sources.append(GcpPreemptionSource(base_url))
        elif name == "azure":
            sources.append(AzureEventsSource(base_url))
        elif name == "webhook":
            sources.append(WebhookSource(register=extra.get("register_webhook"), port=webhook_port))
        elif name == "signals":
            sources.append(SignalSource(signals, grace=extra.get("grace_period")))
    return sources
