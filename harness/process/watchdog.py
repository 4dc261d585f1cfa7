"""The watchdog: kills every process group of a run when the harness itself dies.

The harness starts one watchdog per run (``python -m harness.process.watchdog``) with a pipe on
its stdin, and writes ``+PGID`` when it starts a process group and ``-PGID`` once it has reaped
it. The watchdog waits for the end of that pipe: the kernel closes it however the harness ends
(a clean exit, an exception, SIGKILL, an out-of-memory kill), and then every group still
registered gets SIGKILL. So no target, shell child or redis-server outlives the harness.

It ignores SIGINT (a Ctrl-C in the terminal reaches the whole foreground group, the watchdog
included, and it must outlive the harness to clean up after it) and treats SIGTERM as the end
of the pipe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterable


def _kill_all(groups: set[int]) -> None:
    for pgid in sorted(groups):
        # SIGCONT too: a group frozen with SIGSTOP dies only once thawed.
        for signum in (signal.SIGKILL, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum)


def apply(groups: set[int], line: str) -> None:
    """Register (``+PGID``) or release (``-PGID``) a group; other lines are ignored."""
    text = line.strip()
    if len(text) < 2 or not text[1:].isdigit():
        return
    if text[0] == "+":
        groups.add(int(text[1:]))
    elif text[0] == "-":
        groups.discard(int(text[1:]))


def watch(lines: Iterable[str], groups: set[int]) -> None:
    """Follow ``lines`` to their end, then kill the groups still registered."""
    for line in lines:
        apply(groups, line)
    _kill_all(groups)


def main() -> int:
    groups: set[int] = set()

    def on_term(_signum: int, _frame: object) -> None:
        _kill_all(groups)
        os._exit(0)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    watch(sys.stdin, groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
