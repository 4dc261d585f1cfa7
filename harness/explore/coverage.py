"""Coverage of the target's own code while explored schedules run, and the score that steers
the search towards code no schedule has reached yet.

:class:`ArcRecorder` records, during one run, which arcs (line to line transitions, as
coverage.py counts them) the code of a :class:`Scope` took: the reference runtime
(``harness/runtime``) or a Python target's package. It is a ``sys.settrace`` tracer whose global
function answers ``None`` for every frame outside the scope, so the rest of the run (the
simulator, moto, the checks' own code) gets no line events. :class:`CoverageCampaign` keeps
the arcs every run of one exploration reached and turns each run into a Hypothesis ``target()``
score: the arcs it reached that no earlier run had. The score is a function of the run and of
the runs before it in the same process, so a derandomized or seeded search stays deterministic.
"""

from __future__ import annotations

import contextlib
import dis
import importlib.util
import inspect
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, TypeVar

from hypothesis import target

from harness.errors import InputError
from harness.sim.runner import golden_of
from harness.sim.targets import resolve_target

#: ``(from line, to line)``; a negative line is the entry to (or exit from) the code object
#: that starts at that line, as coverage.py writes it.
Arc = tuple[int, int]
#: file -> arcs taken in it.
Arcs = dict[str, set[Arc]]

T = TypeVar("T")

#: The ``target()`` label of the score: the run's rare arcs of the scope (see :data:`RARE`).
RARE_ARCS = "rare arcs of the target"
#: An arc is rare when at most one run in RARE reached it, the run scored included.
RARE = 20

Tracer = Callable[[FrameType, str, Any], Any]

_RESUME = dis.opmap["RESUME"]
_OPTIMIZED = inspect.CO_OPTIMIZED  # a function's code object (not a module's or a class body's)


@dataclass(frozen=True)
class Scope:
    """The code whose coverage is recorded: files and folders (every ``.py`` below them)."""

    roots: tuple[Path, ...]

    def contains(self, filename: str) -> bool:
        path = Path(filename)
        return any(path == root or root in path.parents for root in self.roots)

    def files(self) -> list[Path]:
        """Every Python file of the scope, sorted."""
        found: set[Path] = set()
        for root in self.roots:
            found.update([root] if root.is_file() else root.rglob("*.py"))
        return sorted(found)

    def label(self) -> str:
        return ", ".join(_shown(root) for root in self.roots)


def _shown(path: Path) -> str:
    """``path`` relative to the nearest folder holding it among the working directory and the
    import path's entries: ``harness/runtime`` in a checkout and in an installed package alike
    (a virtualenv inside the working directory included)."""
    bases = [Path.cwd(), *(Path(entry).resolve() for entry in sys.path if entry)]
    holding = [base for base in bases if base in path.parents]
    if not holding:
        return str(path)
    return path.relative_to(max(holding, key=lambda base: len(base.parts))).as_posix()


def scope_for(target: Any, cover: Iterable[str] = ()) -> Scope:
    """The scope named by ``--cover`` (paths or importable packages / modules), else the target's
    own code: ``harness/runtime`` for the reference, the package of a Python target's module (the
    module's file when it is in no package)."""
    named = tuple(cover)
    if named:
        return Scope(tuple(dict.fromkeys(_resolve(text) for text in named)))
    if target == "reference":
        return Scope((_location("harness.runtime"),))
    module = str(target["python"]).partition(":")[0]
    package = module.rpartition(".")[0] or module
    try:
        return Scope((_location(package),))
    except InputError as error:
        raise InputError(f"the target's code to cover: {error}; name it with --cover") from None


def _resolve(text: str) -> Path:
    """A ``--cover`` value: an existing file or folder, else a dotted module or package name."""
    path = Path(text)
    if path.exists():
        if path.is_file() and path.suffix != ".py":
            raise InputError(f"--cover {text}: not a Python file (name a .py file or a folder)")
        return path.resolve()
    try:
        return _location(text)
    except InputError as error:
        raise InputError(
            f"--cover {text}: no such file or folder, and {error}; name a folder, a .py file or "
            "an importable package such as harness.runtime"
        ) from None


