"""Webhook interruption notices: a JSON document POSTed to a URL, retried with backoff.

A notice of cloud ``webhook`` (``{"cloud": "webhook", "url": "...", "lead": "2m"}``) is delivered
by :class:`WebhookDispatcher` the moment it is issued. The document is provider-style (CloudEvents
1.0 attributes plus the instance id, action and deadline at top level) so a receiver written for
a cloud's interruption webhook finds the fields it expects. Failed attempts (connection error,
timeout, 408, 429, 5xx) are retried with exponential backoff, honouring ``Retry-After``; other
4xx answers are final. Every attempt is recorded with its loop time; waits use the loop clock
only, so delivery runs in virtual time too (give IP-literal URLs there: name lookups need a
thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from pydantic import AfterValidator, Field

from fake_imds.control import At, Duration, NoticeBody, NoticeSpec
from fake_imds.dispatch import NoticeDispatcher
from fake_imds.model import MetadataPlane, Notice
from fake_imds.vocabulary import NoticeAction

if TYPE_CHECKING:
    from fake_imds.server import DialectSite

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
EVENT_TYPE = "com.spot-harness.instance.interruption"
USER_AGENT = "spot-harness-webhook/1"


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all; the wait before attempt n+1 is ``backoff * factor**(n-1)``, capped."""

    attempts: int = 5
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 30.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.backoff < 0 or self.factor < 1 or self.max_backoff < 0 or self.timeout <= 0:
            raise ValueError(
                f"backoff and max_backoff must be >= 0, factor >= 1 and timeout > 0, got {self!r}"
            )

    def delay_after(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * self.factor ** (attempt - 1)))


@dataclass(frozen=True)
class Attempt:
    """One POST: when (loop time), the HTTP status if any answer came, or the error."""

    number: int
    t: float
    status: int | None = None
    error: str | None = None
    retryable: bool = True

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        return {"attempt": self.number, "t": round(self.t, 6), "status": self.status,
                "error": self.error, "ok": self.ok}  # fmt: skip


Outcome = Literal["pending", "delivered", "failed"]


@dataclass
class Delivery:
    """A document on its way to ``url``, with every attempt so far."""

    url: str
    payload: dict[str, Any]
    notice_id: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    outcome: Outcome = "pending"

    def to_json(self) -> dict[str, Any]:
        return {
            "notice_id": self.notice_id,
            "url": self.url,
            "outcome": self.outcome,
            "attempts": [a.to_json() for a in self.attempts],
            "payload": self.payload,
        }


AttemptListener = Callable[[Delivery, Attempt], None]


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL, else a ``ValueError`` saying how to fix it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an absolute http:// or https:// URL, got {url!r}")
    return url


def webhook_payload(notice: Notice, plane: MetadataPlane, instance_id: str) -> dict[str, Any]:
    """The document POSTed for ``notice``: CloudEvents attributes plus the interruption."""
    lead = notice.deadline - notice.issued_at
    return {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": "spot-harness/fake-imds",
        "id": notice.id,
        "time": plane.iso(notice.issued_at),
        "subject": instance_id,
        "datacontenttype": "application/json",
        "instance_id": instance_id,
        "action": notice.action,
        "deadline": plane.iso(notice.deadline),
        "notice_time": plane.iso(notice.issued_at),
        "lead_seconds": round(lead, 3),
        "data": {
            "instance-id": instance_id,
            "instance-action": notice.action,
            "time": plane.iso(notice.deadline),
            **{k: v for k, v in notice.params.items() if k not in ("url", "headers")},
        },
    }


