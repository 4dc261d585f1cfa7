"""One grammar for durations, sizes and bandwidths, everywhere (YAML, CLI, control API).

Durations: ``250ms``, ``90s``, ``2m``, ``1h30m``, ``1.5h``, ISO-8601 ``PT2M`` / ``P1DT2H``; a bare
number is seconds. Sizes: ``512KiB``, ``64MiB``, ``1GB``, a bare number is bytes. Bandwidths:
``100MB/s``, ``1Gbit/s`` (bytes per second).
"""

from __future__ import annotations

import math
import re

from harness.errors import InputError

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_ISO_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", re.IGNORECASE)
_BANDWIDTH = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b|[kmgt]?bit)\s*/\s*s", re.IGNORECASE)
_BIT_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}

DURATION_HELP = "a duration such as 250ms, 90s, 2m, 1h30m or PT2M (a bare number is seconds)"
SIZE_HELP = "a size such as 512KiB, 64MiB or 1GB (a bare number is bytes)"
BANDWIDTH_HELP = "a bandwidth such as 100MB/s or 1Gbit/s"
#: JSON Schema of a value :func:`parse_duration` accepts (editors complete with the examples).
DURATION_SCHEMA = {
    "anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}],
    "description": DURATION_HELP,
    "examples": ["250ms", "90s", "2m", "1h30m", "PT2M"],
}


class UnitError(InputError):
    """A value that is not in the grammar; the message says what is expected."""


def parse_duration(value: str | int | float) -> float:
    """Seconds from a duration in the project's grammar."""
    if isinstance(value, bool):
        raise UnitError(f"expected {DURATION_HELP}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip())
    else:
        raise UnitError(f"expected {DURATION_HELP}, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise UnitError(f"expected a non-negative duration, got {value!r}")
    return seconds


def _parse_duration_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    if text[:1] in ("P", "p"):
        match = _ISO_DURATION.fullmatch(text.upper())
        if match and text.upper() not in ("P", "PT"):
            parts = {k: float(v) for k, v in match.groupdict().items() if v}
            return (
                parts.get("d", 0.0) * 86400
                + parts.get("h", 0.0) * 3600
                + parts.get("m", 0.0) * 60
                + parts.get("s", 0.0)
            )
        raise UnitError(f"expected {DURATION_HELP}, got {text!r}")
    lowered = text.lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(lowered):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(lowered):
        raise UnitError(f"expected {DURATION_HELP}, got {text!r}")
    return total


def parse_size(value: str | int) -> int:
    """Bytes from a size in the project's grammar."""
    if isinstance(value, bool):
        raise UnitError(f"expected {SIZE_HELP}, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"expected a non-negative size, got {value!r}")
        return value
    if not isinstance(value, str):
        raise UnitError(f"expected {SIZE_HELP}, got {value!r}")
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise UnitError(f"expected {SIZE_HELP}, got {value!r}")
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_bandwidth(value: str | int | float) -> float:
    """Bytes per second from a bandwidth in the project's grammar (a bare number is B/s)."""
    if isinstance(value, bool):
        raise UnitError(f"expected {BANDWIDTH_HELP}, got {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    elif not isinstance(value, str):
        raise UnitError(f"expected {BANDWIDTH_HELP}, got {value!r}")
    else:
        match = _BANDWIDTH.fullmatch(value.strip())
        if not match:
            raise UnitError(f"expected {BANDWIDTH_HELP}, got {value!r}")
        amount, unit = float(match.group(1)), match.group(2).lower()
        rate = amount * _BIT_UNITS[unit] / 8 if unit.endswith("bit") else amount * _SIZE_UNITS[unit]
    if not math.isfinite(rate) or rate <= 0:
        raise UnitError(f"expected a positive bandwidth, got {value!r}")
    return rate


def format_duration(seconds: float) -> str:
    """A short human form: ``2m``, ``1h30m``, ``250ms``, ``1m30.5s``."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole, frac = divmod(seconds, 1)
    h, rest = divmod(int(whole), 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "")
    sec = s + frac
    if sec or not out:
        out += f"{sec:g}s"
    return out


def iso_duration(seconds: float) -> str:
    """ISO-8601 form used by AWS (``PT2M``, ``PT1M30S``)."""
    whole = round(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    out = "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{s}S" if s else "")
    return out if out != "PT" else "PT0S"
