"""GCP: a hanging GET on ``instance/preempted`` with ``wait_for_change`` and ``last_etag``.

``TRUE`` means the soft off has begun; the deadline is the grace period (``gcp_grace``, 30 s by
default) from when it was seen, since GCP gives no timestamp.
"""

from __future__ import annotations

from harness.runtime.monitor.core import InterruptionNotice, Monitor
from harness.runtime.monitor.http import HttpSession, Unreachable, new_session, request

PREEMPTED = "/computeMetadata/v1/instance/preempted"
HEADERS = {"Metadata-Flavor": "Google"}
#: How long a hanging GET asks the server to hold it. The client's own timeout is this plus
#: ``http_timeout``, so a connection dropped silently (no answer ever) blinds the source for
#: less than GCP's 30 s notice before it asks again.
WAIT_SECONDS = 20
_RETRY_DELAY = 1.0


class GcpPreemptionSource:
    name = "gcp"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._etag: str | None = None
        self._failures = 0

    async def run(self, monitor: Monitor) -> None:
        async with new_session() as session:
            while True:
                if not await self._watch_once(session, monitor):
                    await monitor.clock.sleep(_RETRY_DELAY)

    async def _watch_once(self, session: HttpSession, monitor: Monitor) -> bool:
        url = self.base_url + PREEMPTED
        timeout = monitor.config.http_timeout
        if self._etag is not None:
            url += f"?wait_for_change=true&last_etag={self._etag}&timeout_sec={WAIT_SECONDS}"
            timeout += WAIT_SECONDS
        try:
            reply = await request(session, "GET", url, headers=HEADERS, timeout=timeout)
        except Unreachable as error:
            return self._failed(monitor, str(error))
        if reply.status != 200:
            return self._failed(monitor, f"HTTP {reply.status}")
        self._failures = 0
        monitor.sighted(self.name)
        self._etag = reply.headers.get("ETag") or reply.headers.get("Etag") or self._etag or "0"
        if reply.text.strip().upper() == "TRUE":
            monitor.report(
                InterruptionNotice(
                    source=self.name,
                    effect="terminate",  # stop or delete: S3 is the tier that survives both
                    deadline=monitor.clock.monotonic() + monitor.config.gcp_grace,
                    ident=f"preempted/{self._etag}",
                    notice_time=None,
                )
            )
        return True

    def _failed(self, monitor: Monitor, reason: str) -> bool:
        self._failures += 1
        if self._failures >= monitor.config.blind_after:
            monitor.blind(self.name, reason)
        return False
