"""Property-based exploration of interruption schedules (``harness explore``).

Public API::

    report = explore(examples=50, seed=1, target={"python": "pkg.mod:factory"}, out=Path("out"))
    report.failure.path, report.failure.command     # the smallest failing schedule, and its replay
"""

from harness.explore.search import ExploreReport, Reproduction, ScheduleFailed, explore, to_scenario
from harness.explore.strategies import INVARIANTS, JOB, schedules

__all__ = [
    "INVARIANTS",
    "JOB",
    "ExploreReport",
    "Reproduction",
    "ScheduleFailed",
    "explore",
    "schedules",
    "to_scenario",
]
