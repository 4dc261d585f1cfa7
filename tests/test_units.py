"""The one grammar for durations, sizes and bandwidths."""

from __future__ import annotations

import pytest

from harness.units import (
    UnitError,
    format_duration,
    iso_duration,
    parse_bandwidth,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("90s", 90),
        ("2m", 120),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("PT2M", 120),
        ("PT1M30S", 90),
        ("P1DT2H", 93600),
        ("45", 45),
        (12, 12),
        (0.5, 0.5),
        ("2m 30s", 150),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "2x", "m2", "-5s", "PT", "P", "2m3", True, "nan", -1])
def test_bad_durations_say_what_is_expected(bad: object) -> None:
    with pytest.raises(UnitError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [("512KiB", 524288), ("64MiB", 67108864), ("1GB", 10**9), ("100", 100), (7, 7)],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["12 apples", "MiB", -3, True])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(UnitError, match="size"):
        parse_size(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rate"), [("100MB/s", 1e8), ("1Gbit/s", 1.25e8), ("1 MiB/s", 1048576.0), (5, 5.0)]
)
def test_bandwidths(text: str | float, rate: float) -> None:
    assert parse_bandwidth(text) == rate


@pytest.mark.parametrize("bad", ["100MB", "0MB/s", "fast"])
def test_bad_bandwidths(bad: str) -> None:
    with pytest.raises(UnitError):
        parse_bandwidth(bad)


def test_formatting_round_trips() -> None:
    for seconds in (0.25, 90, 120, 5400, 3661, 0):
        assert parse_duration(format_duration(seconds)) == seconds
    assert iso_duration(120) == "PT2M"
    assert iso_duration(900) == "PT15M"
    assert iso_duration(0) == "PT0S"
