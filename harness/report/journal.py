"""The run journal: a JSON file rewritten atomically after every run, so it is always whole.

Each update goes to a temporary file in the same directory, is flushed and fsynced, then renamed
over the journal: a reader (or a crash) sees either the previous complete journal or the new
one, never half of one. A file that exists and is not a journal is never overwritten; an earlier
journal at the same path is replaced (``Journal.replaced`` says so, for the command to tell).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import InputError

FORMAT = "spot-harness-journal/1"


class JournalError(InputError):
    """The journal path cannot be used; the message says why."""


class Journal:
    """Collects run records and keeps ``path`` up to date after each one."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.runs: list[dict[str, Any]] = []
        self.problems: list[str] = []
        #: Whether an earlier journal was at ``path`` (this one replaces it).
        self.replaced = _refuse_foreign(self.path)
        self.write()

    def add(self, record: dict[str, Any]) -> None:
        self.runs.append(record)
        self.write()

    def add_problems(self, problems: list[str]) -> None:
        self.problems.extend(problems)
        self.write()

    def document(self, *, finished: bool = False) -> dict[str, Any]:
        return journal_document(self.runs, self.problems, self.meta, finished=finished)

    def write(self, *, finished: bool = False) -> None:
        write_atomic(self.path, json.dumps(self.document(finished=finished), indent=1) + "\n")

    def finish(self) -> None:
        self.write(finished=True)


def journal_document(
    runs: list[dict[str, Any]],
    problems: list[str],
    meta: dict[str, Any],
    *,
    finished: bool,
) -> dict[str, Any]:
    """A journal's JSON document: its runs, its problems and a count per status."""
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    return {
        "format": FORMAT,
        "finished": finished,
        **meta,
        "summary": {"runs": len(runs), **dict(sorted(statuses.items()))},
        "problems": problems,
        "runs": runs,
    }


def load_journal(path: Path) -> dict[str, Any]:
    """Read a journal written by ``--journal`` (or the pytest plugin); JournalError says what
    is wrong with a file that is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JournalError(
            f"{path} does not exist; write one with `harness run ... --journal {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise JournalError(f"cannot read {path}: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise JournalError(
            f"{path}:{error.lineno}:{error.colno}: not JSON ({error.msg}); is it a journal?"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise JournalError(
            f'{path} is not a harness journal (no "format": "{FORMAT}"); '
            "write one with `harness run ... --journal FILE`"
        )
    if not isinstance(document.get("runs"), list):
        raise JournalError(f"{path}: `runs` must be a list of runs")
    return document


def _refuse_foreign(path: Path) -> bool:
    """Raise unless ``path`` is free or holds an earlier journal; True in the latter case."""
    if path.is_dir():
        raise JournalError(f"{path} is a directory; give a file name such as journal.json")
    if not path.exists():
        if not path.parent.is_dir():
            raise JournalError(f"{path.parent} does not exist; create it or choose another path")
        return False
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        existing = None
    if not isinstance(existing, dict) or existing.get("format") != FORMAT:
        raise JournalError(
            f"{path} exists and is not a harness journal; refusing to overwrite it "
            "(choose another path or remove the file)"
        )
    return True


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (temp file in the same dir, fsynced)."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
