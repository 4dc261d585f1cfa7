"""Check names, their parameters, and :func:`evaluate`, the one entry point of the checks."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.checks import oracles
from harness.checks.golden import Golden
from harness.checks.results import CheckResult
from harness.checks.snapshot import StorageSnapshot
from harness.checks.verify import Verifier
from harness.checks.view import HistoryView
from harness.history import History
from harness.units import UnitError, parse_duration


@dataclass(frozen=True)
class CheckInfo:
    """A check as users name it in ``expect:``."""

    name: str
    description: str
    run: Callable[..., CheckResult]
    #: parameter name -> kind (``duration``); required unless it has a default.
    params: Mapping[str, str] = field(default_factory=dict)
    #: parameter name -> value when omitted.
    defaults: Mapping[str, float] = field(default_factory=dict)


CHECKS: dict[str, CheckInfo] = {
    info.name: info
    for info in (
        CheckInfo(
            "saved_before_deadline",
            "each noticed interruption has a checkpoint, covering the work done when the notice "
            "came, durable by the deadline on a tier that survives the action (S3 for terminate, "
            "local disk or S3 for stop / hibernate)",
            oracles.saved_before_deadline,
        ),
        CheckInfo(
            "exactly_once",
            "every expected output exists exactly once (one S3 version) with the golden content, "
            "and nothing unexpected is under the output prefix",
            oracles.exactly_once,
        ),
        CheckInfo(
            "resume_correct",
            "each instance resumes from the newest valid durable checkpoint and continues at the "
            "next item; every checkpoint holds the golden state; the job ends at the last item",
            oracles.resume_correct,
        ),
        CheckInfo(
            "durable",
            "every checkpoint reported durable is in storage with its checksum and was written "
            "before it was reported; metadata never points to a checkpoint not yet durable; once "
            "one exists, a valid checkpoint exists at every instant",
            oracles.durable,
        ),
        CheckInfo(
            "lost_work",
            "work redone after each interruption is at most the given duration",
            oracles.lost_work,
            {"at_most": "duration"},
        ),
        CheckInfo(
            "detects_notice",
            "each instance reports an interruption notice within the given time of its issue, "
            "with a deadline no later than the real one",
            oracles.detects_notice,
            {"within": "duration"},
        ),
        CheckInfo(
            "no_leaked_uploads",
            "no multipart upload is left incomplete (unless its writer died and nobody came after)",
            oracles.no_leaked_uploads,
        ),
        CheckInfo(
            "fenced",
            "no instance writes outputs or metadata, or overwrites a newer instance's objects, "
            "after a newer instance took over",
            oracles.fenced,
        ),
        CheckInfo(
            "reference_layout",
            "the bundled runtime's storage layout holds: manifests and Redis metadata name only "
            "checkpoints storage holds intact, and no older epoch wrote after a newer one (opt-in: "
            "for targets using that layout)",
            oracles.reference_layout,
        ),
        CheckInfo(
            "completes",
            "the job completes (within the given time from the start of the run, if given), "
            "with all outputs",
            oracles.completes,
            {"within": "duration"},
            {"within": float("inf")},
        ),
    )
}

#: Checks run when a scenario says nothing (``expect`` omitted). ``saved_before_deadline``
#: only when its timeline gives a notice (see ``Scenario``).
DEFAULT_EXPECT: tuple[str, ...] = (
    "saved_before_deadline",
    "exactly_once",
    "resume_correct",
    "durable",
    "completes",
)


class CheckSpecError(ValueError):
    """An ``expect`` entry that names no check or has wrong parameters; says how to fix it."""


@dataclass(frozen=True)
class CheckSpec:
    """One entry of ``expect``: a check name and its parameters (durations in seconds)."""

    name: str
    params: Mapping[str, float] = field(default_factory=dict)


def suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean `{close[0]}`?" if close else f"; known: {', '.join(known)}"


def parse_check_spec(raw: Any) -> CheckSpec:
    """``"durable"``, ``{"lost_work": {"at_most": "30s"}}`` or a :class:`CheckSpec`."""
    if isinstance(raw, CheckSpec):
        return _validated(raw.name, dict(raw.params))
    if isinstance(raw, str):
        return _validated(raw, {})
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((name, params),) = raw.items()
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise CheckSpecError(
                f"parameters of check `{name}` must be a mapping such as {{within: 30s}}"
            )
        return _validated(str(name), dict(params))
    raise CheckSpecError(
        f"a check is a name (`durable`) or a one-key mapping (`{{lost_work: {{at_most: 30s}}}}`), "
        f"not {raw!r}"
    )


def _validated(name: str, params: dict[str, Any]) -> CheckSpec:
    info = CHECKS.get(name)
    if info is None:
        raise CheckSpecError(f"unknown check `{name}`{suggest(name, sorted(CHECKS))}")
    for key in params:
        if key not in info.params:
            hint = suggest(key, sorted(info.params)) if info.params else "; it takes none"
            raise CheckSpecError(f"unknown parameter `{key}` of check `{name}`{hint}")
    params = {**info.defaults, **params}
    missing = [p for p in info.params if p not in params]
    if missing:
        example = ", ".join(f"{p}: 30s" for p in missing)
        raise CheckSpecError(f"check `{name}` needs {example} (e.g. {{{name}: {{{example}}}}})")
    parsed: dict[str, float] = {}
    for key, value in params.items():
        if isinstance(value, float) and value == float("inf"):
            parsed[key] = value
            continue
        try:
            parsed[key] = parse_duration(value)
        except UnitError as error:
            raise CheckSpecError(f"`{name}.{key}`: {error}") from None
    return CheckSpec(name=name, params=parsed)


def evaluate(
    expect: Sequence[CheckSpec | str | Mapping[str, Any]],
    history: History,
    snapshot: StorageSnapshot,
    golden: Golden,
) -> list[CheckResult]:
    """Run the expected checks over a finished run; one result per entry, in order."""
    specs = [parse_check_spec(raw) for raw in expect]
    view = HistoryView(history)
    context = oracles.CheckContext(
        view=view, snapshot=snapshot, golden=golden, verifier=Verifier(view, snapshot)
    )
    return [CHECKS[spec.name].run(context, **spec.params) for spec in specs]
