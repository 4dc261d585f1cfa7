"""The documented range of every duration, size, count and rate a user can give.

One table, read by the scenario model, the control API and the CLI, so the same value is
refused everywhere with the same message: the field, the value and the range, e.g.
``lead = 99999999999h is out of range: expected 0s to 1d``. The ranges are wide enough for any
real story (a month of simulated time, a notice at most a day ahead, a million items) and
narrow enough that nothing downstream overflows a calendar date or a float, or runs for hours.
See docs/scenarios.md ("Bounds") for the table in prose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from harness.units import format_duration

Unit = Literal["duration", "size", "count", "bandwidth"]

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
#: The longest simulated time anything may span: a run's budget, a fault, a timeline's ``at``.
MONTH = 31 * DAY


class BoundError(ValueError):
    """A value outside its documented range; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Bound:
    """The closed range ``low..high`` of one field, in seconds, bytes, items or bytes/s."""

    low: float
    high: float
    unit: Unit = "duration"

    def describe(self) -> str:
        return f"{self.show(self.low)} to {self.show(self.high)}"

    def show(self, value: float) -> str:
        if self.unit == "duration":
            return ("-" if value < 0 else "") + format_days(abs(value))
        if self.unit == "size":
            return _size(value)
        if self.unit == "bandwidth":
            return _size(value) + "/s"
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:g}"

    def _shown(self, value: float) -> str:
        if self.unit == "count" or not math.isfinite(value):
            return _plain(value)
        return self.show(value)

    def check(self, field: str, value: float, given: object = None) -> float:
        """``value`` if within the range, else :class:`BoundError` (``given``: as written)."""
        if not (math.isfinite(value) and self.low <= value <= self.high):
            shown = given if isinstance(given, str) else self._shown(value)
            raise BoundError(
                field, f"{field} = {shown} is out of range: expected {self.describe()}"
            )
        return value


def format_days(seconds: float) -> str:
    """``31d``, ``1d12h``, ``2m``: days where there are any (format_duration stops at hours)."""
    days, rest = divmod(seconds, DAY)
    if not days:
        return format_duration(rest)
    return f"{days:.0f}d" + (format_duration(rest) if rest else "")


def _plain(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"{value:.3e}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _size(value: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:g}{unit}"
    return f"{value:g}B"


#: field name -> its range. Names are those users write (YAML keys, body fields, flags).
BOUNDS: dict[str, Bound] = {
    # notices: a notice comes at most a day ahead; AWS schedules maintenance weeks ahead
    "lead": Bound(0, DAY),
    "grace": Bound(0, DAY),
    "scheduled_lead": Bound(0, MONTH),
    "window": Bound(0, 7 * DAY),
    "rebalance_before": Bound(0, DAY),
    "shutdown": Bound(0, 30),
    # when things happen and how long they last
    "at": Bound(0, MONTH),
    "delay": Bound(0, MONTH),
    "for": Bound(0, MONTH),
    "budget": Bound(1, MONTH),
    "max_sim_time": Bound(1, MONTH),
    "skew": Bound(-DAY, DAY),
    "latency": Bound(0, HOUR),
    "fsync": Bound(0, HOUR),
    # the job
    "items": Bound(1, 10_000_000, "count"),
    "seconds_per_item": Bound(0.001, DAY),
    "checkpoint_every": Bound(1, MONTH),
    "state_size": Bound(0, 2**40, "size"),
    "output_size": Bound(0, 2**30, "size"),
    "output_every": Bound(1, 10_000_000, "count"),
    # counts and rates
    "seed": Bound(0, 2**63 - 1, "count"),
    "nth": Bound(1, 1_000_000, "count"),
    "count": Bound(1, 1_000_000, "count"),
    "incarnation": Bound(1, 10_000, "count"),
    "max_instances": Bound(1, 10_000, "count"),
    "throttle": Bound(1, 1_000_000, "count"),
    "limit": Bound(1, 1_000_000, "count"),
    "timeline": Bound(0, 1_000, "count"),
    "request_log_limit": Bound(1, 10_000_000, "count"),
    "bandwidth": Bound(1, 10**12, "bandwidth"),
}


def check(field: str, value: float, given: object = None, *, bound: str | None = None) -> float:
    """Check ``value`` of ``field`` against ``BOUNDS[bound or field]`` (a duration without an
    entry of its own spans at most a month, like ``for``)."""
    return BOUNDS.get(bound or field, BOUNDS["for"]).check(field, value, given)


#: Default and ceiling of the simulated time a run may cover (``--max-sim-time`` raises it).
DEFAULT_MAX_SIM_TIME = 7 * DAY
#: The most that ``--max-sim-time`` may allow.
MAX_SIM_TIME_CEILING = MONTH
#: The most simulated work (items, output objects and checkpoints, weighted by what each costs
#: in real time) a run may plan: about ten seconds on one core. Past this the run would take
#: minutes whatever its simulated span.
MAX_SIM_OPERATIONS = 4_000_000
