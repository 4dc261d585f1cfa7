"""Optional Prometheus metrics, derived from the runtime's own events (text exposition format).

Served by ``harness runtime run`` when ``metrics_port`` is set (loopback unless told otherwise).
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from harness.history import Kind


class RuntimeMetrics:
    """Counters and summaries fed by :meth:`observe` with every emitted event."""

    def __init__(self, time: Callable[[], float], seconds_per_item: float) -> None:
        self._time = time
        self._seconds_per_item = seconds_per_item
        self._started: dict[str, float] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_count: dict[str, int] = defaultdict(int)
        self.notices: dict[str, int] = defaultdict(int)
        self.counters: dict[str, int] = defaultdict(int)
        self.position = 0
        self.lost_work_seconds = 0.0

    def observe(self, kind: str, data: Mapping[str, Any]) -> None:
        now = self._time()
        if kind == Kind.CHECKPOINT_STARTED:
            self._started[str(data["checkpoint_id"])] = now
        elif kind == Kind.CHECKPOINT_DURABLE:
            started = self._started.get(str(data["checkpoint_id"]))
            if started is not None:
                tier = str(data["tier"])
                self.latency_sum[tier] += now - started
                self.latency_count[tier] += 1
        elif kind == Kind.NOTICE_SEEN:
            self.notices[str(data["source"])] += 1
        elif kind == Kind.ITEM_DONE:
            self.position = int(data["position"])
        elif kind == Kind.JOB_STOPPED:
            saved = data.get("saved_position")
            if saved is not None:
                unsaved = max(0, int(data["position"]) - int(saved))
                self.lost_work_seconds += unsaved * self._seconds_per_item
        self.counters[kind] += 1

    def render(self) -> str:
        lines = [
            "# HELP spot_harness_checkpoint_latency_seconds From checkpoint start to durable.",
            "# TYPE spot_harness_checkpoint_latency_seconds summary",
        ]
        for tier in sorted(self.latency_count):
            lines.append(
                f'spot_harness_checkpoint_latency_seconds_sum{{tier="{tier}"}} '
                f"{self.latency_sum[tier]:.6f}"
            )
            lines.append(
                f'spot_harness_checkpoint_latency_seconds_count{{tier="{tier}"}} '
                f"{self.latency_count[tier]}"
            )
        lines += [
            "# HELP spot_harness_notices_seen_total Interruption notices seen, per source.",
            "# TYPE spot_harness_notices_seen_total counter",
            *(
                f'spot_harness_notices_seen_total{{source="{source}"}} {count}'
                for source, count in sorted(self.notices.items())
            ),
            "# HELP spot_harness_lost_work_seconds Work done but not saved when the job stopped.",
            "# TYPE spot_harness_lost_work_seconds counter",
            f"spot_harness_lost_work_seconds {self.lost_work_seconds:.3f}",
            "# HELP spot_harness_position Items done so far.",
            "# TYPE spot_harness_position gauge",
            f"spot_harness_position {self.position}",
            "# HELP spot_harness_events_total Events reported, per kind.",
            "# TYPE spot_harness_events_total counter",
            *(
                f'spot_harness_events_total{{kind="{kind}"}} {count}'
                for kind, count in sorted(self.counters.items())
            ),
        ]
        return "\n".join(lines) + "\n"


async def serve_metrics(
    metrics: RuntimeMetrics, host: str, port: int, *, token: str | None = None
) -> web.AppRunner:
    """Start ``GET /metrics``; returns the runner (its ``addresses`` give the bound port).

    With a ``token``, a scrape must carry ``Authorization: Bearer <token>`` (401 otherwise).
    """
    expected = f"Bearer {token}".encode() if token else None

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            return web.Response(status=401, text="a bearer token is required\n")
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
