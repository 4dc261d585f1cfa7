"""Known-bad targets for the protocol checks: the reference runtime with one mistake in how it
treats the cloud's signals or its metadata service. Each proves that one check of
:mod:`harness.checks.protocol` can fail; ``scenarios/known_bad/`` runs each with that check
marked ``fails:``.

Use one as ``target: {python: "harness.examples.broken_protocol:<name>"}``:

- ``stops_on_rebalance``: takes an AWS rebalance recommendation for an interruption, saves and
  stops (breaks ``works_through_advisory``). Handlers that treat every metadata event as "we are
  going away" lose capacity for nothing: most recommendations end nothing.
- ``never_renews_token``: fetches one IMDSv2 token and uses it for ever, as the ``ec2-metadata``
  package does (never refreshes a token after a 401); once it expires every poll is a 401 and
  the notice is never seen (breaks ``token_renewed``, and ``saved_before_deadline``).
- ``approves_before_save``: approves the Azure event (``StartRequests``) as soon as it sees it,
  then saves: the platform ends the VM before the save (breaks ``approved_after_save``, and
  ``saved_before_deadline``).
- ``hangs_without_timeout``: GCP's hanging GET with neither ``timeout_sec`` nor a client
  timeout, as in Google's own ``wait_for_change`` example; a silently dropped connection
  blinds it for good (breaks ``client_timeout`` and ``polls_within_lead``).
- ``polls_between_checkpoints``: asks for the spot notice only once per checkpoint interval,
  the "check between epochs" pattern; a whole two-minute notice fits between two polls (breaks
  ``polls_within_lead``).
- ``deadline_from_poll``: counts the two minutes from when it saw the notice, not from the
  notice's ``time``; seen late (the metadata service was failing) it believes it has more time
  than it has (breaks ``true_deadline``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from harness.examples.broken import _target
from harness.runtime.monitor.aws import (
    INSTANCE_ACTION,
    SPOT_NOTICE_LEAD,
    AwsImdsSource,
    parse_notice,
)
from harness.runtime.monitor.core import InterruptionNotice, Monitor, NoticeSource
from harness.runtime.monitor.gcp import HEADERS, PREEMPTED, GcpPreemptionSource
from harness.runtime.monitor.http import HttpSession, Unreachable, new_session, request
from harness.runtime.runtime import Runtime
from harness.target import InstanceContext

__all__ = [
    "BROKEN_PROTOCOL",
    "approves_before_save",
    "deadline_from_poll",
    "hangs_without_timeout",
    "never_renews_token",
    "polls_between_checkpoints",
    "stops_on_rebalance",
]


def _replace_source(
    runtime: Runtime, kind: type[NoticeSource], make: Callable[[str], NoticeSource]
) -> list[NoticeSource]:
    """The runtime's notice sources with each of class ``kind`` replaced by ``make(base_url)``."""
    return [
        make(runtime.ctx.imds_url) if isinstance(source, kind) else source
        for source in Runtime.notice_sources(runtime)
    ]


# -- stops_on_rebalance ---------------------------------------------------------------------------


class _StopsOnRebalance(Runtime):
    """Treats a rebalance recommendation as an interruption: emergency save, then stop."""

    async def _should_stop(self) -> bool:
        advisory = self.monitor.take_rebalance()
        if advisory is not None:
            await self._emergency(replace(advisory, effect="terminate", deadline=None))
            return True
        return await super()._should_stop()


# -- never_renews_token ---------------------------------------------------------------------------


class StaleTokenSource(AwsImdsSource):
    """Fetches a token once and never again, whatever its TTL or a 401 says."""

    async def _auth_headers(
        self, session: HttpSession, monitor: Monitor, *, fresh: bool
    ) -> dict[str, str]:
        if self._token is None:
            await self._fetch_token(session, monitor)
        return {"X-aws-ec2-metadata-token": self._token} if self._token else {}


class _NeverRenewsToken(Runtime):
    def notice_sources(self) -> list[NoticeSource]:
        return _replace_source(self, AwsImdsSource, StaleTokenSource)


# -- approves_before_save -------------------------------------------------------------------------