def _location(module: str) -> Path:
    """The folder of package ``module``, or the file of module ``module``."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:  # a parent package that fails to import
        raise InputError(f"{module!r} cannot be imported ({error})") from None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise InputError(f"{module!r} is no importable Python package or module")
    origin = Path(spec.origin).resolve()
    return origin.parent if spec.submodule_search_locations is not None else origin


class ArcRecorder:
    """Records the arcs of the scope's code taken while :meth:`recording` is active.

    Only the scope's functions get a local tracer; the global one returns None for any other
    frame (one dictionary lookup per call), and for the scope's module and class bodies too: a
    module imported on first use runs them once a process. Scope code that the harness runs to
    judge a run (the checks and the goldens compute expected states with the reference job's
    functions) is not the target running, so a scope frame called from :data:`JUDGING` is left
    untraced, with the scope frames it calls. The tracer in force before (a debugger,
    pytest-cov) is put back when recording ends; it misses what ran meanwhile."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._kinds: dict[str, int] = {}
        self._arcs: Arcs = {}

    @contextlib.contextmanager
    def recording(self) -> Iterator[Arcs]:
        """Record into a fresh ``file -> arcs`` mapping, returned when the block ends."""
        arcs: Arcs = {}
        self._arcs = arcs
        previous = sys.gettrace()
        sys.settrace(self._on_call)
        try:
            yield arcs
        finally:
            sys.settrace(previous)

    def _kind(self, filename: str) -> int:
        kind = self._kinds.get(filename)
        if kind is None:
            kind = self._kinds[filename] = (
                _SCOPE
                if self.scope.contains(filename)
                else _JUDGING
                if any(filename.startswith(prefix) for prefix in _judging_prefixes())
                else _ELSEWHERE
            )
        return kind

    def _on_call(self, frame: FrameType, event: str, arg: Any) -> Tracer | None:
        code = frame.f_code
        filename = code.co_filename
        if self._kind(filename) != _SCOPE or not code.co_flags & _OPTIMIZED:
            return None  # outside the scope, or a module imported (once a process) on first use
        caller = frame.f_back
        if caller is not None:
            called_from = self._kind(caller.f_code.co_filename)
            if called_from == _JUDGING or (called_from == _SCOPE and caller.f_trace is None):
                return None  # the harness judging, not the target running
        taken = self._arcs.get(filename)
        if taken is None:
            taken = self._arcs[filename] = set()
        # A new call enters at -first line; a resumed coroutine or generator goes on from the
        # line it stopped at (RESUME's argument is 0 only at the start of a call).
        started = code.co_code[frame.f_lasti + 1] == 0
        return _frame_tracer(taken, -code.co_firstlineno if started else frame.f_lineno)


_SCOPE, _JUDGING, _ELSEWHERE = 0, 1, 2

#: The harness's code that judges runs (checks, goldens): what it runs of the scope is no
#: behaviour of the target.
JUDGING = ("harness.checks", "harness.sim.golden")


@cache
def _judging_prefixes() -> tuple[str, ...]:
    """Path prefixes of :data:`JUDGING` (a folder with its separator, or a module's file)."""
    prefixes = []
    for module in JUDGING:
        location = _location(module)
        prefixes.append(str(location) + ("" if location.is_file() else os.sep))
    return tuple(prefixes)


def _frame_tracer(taken: set[Arc], last: int) -> Tracer:
    """The local tracer of one frame: each line event adds the arc from the line before."""

    def on_event(frame: FrameType, event: str, arg: Any) -> Tracer:
        nonlocal last
        if event == "line":
            line = frame.f_lineno
            taken.add((last, line))
            last = line
        elif event == "return" and _returns(frame):
            taken.add((last, -frame.f_code.co_firstlineno))
        return on_event

    return on_event


def _returns(frame: FrameType) -> bool:
    """A return event that leaves the frame for good, not a generator or coroutine suspending
    (which is followed by a RESUME)."""
    code = frame.f_code.co_code
    after = frame.f_lasti + 2
    return after >= len(code) or code[after] != _RESUME


def executable_lines(path: Path) -> frozenset[int]:
    """The lines of the functions in ``path`` (lines run at import time are not counted: the
    module was imported before any schedule ran)."""
    return _executable_lines(str(path))


