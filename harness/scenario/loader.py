"""Load scenario YAML into :class:`~harness.scenario.model.Scenario`, keeping source positions.

PyYAML's composer gives a node tree with marks; we turn it into plain data ourselves so that
every key and value keeps its ``file:line:col``. Validation errors (pydantic's, and the semantic
rules of :func:`~harness.scenario.model.semantic_problems`) are mapped back to those positions and
reported all at once, each saying what is wrong and how to fix it, never as a traceback.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.errors import InputError, did_you_mean
from harness.scenario import library
from harness.scenario.model import (
    CLOUDS,
    Cloud,
    Loc,
    Scenario,
    TimelineEntry,
    entry_problems,
    semantic_problems,
)

SCENARIO_SUFFIXES = (".yaml", ".yml")
#: Limits on what a scenario file may hold, so that no file can exhaust memory or time: its
#: size, the values it expands to once aliases are followed, the aliases it uses, its nesting.
MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_ALIASES = 1_000
MAX_DEPTH = 64


@dataclass(frozen=True, order=True)
class Mark:
    """A position in a file, 1-based as editors show it."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file, where it is, and (in the message) how to fix it."""

    mark: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


class ScenarioError(InputError):
    """A file (or several) that is not a valid scenario; holds every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.mark)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a document came from."""

    values: dict[Loc, Mark] = field(default_factory=dict)
    keys: dict[Loc, Mark] = field(default_factory=dict)

    def find(self, loc: Loc, *, key: bool = False) -> Mark:
        """The mark of ``loc``, or of its closest known ancestor."""
        if key and loc in self.keys:
            return self.keys[loc]
        known: Loc = ()
        for part in loc:  # skip parts that are not in the source (pydantic union tags)
            if (*known, part) in self.values:
                known = (*known, part)
        return self.values[known]


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from."""

    scenario: Scenario
    file: Path
    document: int  # 0-based index of the YAML document in the file
    documents: int  # how many scenario documents the file holds
    source: SourceMap

    @property
    def name(self) -> str:
        """Short test name: the file stem, plus the document number in a multi-document file."""
        stem = self.file.stem
        return stem if self.documents == 1 else f"{stem}[{self.document + 1}]"

    @property
    def line(self) -> int:
        return self.source.values[()].line

    def mark(self, loc: Loc) -> Mark:
        return self.source.find(loc)


# -- YAML to plain data with marks ----------------------------------------------------------------


class _Expansion:
    """Measures a composed document before it is built: PyYAML shares an anchored node between
    its aliases, so a few hundred bytes of nested anchors ("billion laughs") would build into
    billions of values. Counted once per node (memoized), so measuring costs the file's size."""

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.sizes: dict[int, int] = {}
        self.aliases = 0
        self._open: set[int] = set()

    def size(self, node: yaml.Node, depth: int = 0) -> int:
        key = id(node)
        if key in self.sizes:
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                self._refuse(node, f"more than {MAX_ALIASES:,} aliases")
            return self.sizes[key]
        if key in self._open:
            message = "an alias refers to the anchor it is inside (a value containing itself)"
            raise ScenarioError([Problem(self.builder.mark(node), message + "; remove it")])
        if depth > MAX_DEPTH:
            self._refuse(node, f"values nested more than {MAX_DEPTH} deep")
        self._open.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(self.size(item, depth + 1) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(self.size(k, depth + 1) + self.size(v, depth + 1) for k, v in node.value)
        self._open.discard(key)
        self.sizes[key] = total
        if total > MAX_NODES:
            self._refuse(node, f"more than {MAX_NODES:,} values once its aliases are expanded")
        return total

    def _refuse(self, node: yaml.Node, what: str) -> None:
        message = f"the document holds {what}; a scenario needs far fewer, remove or flatten them"
        raise ScenarioError([Problem(self.builder.mark(node), message)])


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.source = SourceMap()
        self.problems: list[Problem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def mark(self, node: yaml.Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.source.values[loc] = self.mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            self.problems.append(Problem(self.mark(node), f"bad value: {error}"))
            return None

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        self._scalars.flatten_mapping(node)  # YAML merge keys (<<: *defaults)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            # Keys are names: YAML 1.1 would read `on:` as the boolean true.
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                message = f"keys must be names, got {key!r}; quote it if it is meant as text"
                self.problems.append(Problem(self.mark(key_node), message))
                continue
            if key in out:
                first = self.source.keys[(*loc, key)]
                message = f"duplicate key `{key}` (first at line {first.line}); keep one"
                self.problems.append(Problem(self.mark(key_node), message))
                continue
            self.source.keys[(*loc, key)] = self.mark(key_node)
            out[key] = self.build(value_node, (*loc, key))
        return out


# -- validation errors to problems ---------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """The model class (or container) behind ``Annotated``/``Optional``/unions."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        else:
            return annotation


def _model_at(loc: Loc) -> type[BaseModel] | None:
    current: Any = Scenario
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            if not args:
                return None
            current = args[0]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fields = {_field_keys(name, info)[0]: info for name, info in current.model_fields.items()}
        if part not in fields:
            return None
        current = fields[part].annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_keys(name: str, info: Any) -> list[str]:
    if isinstance(info.validation_alias, AliasChoices):
        return [str(choice) for choice in info.validation_alias.choices]
    return [info.alias or name]


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [key for name, info in model.model_fields.items() for key in _field_keys(name, info)]


def _where(loc: Loc) -> str:
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return "the scenario"
    if isinstance(loc[-1], int) and names[-1] == "timeline":
        return "a timeline entry"
    return f"`{names[-1]}`"


def _problem_from_error(error: ErrorDetails, source: SourceMap) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        allowed = _allowed_keys(model) if model else []
        hint = did_you_mean(key, allowed) or (f"; allowed: {', '.join(allowed)}" if allowed else "")
        return Problem(
            source.find(loc, key=True), f"unknown key `{key}` in {_where(loc[:-1])}{hint}"
        )
    if kind == "missing":
        return Problem(source.find(loc[:-1]), f"{_where(loc[:-1])} needs `{loc[-1]}`")
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        choices = [c.strip(" '") for c in expected.replace(" or ", ", ").split(",")]
        value = error["input"]
        hint = did_you_mean(str(value), choices)
        message = f"`{loc[-1]}` cannot be `{value}`, expected one of: {', '.join(choices)}{hint}"
        return Problem(source.find(loc), message)
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind not in ("value_error", "assertion_error") and loc:
        message = f"`{loc[-1]}`: {message[:1].lower()}{message[1:]} (got {error['input']!r})"
    return Problem(source.find(loc), message)


# -- public API -----------------------------------------------------------------------------------


def _documents(text: str, file: str) -> Iterator[yaml.Node]:
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is not None and not (isinstance(node, yaml.ScalarNode) and node.value == ""):
                yield node
    except yaml.reader.ReaderError as error:
        line, col = _line_col(text, error.position)
        char = error.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        message = f"not valid YAML: character {shown} is not allowed here (is this a binary file?)"
        raise ScenarioError([Problem(Mark(file, line, col), message)]) from None
    except RecursionError:
        message = "not valid YAML: values nested too deeply; a scenario needs a few levels"
        raise ScenarioError([Problem(Mark(file, 1, 1), message)]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError(
            [Problem(Mark(file, line, col), f"not valid YAML: {error.problem or error}")]
        ) from None
    except yaml.YAMLError as error:
        raise ScenarioError([Problem(Mark(file, 1, 1), f"not valid YAML: {error}")]) from None


def validate_document(data: Any, source: SourceMap) -> tuple[Scenario | None, list[Problem]]:
    """Validate plain data (with its source map) into a scenario; problems if it is not one."""
    root = source.values[()]
    if not isinstance(data, dict):
        message = "a scenario is a mapping with at least `description:` (see `harness schema`)"
        return None, [Problem(root, message)]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        problems = [_problem_from_error(e, source) for e in error.errors()]
        problems += _entry_problems(data, source)
        # The job is judged too when it is well-formed, so that every problem shows at once.
        job = data.get("job")
        if data.get("target", "reference") == "reference" and isinstance(job, dict):
            problems += _job_problems(job, source)
        return None, problems
    problems = [Problem(source.find(loc), msg) for loc, msg in semantic_problems(scenario)]
    if scenario.target.reference:
        problems.extend(_job_problems(scenario.job, source))
    return (None if problems else scenario), problems


def _job_problems(job: dict[str, Any], source: SourceMap) -> list[Problem]:
    """The reference runtime's own validation of ``job:`` (and ``job.runtime``)."""
    from harness.runtime import ConfigError, JobSpec, JobSpecError, RuntimeConfig

    try:
        spec = JobSpec.from_mapping(job)
        RuntimeConfig.from_mapping(spec.extra.get("runtime"))
    except (JobSpecError, ConfigError) as error:
        message = str(error)
        named = [k for k in job if f"'{k}'" in message or f"job.{k}" in message]
        loc: Loc = ("job", named[0]) if named else ("job",)
        if "runtime" in job and isinstance(error, ConfigError):
            loc = ("job", "runtime")
        return [Problem(source.find(loc, key=bool(named)), f"job: {message}{_hint(message)}")]
    return []


def _entry_problems(data: dict[str, Any], source: SourceMap) -> list[Problem]:
    """Semantic problems of the timeline entries that are valid on their own.

    Run when the document as a whole did not validate, so that every problem is reported at once.
    """
    env = data.get("env")
    cloud = env.get("cloud") if isinstance(env, dict) else None
    default: Cloud = cloud if cloud in CLOUDS else "aws"
    timeline = data.get("timeline")
    problems: list[Problem] = []
    for index, raw in enumerate(timeline if isinstance(timeline, list) else []):
        try:
            entry = TimelineEntry.model_validate(raw)
        except ValidationError:
            continue  # already reported
        for loc, message in entry_problems(entry, ("timeline", index), default):
            problems.append(Problem(source.find(loc), message))
    return problems


def _hint(message: str) -> str:
    """A did-you-mean for "unknown ... 'x'; known: a, b" messages."""
    unknown, _, known = message.partition("; known: ")
    if not known or "'" not in unknown:
        return ""
    word = unknown.split("'")[1]
    return did_you_mean(word, [k.strip() for k in known.split(",")])


def _line_col(text: str | bytes, position: int) -> tuple[int, int]:
    """1-based line and column of ``position`` in ``text``."""
    before = text[:position]
    newline = "\n" if isinstance(before, str) else b"\n"
    line_start = before.rfind(newline) + 1  # type: ignore[arg-type]
    return before.count(newline) + 1, position - line_start + 1  # type: ignore[arg-type]


def _too_big(size: int, file: str) -> ScenarioError:
    message = (
        f"the file is {size:,} bytes; scenario files are at most {MAX_FILE_BYTES:,} bytes "
        "(split it into several files)"
    )
    return ScenarioError([Problem(Mark(file, 1, 1), message)])


def load_text(text: str, file: str | Path = "<string>") -> list[LoadedScenario]:
    """Every scenario document in ``text``; raises :class:`ScenarioError` with all problems."""
    name = str(file)
    if len(text) > MAX_FILE_BYTES:
        raise _too_big(len(text.encode(errors="replace")), name)
    nodes = list(_documents(text, name))
    if not nodes:
        raise ScenarioError(
            [
                Problem(
                    Mark(name, 1, 1),
                    "no scenario here: the file is empty; start with `description:`",
                )
            ]
        )
    results: list[tuple[Scenario, SourceMap]] = []
    problems: list[Problem] = []
    for node in nodes:
        builder = _Builder(name)
        _Expansion(builder).size(node)
        data = builder.build(node, ())
        scenario, found = validate_document(data, builder.source)
        problems.extend(builder.problems + found)
        if scenario is not None and not builder.problems:
            results.append((scenario, builder.source))
    if problems:
        raise ScenarioError(problems)
    return [
        LoadedScenario(scenario, Path(name), index, len(results), source)
        for index, (scenario, source) in enumerate(results)
    ]


def load_file(path: str | Path) -> list[LoadedScenario]:
    """Every scenario document of one file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ScenarioError([Problem(Mark(str(path), 1, 1), f"cannot read: {reason}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(path.stat().st_size, str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, col = _line_col(raw, error.start)
        message = (
            f"byte 0x{raw[error.start]:02x} is not UTF-8 text; a scenario is a UTF-8 YAML file "
            "(is this a binary file?)"
        )
        raise ScenarioError([Problem(Mark(str(path), line, col), message)]) from None
    return load_text(text, path)


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths``: files as given, directories searched for ``**/*.yaml``;
    ``library:NAME`` names a file or folder of the shipped library (:mod:`.library`)."""
    found: list[Path] = []
    for raw in paths:
        path = library.resolve(str(raw)) if library.is_library_name(str(raw)) else Path(raw)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in SCENARIO_SUFFIXES and p.is_file())
            )
        else:
            found.append(path)
    return found


def load_paths(paths: Iterable[str | Path]) -> tuple[list[LoadedScenario], list[Problem]]:
    """Load every scenario under ``paths``; returns the good ones and every problem found."""
    loaded: list[LoadedScenario] = []
    problems: list[Problem] = []
    for file in scenario_files(paths):
        if not file.exists():
            problems.append(Problem(Mark(str(file), 1, 1), "no such file or directory"))
            continue
        try:
            loaded.extend(load_file(file))
        except ScenarioError as error:
            problems.extend(error.problems)
    return loaded, problems
