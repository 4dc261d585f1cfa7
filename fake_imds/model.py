"""The metadata plane's state, with no HTTP in it: notices, faults and the served-request log.

One notice model for every cloud. A scheduled interruption is stored once as a :class:`Notice`;
each dialect (AWS IMDS, GCP metadata, Azure Scheduled Events, webhook, Kubernetes signals)
renders it its own way. All times are seconds on the plane's :class:`~harness.clock.Clock`
(``clock.monotonic()``); calendar times are derived with :meth:`MetadataPlane.calendar`.

Nothing here is module-level state: every server owns one :class:`MetadataPlane`.
"""

from __future__ import annotations

import asyncio
import email.utils
import fnmatch
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from fake_imds.vocabulary import CLOUDS, Cloud, FaultKind
from harness.clock import Clock

__all__ = ["CLOUDS", "Cloud", "FaultKind"]  # re-exported: older imports name this module

NoticeState = Literal["scheduled", "issued", "started", "completed", "canceled"]


@dataclass(frozen=True)
class Notice:
    """One interruption signal, cloud-neutral.

    ``issued_at`` is when the signal becomes visible (the notice appears in metadata, the
    webhook fires, SIGTERM is sent); ``deadline`` is when the action happens (the instance is
    terminated, stopped, hibernated, hard-killed). ``params`` holds dialect-specific details
    (Azure ``EventType``, a webhook URL, a Kubernetes grace period, a scheduled-event code).
    """

    id: str
    cloud: Cloud
    kind: str
    action: str
    issued_at: float
    deadline: float
    params: dict[str, Any] = field(default_factory=dict)
    state: NoticeState = "scheduled"

    def visible(self, now: float) -> bool:
        """Whether the notice is in effect at ``now`` (issued and not canceled)."""
        return self.state != "canceled" and self.issued_at <= now

    def to_json(self, plane: MetadataPlane) -> dict[str, Any]:
        return {
            "id": self.id,
            "cloud": self.cloud,
            "kind": self.kind,
            "action": self.action,
            "issued_at": plane.iso(self.issued_at),
            "deadline": plane.iso(self.deadline),
            "state": self.current_state(plane.clock.monotonic()),
            "params": dict(self.params),
        }

    def current_state(self, now: float) -> NoticeState:
        if self.state in ("canceled", "completed", "started"):
            return self.state
        if now >= self.deadline:
            return "completed"
        return "issued" if now >= self.issued_at else "scheduled"


@dataclass(frozen=True)
class Fault:
    """A failure mode applied to requests whose path matches ``pattern`` (fnmatch syntax).

    ``status``: answer with ``status`` instead; ``latency``: delay by ``seconds``; ``timeout``:
    accept and never answer; ``reset``: drop the connection; ``throttle``: answer 429 to requests
    beyond ``limit`` per second. Active from ``start`` until ``end`` (``None``: until removed).
    """

    id: str
    kind: FaultKind
    pattern: str = "*"
    start: float = 0.0
    end: float | None = None
    status: int = 500
    seconds: float = 0.0
    limit: int = 0

    def active(self, now: float) -> bool:
        return self.start <= now and (self.end is None or now < self.end)

    def matches(self, path: str) -> bool:
        return fnmatch.fnmatchcase(path, self.pattern)


@dataclass(frozen=True)
class ServedRequest:
    """What the plane answered, for ``GET /_harness/v1/requests`` and for the checks."""

    t: float
    method: str
    path: str
    status: int
    remote: str
    dialect: str
    fault: str | None = None
    #: Protocol facts the dialect noted about the request, for the checks: an IMDSv2 token's
    #: serial number and TTL (never the token), a hanging GET's ``timeout_sec``, the EventIds an
    #: Azure approval named. ``None`` when there is nothing to note.
    note: Mapping[str, Any] | None = None


#: Entries the served-request log keeps by default (``harness serve --request-log-limit``).
DEFAULT_REQUEST_LOG_LIMIT = 100_000

_ServedRow = tuple[float, str, str, int, str, str, "str | None", "Mapping[str, Any] | None"]


