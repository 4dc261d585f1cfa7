"""Known bad: the spot notice is polled with plain IMDSv1 GETs, as a ``requests``-style loop
copied from an old blog post does.

``GET /latest/meta-data/spot/instance-action`` with no session token. On an instance where
IMDSv2 is required every answer is ``401 Unauthorized``, which the loop reads as "no notice"
(anything but 200 is). The notice is never seen, nothing is saved before the terminate, and
the work since the last periodic checkpoint is lost. Caught by ``saved_before_deadline`` (and
``detects_notice``); the ``imds.request`` events show the 401s the metadata plane served.
Scenario: ``scenarios/known_bad/imdsv1_poller.yaml``.
"""

from __future__ import annotations

from datetime import datetime

import aiohttp

from harness.examples.handlers.basic import Handler, handler_target
from harness.examples.handlers.notices import SPOT, Notice, NoticeWatcher

POLL_EVERY = 5.0


class Imdsv1Watcher(NoticeWatcher):
    """Polls the AWS notice path without a token; a 401 counts as "no notice"."""

    async def watch_aws(self) -> None:
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    async with http.get(self.ctx.imds_url + SPOT) as reply:
                        if reply.status == 200:  # the mistake: 401 is taken for "no notice"
                            notice = await reply.json(content_type=None)
                            when = datetime.strptime(notice["time"], "%Y-%m-%dT%H:%M:%S%z")
                            deadline = self.deadline_of(when)
                            self.report(Notice("aws", notice["action"], deadline, notice["time"]))
                except aiohttp.ClientError:
                    pass
                await self.ctx.clock.sleep(POLL_EVERY)


class Imdsv1Poller(Handler):
    """Checkpoints correctly, but watches for notices with IMDSv1 only."""

    def make_watcher(self) -> NoticeWatcher:
        return Imdsv1Watcher(self.ctx)


target = handler_target(Imdsv1Poller)