@cache
def _executable_lines(filename: str) -> frozenset[int]:
    source = Path(filename).read_text(encoding="utf-8")
    lines: set[int] = set()
    pending = [compile(source, filename, "exec")]
    while pending:
        code = pending.pop()
        pending.extend(c for c in code.co_consts if isinstance(c, CodeType))
        if code.co_flags & _OPTIMIZED:
            lines.update(line for _, _, line in code.co_lines() if line is not None)
            lines.discard(code.co_firstlineno)  # the `def` line itself, run at import
    return frozenset(lines)


@dataclass
class CoverageCampaign:
    """The arcs every run of one exploration reached, and the score of each new run.

    The score is the number of the run's arcs that are rare: reached by at most one run in
    :data:`RARE` so far, this one included. An arc no run reached before is rare as soon as
    RARE runs have run (the first runs score nothing: everything they reach is new). Hypothesis'
    targeted phase keeps the best-scoring run per label and mutates it, keeping mutations that
    score higher, so the search climbs towards runs through code few runs went through; a
    count of new arcs instead would keep the first run for ever (everything it reached was new).

    ``steer``: feed Hypothesis ``target()`` with the score (else only record, for ``--stats``
    and ``--coverage-report``)."""

    scope: Scope
    steer: bool = True
    #: An arc is rare when at most one run in ``rare`` reached it.
    rare: int = RARE
    #: file -> arc -> how many runs reached it.
    seen: dict[str, dict[Arc, int]] = field(default_factory=dict)
    #: (run number, distinct arcs after it) for each run that reached an arc no run had.
    progress: list[tuple[int, int]] = field(default_factory=list)
    runs: int = 0
    #: What the last run told Hypothesis: ((label, score),) when steering, else nothing.
    last_scores: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        self.recorder = ArcRecorder(self.scope)
        # Caches filled before (by an earlier campaign in this process) would skip arcs the
        # campaign's runs take cold: each campaign starts with them empty, the scope's and the
        # judging code's (whose goldens call the scope's functions).
        clear_caches(self.scope)

    def measure(self, scenario: Any | None, run: Callable[[], T]) -> T:
        """``run()`` the schedule ``scenario`` while recording its arcs, count them and, when
        steering, tell Hypothesis the run's score (inside the property, once per example)."""
        if scenario is not None:
            _make_golden(scenario)
        with self.recorder.recording() as taken:
            outcome = run()
        score = self.add(taken)
        self.last_scores = ((RARE_ARCS, float(score)),) if self.steer else ()
        for label, value in self.last_scores:
            target(value, label=label)
        return outcome

    @property
    def arcs(self) -> int:
        return sum(len(taken) for taken in self.seen.values())

    def add(self, taken: Arcs) -> int:
        """Count one run's arcs into the campaign; returns its score (its rare arcs)."""
        self.runs += 1
        new = 0
        for filename, arcs in taken.items():
            counts = self.seen.setdefault(filename, {})
            for arc in arcs:
                before = counts.get(arc, 0)
                counts[arc] = before + 1
                new += before == 0
        if new:
            self.progress.append((self.runs, self.arcs))
        return sum(
            1
            for filename, arcs in taken.items()
            for arc in arcs
            if self.seen[filename][arc] * self.rare <= self.runs
        )

    def covered_lines(self) -> dict[str, set[int]]:
        """file -> lines some run executed (the ends of the arcs that are lines)."""
        return {
            filename: {line for arc in arcs for line in arc if line > 0}
            for filename, arcs in self.seen.items()
        }

    def stats(self) -> dict[str, Any]:
        """Lines and arcs reached, per file of the scope, as JSON (shards merge them)."""
        lines = self.covered_lines()
        files: dict[str, Any] = {}
        for path in self.scope.files():
            name = str(path)
            executable = executable_lines(path)
            files[_shown(path)] = {
                "executable": len(executable),
                "lines": sorted(lines.get(name, set()) & executable),
                "arcs": sorted([list(arc) for arc in self.seen.get(name, {})]),
            }
        return {"scope": self.scope.label(), "files": files, "progress": self.progress}


def clear_caches(scope: Scope) -> None:
    """Empty the ``functools`` caches of the scope's and :data:`JUDGING`'s imported modules."""
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if filename is None or not (
            scope.contains(filename) or filename.startswith(_judging_prefixes())
        ):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and hasattr(value, "__wrapped__"):
                clear()