class RequestLog:
    """The served-request log: the newest ``limit`` entries, oldest first.

    Every entry has a sequence number: 0 for the first request served since the last reset, 1
    for the next, and so on. Numbers never shift when the oldest entries are dropped past the
    limit, so a client tailing the log with :meth:`since` keeps seeing new requests, and
    :attr:`dropped` says how many it can no longer see.

    Reads like a deque of :class:`ServedRequest` (``len``, iteration, indexing, ``append``,
    ``clear``). Entries are kept as plain tuples, which the garbage collector stops tracking, so
    a long log costs nothing at collection time on a busy server.
    """

    def __init__(self, limit: int) -> None:
        self._rows: deque[_ServedRow] = deque(maxlen=limit)
        self._total = 0

    @property
    def maxlen(self) -> int | None:
        return self._rows.maxlen

    @property
    def total(self) -> int:
        """Requests logged since the last reset (the next entry's sequence number)."""
        return self._total

    @property
    def dropped(self) -> int:
        """Entries discarded past the limit since the last reset."""
        return self._total - len(self._rows)

    def append(self, served: ServedRequest) -> None:
        self._total += 1
        self._rows.append(
            (
                served.t,
                served.method,
                served.path,
                served.status,
                served.remote,
                served.dialect,
                served.fault,
                served.note,
            )
        )

    def since(self, seq: int) -> list[tuple[int, ServedRequest]]:
        """(sequence number, entry) of the entries numbered ``seq`` and later still held."""
        first = max(seq, self.dropped)
        rows = list(self._rows)[first - self.dropped :] if first < self._total else []
        return [(first + i, ServedRequest(*row)) for i, row in enumerate(rows)]

    def clear(self) -> None:
        self._rows.clear()
        self._total = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[ServedRequest]:
        return (ServedRequest(*row) for row in list(self._rows))

    def __getitem__(self, index: int) -> ServedRequest:
        return ServedRequest(*self._rows[index])

    def __bool__(self) -> bool:
        return bool(self._rows)


