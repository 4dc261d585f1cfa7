"""The interruption monitor: one object the job consults, fed by small per-source adapters.

Adapters (AWS IMDSv2, GCP, Azure, webhook, signals) run as background tasks and never block the
job. They report notices with :meth:`Monitor.report` and their reachability with
:meth:`Monitor.blind` / :meth:`Monitor.sighted`; the monitor de-duplicates, records events and
wakes the job. An urgent notice means "save now and stop"; a non-urgent one (a rebalance
recommendation) means "checkpoint soon".
"""

from harness.runtime.monitor.core import InterruptionNotice, Monitor, NoticeSource, build_sources

__all__ = ["InterruptionNotice", "Monitor", "NoticeSource", "build_sources"]