def _make_golden(scenario: Any) -> None:
    """Make the golden of ``scenario``'s job before recording: goldens are cached for the
    process, so a run that made its own would reach arcs the same run with a cached golden does
    not, and the score would depend on what ran before in the process."""
    with contextlib.suppress(Exception):  # the run reports the same error itself
        golden_of(scenario, resolve_target(scenario.target))


def merge_coverage(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one shard's :meth:`CoverageCampaign.stats` into ``total``: the union of the lines
    and arcs reached. Each shard's progress is its own and is not merged."""
    total.setdefault("scope", part.get("scope"))
    files: dict[str, Any] = total.setdefault("files", {})
    for name, figures in part.get("files", {}).items():
        into = files.setdefault(
            name, {"executable": figures["executable"], "lines": [], "arcs": []}
        )
        into["lines"] = sorted({*into["lines"], *figures["lines"]})
        into["arcs"] = sorted({*map(tuple, into["arcs"]), *map(tuple, figures["arcs"])})


def coverage_text(stats: dict[str, Any]) -> list[str]:
    """The lines ``--stats`` prints: lines and arcs of the scope reached, and the first run
    reaching each new count of distinct arcs (nothing when coverage was not recorded)."""
    if not stats:
        return []
    files = stats.get("files", {})
    executable = sum(f["executable"] for f in files.values())
    lines = sum(len(f["lines"]) for f in files.values())
    arcs = sum(len(f["arcs"]) for f in files.values())
    share = lines / executable if executable else 0.0
    text = [
        f"target coverage ({stats.get('scope', '?')}): {lines} of {executable} lines in "
        f"functions ({share:.0%}), {arcs} distinct arcs"
    ]
    progress = stats.get("progress")
    if progress:
        # Non-breaking spaces inside each step, so that no line ends in "run 41:".
        steps = ", ".join(f"run\u00a0{run}:\u00a0{count}" for run, count in progress)
        text.append("distinct arcs, at each run that reached new ones:")
        wrapped = textwrap.wrap(steps, 96, initial_indent="  ", subsequent_indent="  ")
        text.extend(line.replace("\u00a0", " ") for line in wrapped)
    return text


def check_report_path(path: Path) -> None:
    """Refuse a ``--coverage-report`` path now, before any schedule runs."""
    if path.is_dir():
        raise InputError(f"--coverage-report {path}: a folder; name a file, e.g. uncovered.txt")
    if path.exists():
        raise InputError(f"--coverage-report {path}: the file exists; name a new one")
    if not path.parent.is_dir():
        raise InputError(f"--coverage-report {path}: the folder {path.parent} does not exist")


def write_report(path: Path, stats: dict[str, Any], runs: int) -> None:
    """Write the lines of the scope no run executed, file by file with their text, to a new
    file ``path`` (never over an existing one)."""
    files = stats.get("files", {})
    missing = {name: _uncovered(name, figures) for name, figures in sorted(files.items())}
    total = sum(f["executable"] for f in files.values())
    text = [
        f"# Lines in functions of {stats.get('scope', '?')} that no explored run executed: "
        f"{sum(map(len, missing.values()))} of {total}, after {runs} runs (harness explore)",
    ]
    for name, lines in missing.items():
        if not lines:
            continue
        text.append(f"\n{name}: {len(lines)} of {files[name]['executable']} lines not run")
        source = _source_lines(name)
        text.extend(f"{line:6}  {source.get(line, '').strip()}" for line in lines)
    with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite
        handle.write("\n".join(text) + "\n")


def _uncovered(name: str, figures: dict[str, Any]) -> list[int]:
    path = _path_of(name)
    lines = executable_lines(path) if path.is_file() else frozenset()
    return sorted(lines - set(figures["lines"]))


def _path_of(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else Path.cwd() / path


def _source_lines(name: str) -> dict[int, str]:
    try:
        text = _path_of(name).read_text(encoding="utf-8")
    except OSError:
        return {}
    return dict(enumerate(text.splitlines(), start=1))


#: What an exploration does with coverage: nothing, record it (for the figures), or steer by it.
MODES = ("off", "record", "steer")


def campaign_for(target: Any, cover: Iterable[str], mode: str) -> CoverageCampaign | None:
    """The coverage campaign of one exploration of ``target`` (None for ``off``)."""
    if mode not in MODES:
        raise InputError(f"coverage mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "off":
        return None
    return CoverageCampaign(scope_for(target, cover), steer=mode == "steer")
