"""Check names, their parameters, and :func:`evaluate`, the one entry point of the checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from harness.checks import oracles, protocol
from harness.checks.golden import Golden
from harness.checks.results import CheckResult
from harness.checks.snapshot import StorageSnapshot
from harness.checks.verify import Verifier
from harness.checks.view import HistoryView
from harness.errors import InputError, did_you_mean
from harness.history import History
from harness.units import DURATION_SCHEMA, UnitError, parse_duration


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
            "works_through_advisory",
            "an advisory signal (rebalance recommendation, maintenance event, Azure Freeze) that "
            "no interruption follows never makes the job stop, exit or stall",
            protocol.works_through_advisory,
        ),
        CheckInfo(
            "token_renewed",
            "no IMDSv2 token is presented again after the metadata service refused it as expired",
            protocol.token_renewed,
        ),
        CheckInfo(
            "approved_after_save",
            "an Azure event is approved (StartRequests) only once every item done is saved on a "
            "tier that survives it, and no work follows the approval",
            protocol.approved_after_save,
        ),
        CheckInfo(
            "client_timeout",
            "a metadata request that gets no answer (a GCP hanging GET above all) is given up "
            "and asked again within the cloud's shortest notice (plus its timeout_sec)",
            protocol.client_timeout,
        ),
        CheckInfo(
            "polls_within_lead",
            "while its monitor runs, no instance goes longer than its cloud's shortest notice "
            "(AWS 2 min, GCP and Azure 30 s) without a metadata request",
            protocol.polls_within_lead,
        ),
        CheckInfo(
            "true_deadline",
            "every deadline a target reports for a notice is no later than the real one: from "
            "the notice's own time, not from when it was seen or from a skewed local clock",
            protocol.true_deadline,
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


class CheckSpecError(InputError):
    """An ``expect`` entry that names no check or has wrong parameters; says how to fix it."""


class CheckSpec(BaseModel):
    """One entry of ``expect``: a check name, its parameters (durations in seconds) and, for a
    known-bad target, why the check is expected to fail (``fails``, reported as xfail).

    Written ``durable`` or ``{lost_work: {at_most: 30s, fails: "why"}}`` in a scenario, or built
    directly (``CheckSpec(name="lost_work", params={"at_most": 30.0})``). The scenario model and
    :func:`evaluate` share this one class.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    params: dict[str, float] = Field(default_factory=dict)
    fails: str | None = Field(
        default=None, description="the target is known to break this check: why (xfail)"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        if isinstance(value, CheckSpec):
            return value
        if isinstance(value, str):
            return _checked(value, {}, None)
        if isinstance(value, Mapping) and "name" in value:
            checked = _checked(str(value["name"]), value.get("params") or {}, value.get("fails"))
            return {**value, **checked}  # other keys stay, so `extra="forbid"` names them
        if isinstance(value, Mapping) and len(value) == 1:
            ((name, params),) = value.items()
            if params is None:
                params = {}
            if not isinstance(params, Mapping):
                raise ValueError(
                    f"parameters of check `{name}` must be a mapping such as {{within: 30s}}"
                )
            params = dict(params)
            fails = params.pop("fails", None)
            return _checked(str(name), params, "known-bad target" if fails is True else fails)
        raise ValueError(
            "a check is a name (`durable`) or a one-key mapping (`{lost_work: {at_most: 30s}}`), "
            f"not {value!r}"
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The forms ``_from_yaml`` reads: a name, ``{name: {params}}`` (both from :data:`CHECKS`)
        or the generated object form."""
        return {"anyOf": [{"enum": list(CHECKS)}, _one_key_form(), handler(core_schema)]}

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        inner = ", ".join(f"{k}={v:g}s" for k, v in self.params.items())
        return f"{self.name}({inner})"


def _one_key_form() -> dict[str, Any]:
    """``{lost_work: {at_most: 30s, fails: why}}``: one key, a check of :data:`CHECKS`."""
    fails = {"type": ["string", "boolean"], "description": "known to fail: why (xfail)"}
    forms = {
        name: {
            "type": ["object", "null"],
            "properties": {**{p: DURATION_SCHEMA for p in info.params}, "fails": fails},
            "additionalProperties": False,
        }
        for name, info in CHECKS.items()
    }
    return {
        "type": "object",
        "properties": forms,
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    }


def _checked(name: str, params: Mapping[str, Any], fails: Any) -> dict[str, Any]:
    """A check's fields with its name and parameters verified and its durations parsed."""
    info = CHECKS.get(name)
    if info is None:
        hint = did_you_mean(name, CHECKS) or f"; known: {', '.join(sorted(CHECKS))}"
        raise ValueError(f"unknown check `{name}`{hint}")
    for key in params:
        if key not in info.params:
            hint = did_you_mean(key, [*info.params, "fails"]) if info.params else "; it takes none"
            raise ValueError(f"unknown parameter `{key}` of check `{name}`{hint}")
    missing = [p for p in info.params if p not in params and p not in info.defaults]
    if missing:
        example = ", ".join(f"{p}: 30s" for p in missing)
        raise ValueError(f"check `{name}` needs {example} (e.g. {{{name}: {{{example}}}}})")
    parsed: dict[str, float] = {}
    for key, value in params.items():
        try:
            parsed[key] = parse_duration(value)
        except UnitError as error:
            raise ValueError(f"`{name}.{key}`: {error}") from None
    return {"name": name, "params": parsed, "fails": fails}


def parse_check_spec(raw: Any) -> CheckSpec:
    """``"durable"``, ``{"lost_work": {"at_most": "30s"}}`` or a :class:`CheckSpec`."""
    try:
        return CheckSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        message = str(first.get("ctx", {}).get("error", first["msg"]))
        raise CheckSpecError(message) from None


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
    return [_run(spec, context) for spec in specs]


def _run(spec: CheckSpec, context: oracles.CheckContext) -> CheckResult:
    info = CHECKS[spec.name]
    return info.run(context, **{**info.defaults, **spec.params})