class _ApprovesBeforeSave(Runtime):
    """Approves the Azure event first ("we are ready"), then saves."""

    async def _emergency(self, notice: InterruptionNotice) -> None:
        await self.monitor.acknowledge()
        await super()._emergency(notice)


# -- hangs_without_timeout ------------------------------------------------------------------------

#: A year: a request that nothing else ends waits this long (no timeout to speak of).
NO_TIMEOUT = 365 * 86400.0


class UnboundedWaitSource(GcpPreemptionSource):
    """``wait_for_change`` with no ``timeout_sec`` and no client timeout."""

    async def run(self, monitor: Monitor) -> None:
        etag: str | None = None
        async with new_session() as session:
            while True:
                url = self.base_url + PREEMPTED
                if etag is not None:
                    url += f"?wait_for_change=true&last_etag={etag}"
                try:
                    reply = await request(session, "GET", url, headers=HEADERS, timeout=NO_TIMEOUT)
                except Unreachable:
                    await monitor.clock.sleep(1.0)
                    continue
                etag = reply.headers.get("ETag") or etag or "0"
                if reply.status == 200 and reply.text.strip().upper() == "TRUE":
                    monitor.report(
                        InterruptionNotice(
                            source=self.name,
                            effect="terminate",
                            deadline=monitor.clock.monotonic() + monitor.config.gcp_grace,
                            ident=f"preempted/{etag}",
                        )
                    )


class _HangsWithoutTimeout(Runtime):
    def notice_sources(self) -> list[NoticeSource]:
        return _replace_source(self, GcpPreemptionSource, UnboundedWaitSource)


# -- polls_between_checkpoints --------------------------------------------------------------------


class BetweenCheckpointsSource(AwsImdsSource):
    """Asks for the spot notice once per ``every`` seconds (the checkpoint interval)."""

    def __init__(self, base_url: str, every: float) -> None:
        super().__init__(base_url)
        self.every = every

    async def run(self, monitor: Monitor) -> None:
        async with new_session() as session:
            while True:
                answer = await self._poll(session, monitor, INSTANCE_ACTION)
                if answer is not None and answer.status == 200:
                    self._report(monitor, parse_notice(INSTANCE_ACTION, answer.body, monitor))
                await monitor.clock.sleep(self.every)


class _PollsBetweenCheckpoints(Runtime):
    def notice_sources(self) -> list[NoticeSource]:
        every = self.spec.checkpoint_every
        return _replace_source(
            self, AwsImdsSource, lambda url: BetweenCheckpointsSource(url, every)
        )


# -- deadline_from_poll ---------------------------------------------------------------------------


class CountsFromPollSource(AwsImdsSource):
    """Takes the deadline to be two minutes after the poll that saw the notice."""

    @staticmethod
    def _report(monitor: Monitor, notice: InterruptionNotice | None) -> None:
        if notice is not None and notice.urgent:
            notice = replace(notice, deadline=monitor.clock.monotonic() + SPOT_NOTICE_LEAD)
        AwsImdsSource._report(monitor, notice)


class _DeadlineFromPoll(Runtime):
    def notice_sources(self) -> list[NoticeSource]:
        return _replace_source(self, AwsImdsSource, CountsFromPollSource)


# -- targets --------------------------------------------------------------------------------------

stops_on_rebalance = _target(_StopsOnRebalance)
never_renews_token = _target(_NeverRenewsToken)
approves_before_save = _target(_ApprovesBeforeSave)
hangs_without_timeout = _target(_HangsWithoutTimeout)
polls_between_checkpoints = _target(_PollsBetweenCheckpoints)
deadline_from_poll = _target(_DeadlineFromPoll)

#: name -> (target, the check it breaks)
BROKEN_PROTOCOL: Mapping[str, tuple[Callable[[InstanceContext], Awaitable[None]], str]] = {
    "stops_on_rebalance": (stops_on_rebalance, "works_through_advisory"),
    "never_renews_token": (never_renews_token, "token_renewed"),
    "approves_before_save": (approves_before_save, "approved_after_save"),
    "hangs_without_timeout": (hangs_without_timeout, "client_timeout"),
    "polls_between_checkpoints": (polls_between_checkpoints, "polls_within_lead"),
    "deadline_from_poll": (deadline_from_poll, "true_deadline"),
}