class RateWindow:
    """Admits at most ``limit`` events in any one second (a sliding window), for throttling."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self._times and self._times[0] <= now - 1.0:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


Listener = Callable[[Notice], None]
#: Renders a notice the way one dialect shows it (raising if it cannot), for validation.
Renderer = Callable[[Notice], object]


class RenderError(ValueError):
    """A notice no dialect could show (a date past the calendar's end, for instance)."""


class _Serving:
    """The ``with`` block of :meth:`MetadataPlane.serving` (a class rather than a generator:
    it runs for every metadata request)."""

    __slots__ = ("_in_flight", "_key", "_received")

    def __init__(self, in_flight: dict[int, float], key: int, received: float) -> None:
        self._in_flight = in_flight
        self._key = key
        self._received = received

    def __enter__(self) -> None:
        self._in_flight[self._key] = self._received

    def __exit__(self, *_: object) -> None:
        del self._in_flight[self._key]


class MetadataPlane:
    """State shared by every dialect: notices, faults, request log, change notification."""

    def __init__(self, clock: Clock, *, request_log_limit: int = DEFAULT_REQUEST_LOG_LIMIT) -> None:
        self.clock = clock
        self._epoch_monotonic = clock.monotonic()
        self._epoch_calendar = clock.now()
        self._epoch_timestamp = self._epoch_calendar.timestamp() - self._epoch_monotonic
        self._notices: dict[str, Notice] = {}
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)
        self._throttle_windows: dict[str, RateWindow] = {}
        self.requests = RequestLog(request_log_limit)
        self._listeners: list[Listener] = []
        self._renderers: list[Renderer] = []
        self._request_listeners: list[Callable[[ServedRequest], None]] = []
        self._in_flight: dict[int, float] = {}
        self._flight_ids = itertools.count()
        self._version = 0
        self._changed: asyncio.Event | None = None
        self._timers: list[asyncio.TimerHandle] = []

    # -- time ---------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.monotonic()

    def calendar(self, t: float) -> datetime:
        """Calendar time of clock instant ``t``."""
        return self._epoch_calendar + timedelta(seconds=t - self._epoch_monotonic)

    def timestamp(self, t: float) -> float:
        """POSIX timestamp of clock instant ``t`` (:meth:`calendar` without building a datetime,
        for what is asked on every request)."""
        return self._epoch_timestamp + t

    def rfc1123(self, t: float) -> str:
        """Clock instant ``t`` as HTTP dates are written (``Thu, 01 Jan 2026 00:02:03 GMT``)."""
        return email.utils.formatdate(self.timestamp(t), usegmt=True)

    def iso(self, t: float) -> str:
        return self.calendar(t).strftime("%Y-%m-%dT%H:%M:%SZ")

    def at_calendar(self, when: datetime) -> float:
        """Clock instant of a calendar time (for an absolute ``at``)."""
        return self._epoch_monotonic + (when - self._epoch_calendar).total_seconds()

    # -- notices ------------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    def add_notice(
        self,
        cloud: Cloud,
        kind: str,
        action: str,
        *,
        lead: float,
        at: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Notice:
        """Schedule a notice issued at ``at`` (default now) whose deadline is ``lead`` later."""
        notice = self.preview_notice(cloud, kind, action, lead=lead, at=at, params=params)
        self.check_renders(notice)
        return self.store_notice(notice)

    def preview_notice(
        self,
        cloud: Cloud,
        kind: str,
        action: str,
        *,
        lead: float,
        at: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Notice:
        """The notice :meth:`add_notice` would schedule, not yet stored (and without an id)."""
        issued = self.now() if at is None else at
        return Notice(
            id="",
            cloud=cloud,
            kind=kind,
            action=action,
            issued_at=issued,
            deadline=issued + lead,
            params=dict(params or {}),
        )

    def add_renderer(self, renderer: Renderer) -> None:
        """Have :meth:`check_renders` try ``renderer`` on every notice before it is stored."""
        self._renderers.append(renderer)

    def check_renders(self, notice: Notice) -> None:
        """Render ``notice`` as the control API and every dialect would show it, at once rather
        than on some later request; :class:`RenderError` if any cannot."""
        try:
            notice.to_json(self)
            for renderer in self._renderers:
                renderer(notice)
        except (ArithmeticError, ValueError, TypeError, KeyError) as error:
            raise RenderError(f"{type(error).__name__}: {error}") from None

    def store_notice(self, preview: Notice) -> Notice:
        """Give a previewed notice its id and schedule it."""
        notice = replace(preview, id=self.new_id("notice"))
        self._notices[notice.id] = notice
        self._schedule_change(notice.issued_at, notice)
        self._schedule_change(notice.deadline, notice)
        self._touch(notice)
        return notice

    def update_notice(self, notice_id: str, **changes: Any) -> Notice:
        notice = replace(self._notices[notice_id], **changes)
        self._notices[notice_id] = notice
        self._touch(notice)
        return notice

    def cancel_notice(self, notice_id: str) -> Notice:
        """Cancel a notice, noting when in ``params["canceled_at"]`` (a scheduled event
        canceled before it was issued never shows); raises ``KeyError`` if there is none."""
        params = {**self._notices[notice_id].params, "canceled_at": self.now()}
        return self.update_notice(notice_id, state="canceled", params=params)

    def get_notice(self, notice_id: str) -> Notice:
        return self._notices[notice_id]

    def notices(self, cloud: Cloud | None = None, kind: str | None = None) -> list[Notice]:
        return [
            n
            for n in self._notices.values()
            if (cloud is None or n.cloud == cloud) and (kind is None or n.kind == kind)
        ]

    def visible_notices(self, cloud: Cloud | None = None, kind: str | None = None) -> list[Notice]:
        now = self.now()
        return [n for n in self.notices(cloud, kind) if n.visible(now)]

    # -- faults -------------------------------------------------------------------------------
    def add_fault(self, kind: FaultKind, *, duration: float | None = None, **params: Any) -> Fault:
        now = self.now()
        if duration is not None:
            self._renders_at(now + duration)
        fault = Fault(
            id=self.new_id("fault"),
            kind=kind,
            start=now,
            end=None if duration is None else now + duration,
            **params,
        )
        self._faults[fault.id] = fault
        return fault

    def _renders_at(self, t: float) -> None:
        try:
            self.iso(t)
        except (ArithmeticError, ValueError) as error:
            raise RenderError(f"{type(error).__name__}: {error}") from None

    def remove_fault(self, fault_id: str) -> Fault:
        return self._faults.pop(fault_id)

    def faults(self) -> list[Fault]:
        return list(self._faults.values())

    def fault_for(self, path: str) -> Fault | None:
        """The first active fault that applies to a request for ``path`` now, if any."""
        if not self._faults:  # the usual case, asked on every metadata request
            return None
        now = self.now()
        for fault in self._faults.values():
            if not (fault.active(now) and fault.matches(path)):
                continue
            if fault.kind != "throttle":
                return fault
            if not self._throttle_window(fault).admit(now):
                return fault
        return None

    def dropped_since(self, path: str, since: float) -> Fault | None:
        """A timeout or reset fault on ``path`` that began after a request received at ``since``
        and before its answer: the connection the held request came on went silent or was
        dropped, so the answer never reaches the client (a hanging GET's usual fate)."""
        if not self._faults:
            return None
        now = self.now()
        for fault in self._faults.values():
            cuts = fault.kind in ("timeout", "reset") and since < fault.start <= now
            if cuts and fault.matches(path):
                return fault
        return None

    def _throttle_window(self, fault: Fault) -> RateWindow:
        window = self._throttle_windows.get(fault.id)
        if window is None:
            window = self._throttle_windows[fault.id] = RateWindow(fault.limit)
        return window

    # -- request log --------------------------------------------------------------------------
    def log_request(self, request: ServedRequest) -> None:
        self.requests.append(request)
        for listener in list(self._request_listeners):
            listener(request)

    def on_request(self, listener: Callable[[ServedRequest], None]) -> Callable[[], None]:
        """Call ``listener(request)`` for each request served, after it is logged; returns the
        call that unsubscribes."""
        self._request_listeners.append(listener)
        return lambda: self._request_listeners.remove(listener)

    def serving(self, received: float) -> _Serving:
        """Count a request as being answered (a hanging GET held, an answer delayed) while
        the ``with`` block runs; see :meth:`earliest_in_flight`."""
        return _Serving(self._in_flight, next(self._flight_ids), received)

    def earliest_in_flight(self) -> float | None:
        """When the oldest request still being answered arrived (None: none is)."""
        return min(self._in_flight.values(), default=None)

    # -- change notification (hanging GETs, event sinks) ---------------------------------------
    @property
    def version(self) -> int:
        """Rises whenever something a client could observe may have changed."""
        return self._version

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(notice)`` when a notice is added, changes, is issued or falls due."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def wait_for_change(self, since_version: int) -> int:
        """Return as soon as :attr:`version` differs from ``since_version``."""
        while self._version == since_version:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()
        return self._version

    def _touch(self, notice: Notice) -> None:
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        for listener in list(self._listeners):
            listener(notice)

    def _schedule_change(self, t: float, notice: Notice) -> None:
        delay = t - self.now()
        if delay <= 0:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: readers compute visibility from the clock anyway
        self._timers.append(loop.call_later(delay, self._fire, notice.id))

    def _fire(self, notice_id: str) -> None:
        notice = self._notices.get(notice_id)
        if notice is not None:
            self._touch(notice)

    # -- lifecycle ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget notices, faults and the request log (``POST /_harness/v1/reset``)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._notices.clear()
        self._faults.clear()
        self._throttle_windows.clear()
        self.requests.clear()
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


def latest(notices: Iterable[Notice]) -> Notice | None:
    """The most recently issued notice, ties broken by id (deterministic)."""
    ordered = sorted(notices, key=lambda n: (n.issued_at, n.id))
    return ordered[-1] if ordered else None
