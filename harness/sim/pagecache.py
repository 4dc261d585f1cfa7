"""What a lost host takes with it from a kept local disk: whatever was never fsynced.

A process crash keeps everything the OS already has: a write is in the page cache, a rename is
in the directory, both visible to the next process even before any fsync. A host that loses
power keeps only what was flushed: file data written but not fsynced is gone (the file is left
empty), and a rename whose directory was not fsynced may or may not have reached the disk. The
harness picks one of those two outcomes from the run's seed, so both are exercised across seeds
and every check must accept either.

Tracked from the persistence steps of the bundled local-disk helper (the only file I/O the
harness sees step by step): ``local.write`` and ``local.fsync`` of a file, then ``local.rename``
over its final name and ``local.fsync_dir``. Deletes are taken as durable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@dataclass
class PageCache:
    """The unsynced state of one machine's local dir since it booted."""

    root: Path
    #: Files whose data is written but not fsynced (relative names).
    dirty: set[str] = field(default_factory=set)
    #: Final names renamed over but not yet made durable by a directory fsync -> the content
    #: the name held before (``None``: it did not exist).
    renamed: dict[str, bytes | None] = field(default_factory=dict)

    def note(self, op: str, key: str | None) -> None:
        """Called just before the step ``op`` on ``key`` takes effect."""
        if not key:
            return
        if op == "local.write":
            self.dirty.add(key)
        elif op == "local.fsync":
            self.dirty.discard(key)
        elif op == "local.rename":
            if key not in self.renamed:
                old = self.root / key
                self.renamed[key] = old.read_bytes() if old.is_file() else None
            temp = key + TEMP_SUFFIX
            if temp in self.dirty:  # the name now points to data that was never flushed
                self.dirty.discard(temp)
                self.dirty.add(key)
        elif op == "local.fsync_dir":
            self.renamed.pop(key, None)

    def lose(self, chooser: random.Random) -> dict[str, str]:
        """The host lost power: undo what was never flushed; returns ``{name: what happened}``."""
        outcome: dict[str, str] = {}
        for name in sorted(self.renamed):
            if chooser.random() < 0.5:
                outcome[name] = "rename survived"
                continue
            before = self.renamed[name]
            path = self.root / name
            if before is None:
                path.unlink(missing_ok=True)
                outcome[name] = "rename lost: the name is gone"
            else:
                path.write_bytes(before)
                outcome[name] = "rename lost: the name holds its previous content"
            self.dirty.discard(name)
        for name in sorted(self.dirty):
            path = self.root / name
            if path.is_file():
                path.write_bytes(b"")
                outcome[name] = "unsynced data lost: the file is empty"
        self.dirty.clear()
        self.renamed.clear()
        return outcome