class WebhookSender:
    """POSTs JSON documents with retries; keeps every :class:`Delivery` in :attr:`deliveries`."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        headers: dict[str, str] | None = None,
        on_attempt: AttemptListener | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._session = session
        self._own_session = session is None
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._on_attempt = on_attempt
        self.deliveries: list[Delivery] = []

    async def send(
        self, url: str, payload: dict[str, Any], *, notice_id: str | None = None
    ) -> Delivery:
        """Deliver ``payload`` to ``url``; returns once delivered or out of attempts."""
        delivery = Delivery(url=check_url(url), payload=payload, notice_id=notice_id)
        self.deliveries.append(delivery)
        loop = asyncio.get_running_loop()
        for number in range(1, self.policy.attempts + 1):
            attempt, retry_after = await self._attempt(delivery, number, loop.time())
            delivery.attempts.append(attempt)
            if self._on_attempt is not None:
                self._on_attempt(delivery, attempt)
            if attempt.ok:
                delivery.outcome = "delivered"
                return delivery
            final = not attempt.retryable or (
                attempt.status is not None and attempt.status not in RETRYABLE_STATUSES
            )
            if final or number == self.policy.attempts:
                break
            await asyncio.sleep(max(retry_after or 0.0, self.policy.delay_after(number)))
        delivery.outcome = "failed"
        return delivery

    async def _attempt(
        self, delivery: Delivery, number: int, t: float
    ) -> tuple[Attempt, float | None]:
        session = self._session_for_loop()
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
        try:
            async with session.post(
                delivery.url, json=delivery.payload, headers=self._headers, timeout=timeout
            ) as response:
                await response.read()
                retry_after = _retry_after(response.headers.get("Retry-After"))
                return Attempt(number, t, status=response.status), retry_after
        except TimeoutError:
            return Attempt(number, t, error=f"timed out after {self.policy.timeout:g}s"), None
        except aiohttp.ClientError as error:
            return Attempt(number, t, error=f"{type(error).__name__}: {error}"), None
        except (RuntimeError, ValueError) as error:
            # Not the receiver's fault (e.g. a host name needing a thread in virtual time):
            # recorded as a final failure, since a retry would meet the same error.
            error_text = f"{type(error).__name__}: {error}"
            return Attempt(number, t, error=error_text, retryable=False), None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: fall back to the policy's own backoff
    return seconds if seconds >= 0 else None


class WebhookDispatcher(NoticeDispatcher):
    """Sends a webhook notice's document when the notice is issued (once per notice).

    Subscribes to the plane's change notification, so a notice scheduled for later fires at
    its ``issued_at`` on the loop clock. ``start()`` inside the running loop; ``close()`` waits
    for deliveries in flight to be cancelled.
    """

    def __init__(self, plane: MetadataPlane, sender: WebhookSender, instance_id: str) -> None:
        super().__init__(plane)
        self.sender = sender
        self.instance_id = instance_id
        self._sent: set[str] = set()

    def on_change(self, notice: Notice) -> None:
        if notice.cloud != "webhook" or notice.id in self._sent:
            return
        if not notice.visible(self.plane.now()):
            return
        self._sent.add(notice.id)
        payload = webhook_payload(notice, self.plane, self.instance_id)
        self.spawn(self.sender.send(str(notice.params["url"]), payload, notice_id=notice.id))

    async def close(self) -> None:
        await super().close()
        await self.sender.close()


# -- notices (control API) and the server hook ----------------------------------------------

DEFAULT_INSTANCE_ID = "i-0123456789abcdef0"
#: A provider's usual warning before the action (AWS's two minutes).
DEFAULT_WEBHOOK_LEAD = 120.0


@dataclass(frozen=True)
class WebhookOptions:
    """``instance_id`` in the documents (default: the AWS dialect's), and the retry policy."""

    instance_id: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    headers: dict[str, str] = field(default_factory=dict)


def _http_url(url: str) -> str:
    try:
        return check_url(url)
    except ValueError as error:
        raise ValueError(f"'url': {error}") from None


class WebhookNoticeBody(NoticeBody):
    """``{"cloud": "webhook", "url": "http://...", "lead": "2m"}``: the document is POSTed to
    ``url`` when the notice is issued."""

    cloud: Literal["webhook"]
    kind: str = Field(default="interruption", min_length=1, max_length=64)
    url: Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_http_url)]
    action: NoticeAction = "terminate"
    lead: Duration = DEFAULT_WEBHOOK_LEAD
    at: At = None

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        params = {"url": self.url}
        return [NoticeSpec("webhook", self.kind, self.action, self.lead, self.at, params)]


#: The webhook body of ``POST /_harness/v1/notices`` (any ``kind``).
NOTICE_BODIES: tuple[type[NoticeBody], ...] = (WebhookNoticeBody,)


DISPATCHER_KEY: web.AppKey[WebhookDispatcher] = web.AppKey("webhook_dispatcher")


def install(site: DialectSite) -> None:
    """POST webhook notices when issued; ``GET /_harness/v1/webhooks`` lists every attempt."""
    options = site.options(WebhookOptions())
    if not isinstance(options, WebhookOptions):
        raise TypeError(f"webhook options must be WebhookOptions, got {type(options).__name__}")
    instance_id = options.instance_id or str(
        getattr(site.config.options.get("aws"), "instance_id", None) or DEFAULT_INSTANCE_ID
    )
    sender = WebhookSender(options.policy, headers=options.headers)
    dispatcher = WebhookDispatcher(site.plane, sender, instance_id)
    site.plane.add_renderer(lambda notice: webhook_payload(notice, site.plane, instance_id))
    site.app[DISPATCHER_KEY] = dispatcher

    async def start(_app: web.Application) -> None:
        dispatcher.start()

    async def deliveries(_request: web.Request) -> web.Response:
        return web.json_response([d.to_json() for d in sender.deliveries])

    site.app.on_startup.append(start)
    site.on_cleanup(dispatcher.close)
    site.add_route("GET", "/_harness/v1/webhooks", deliveries)
