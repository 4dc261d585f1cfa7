"""The reference job: a deterministic batch workload whose every state and output is a pure
function of its :class:`JobSpec`, so any checkpoint and any output can be checked against a
golden run without running it.

Item ``i`` (1-based) turns the running state ``d(i-1)`` into ``d(i) = sha256(d(i-1) || i)``;
``d(0)`` is derived from the seed. A checkpoint's content is :func:`state_after`: a one-line JSON
header naming the position and digest, then deterministic padding up to the state size.

Nominal versus physical size: with ``materialize: false`` (the simulation default) the content is
the header only and the nominal ``state_size`` / ``output_size`` only drive the modelled I/O time
(the storage layer passes them to the io_hook as ``nbytes``). That keeps a 64 GiB training state
cheap in simulation. With ``materialize: true`` (real mode) the padding makes the content exactly
``state_size`` bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from harness.errors import InputError
from harness.units import UnitError, parse_duration, parse_size

STATE_FORMAT = "spot-harness-state/1"
OUTPUT_FORMAT = "spot-harness-output/1"
OUTPUT_PREFIX = "outputs/"
#: How many output objects a job makes when ``output_every`` is not given.
DEFAULT_OUTPUT_OBJECTS = 20
_DIGEST_CACHE_STRIDE = 256


class JobSpecError(InputError):
    """A job parameter is missing or malformed; the message names it and the expected form."""


@dataclass(frozen=True)
class JobSpec:
    """The parameters of one job. Build it from a mapping with :meth:`from_mapping`."""

    items: int = 1000
    seconds_per_item: float = 0.5
    checkpoint_every: float = 300.0
    state_size: int = 64 * 2**20
    output_size: int = 2**20
    output_every: int = 50
    seed: int = 0
    name: str = "job"
    materialize: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, materialize: bool = False) -> JobSpec:
        """Parse ``{items: 2000, seconds_per_item: 0.5, checkpoint_every: 5m, ...}``.

        Unknown keys are refused, except ``runtime`` (the runtime's own settings), which is kept
        in :attr:`extra`.
        """
        known = {
            "items",
            "seconds_per_item",
            "checkpoint_every",
            "state_size",
            "output_size",
            "output_every",
            "seed",
            "name",
            "materialize",
        }
        unknown = sorted(set(raw) - known - {"runtime"})
        if unknown:
            raise JobSpecError(
                f"unknown job parameter(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        items = _positive_int(raw, "items", cls.items)
        default_every = max(1, math.ceil(items / DEFAULT_OUTPUT_OBJECTS))
        spec = cls(
            items=items,
            seconds_per_item=_duration(raw, "seconds_per_item", cls.seconds_per_item),
            checkpoint_every=_duration(raw, "checkpoint_every", cls.checkpoint_every),
            state_size=_size(raw, "state_size", cls.state_size),
            output_size=_size(raw, "output_size", cls.output_size),
            output_every=_positive_int(raw, "output_every", default_every),
            seed=_int(raw, "seed", cls.seed),
            name=_name(raw.get("name", cls.name)),
            materialize=_bool(raw, "materialize", materialize),
            extra={"runtime": raw["runtime"]} if "runtime" in raw else {},
        )
        if spec.seconds_per_item <= 0:
            raise JobSpecError("job.seconds_per_item must be positive, e.g. 500ms")
        if spec.checkpoint_every <= 0:
            raise JobSpecError("job.checkpoint_every must be positive, e.g. 5m")
        return spec

    def to_mapping(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "seconds_per_item": self.seconds_per_item,
            "checkpoint_every": self.checkpoint_every,
            "state_size": self.state_size,
            "output_size": self.output_size,
            "output_every": self.output_every,
            "seed": self.seed,
            "name": self.name,
            "materialize": self.materialize,
        }

    @property
    def output_count(self) -> int:
        return math.ceil(self.items / self.output_every)

    @property
    def duration(self) -> float:
        """Seconds of work in an uninterrupted run (checkpoint I/O not included)."""
        return self.items * self.seconds_per_item


def _positive_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = _int(raw, key, default)
    if value <= 0:
        raise JobSpecError(f"job.{key} must be a positive integer, got {value!r}")
    return value


def _int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobSpecError(f"job.{key} must be an integer, got {value!r}")
    return value


def _bool(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise JobSpecError(f"job.{key} must be true or false, got {value!r}")
    return value


def _duration(raw: Mapping[str, Any], key: str, default: float) -> float:
    try:
        return parse_duration(raw.get(key, default))
    except (UnitError, AttributeError) as error:
        raise JobSpecError(f"job.{key}: {error}") from None


def _size(raw: Mapping[str, Any], key: str, default: int) -> int:
    try:
        return parse_size(raw.get(key, default))
    except (UnitError, AttributeError) as error:
        raise JobSpecError(f"job.{key}: {error}") from None


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "-_." for c in value):
        raise JobSpecError(
            f"job.name must be letters, digits, '-', '_' or '.', got {value!r} (e.g. nightly-embed)"
        )
    return value


# -- state ---------------------------------------------------------------------------------------
def _initial_digest(spec: JobSpec) -> bytes:
    return hashlib.sha256(f"spot-harness/{spec.name}/{spec.seed}".encode()).digest()


def advance_digest(digest: bytes, first_item: int, count: int) -> bytes:
    """The digest after ``count`` items from ``first_item`` (1-based) on top of ``digest``."""
    for item in range(first_item, first_item + count):
        digest = hashlib.sha256(digest + item.to_bytes(8, "big")).digest()
    return digest


@lru_cache(maxsize=64)
def _digest_checkpoints(spec: JobSpec) -> tuple[bytes, ...]:
    """Digests at positions 0, stride, 2*stride, ...: a golden table, cached per spec."""
    table = [_initial_digest(spec)]
    for start in range(0, spec.items, _DIGEST_CACHE_STRIDE):
        count = min(_DIGEST_CACHE_STRIDE, spec.items - start)
        table.append(advance_digest(table[-1], start + 1, count))
    return tuple(table)


def state_digest(spec: JobSpec, position: int) -> bytes:
    """The running state's digest after ``position`` items (0 = before any item)."""
    if not 0 <= position <= spec.items:
        raise ValueError(f"position {position} outside 0..{spec.items}")
    base, rest = divmod(position, _DIGEST_CACHE_STRIDE)
    digest = _digest_checkpoints(spec)[base]
    return advance_digest(digest, base * _DIGEST_CACHE_STRIDE + 1, rest)


def _padded(head: bytes, seed: bytes, length: int) -> bytes:
    """``head`` followed by ``length`` bytes of padding drawn from ``seed``, copied once (a
    materialized state is tens of MiB, and each concatenation would copy it all again)."""
    if length <= 0:
        return head
    block = hashlib.sha512(seed).digest() * 1024  # 64 KiB
    reps, rest = divmod(length, len(block))
    return b"".join((head, *(block,) * reps, block[:rest]))


def state_header(spec: JobSpec, position: int, digest: bytes) -> bytes:
    header = {
        "format": STATE_FORMAT,
        "job": spec.name,
        "seed": spec.seed,
        "position": position,
        "state": digest.hex(),
        "nominal_size": spec.state_size,
    }
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def encode_state(spec: JobSpec, position: int, digest: bytes) -> bytes:
    """Checkpoint content for a known digest (what the runtime writes)."""
    header = state_header(spec, position, digest)
    if not spec.materialize:
        return header
    return _padded(header, digest, spec.state_size - len(header))


def state_after(spec: JobSpec, position: int) -> bytes:
    """The exact checkpoint content after ``position`` items: the golden reference."""
    return encode_state(spec, position, state_digest(spec, position))


def state_checksum(spec: JobSpec, position: int) -> str:
    """Hex SHA-256 of :func:`state_after`: what a correct checkpoint at ``position`` reports."""
    return checksum(state_after(spec, position))


def decode_state(data: bytes) -> dict[str, Any]:
    """The header of checkpoint content; raises ``ValueError`` if it is not one."""
    end = data.find(b"\n")  # not partition(): it would copy the tens of MiB after the header
    line = data if end < 0 else data[:end]
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not a checkpoint: {error}") from None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise ValueError("not a checkpoint: missing or unknown format")
    return header


def checksum(data: bytes) -> str:
    """The content checksum used everywhere in the layout: lowercase hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


# -- outputs -------------------------------------------------------------------------------------
def output_key(spec: JobSpec, index: int) -> str:
    return f"{OUTPUT_PREFIX}{spec.name}/part-{index:05d}"


def output_range(spec: JobSpec, index: int) -> tuple[int, int]:
    """Items ``(first, last)`` (1-based, inclusive) written by output object ``index``."""
    first = index * spec.output_every + 1
    return first, min(spec.items, first + spec.output_every - 1)


def item_result(spec: JobSpec, item: int) -> str:
    """The deterministic result of one item (an embedding's fingerprint, a step's loss)."""
    return hashlib.sha256(f"{spec.name}/{spec.seed}/item/{item}".encode()).hexdigest()[:32]


def output_content(spec: JobSpec, index: int) -> bytes:
    first, last = output_range(spec, index)
    header = {
        "format": OUTPUT_FORMAT,
        "job": spec.name,
        "seed": spec.seed,
        "index": index,
        "first": first,
        "last": last,
    }
    body = json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n"
    body += "".join(f"{item} {item_result(spec, item)}\n" for item in range(first, last + 1))
    data = body.encode()
    if spec.materialize:
        data = _padded(data, data, spec.output_size - len(data))
    return data


@lru_cache(maxsize=64)
def _expected_outputs(spec: JobSpec) -> tuple[tuple[str, str], ...]:
    return tuple(
        (output_key(spec, index), checksum(output_content(spec, index)))
        for index in range(spec.output_count)
    )


def expected_outputs(spec: JobSpec) -> dict[str, str]:
    """Every output key of a complete run and the checksum (hex SHA-256) of its content."""
    return dict(_expected_outputs(spec))


def output_index_completed_at(spec: JobSpec, position: int) -> int | None:
    """The output index whose last item is ``position``, if ``position`` closes one."""
    if position <= 0:
        return None
    if position % spec.output_every == 0 or position == spec.items:
        return (position - 1) // spec.output_every
    return None
