"""What a target reports is stored as JSON would give it back, with or without the text."""

from __future__ import annotations

import enum
import json
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.sim.world import _jsonable


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def _round_trip(data: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(json.dumps(data, sort_keys=True, default=str))
    return decoded


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=6), _values, max_size=5))
def test_plain_reports_are_what_the_json_round_trip_gives(data: dict[str, Any]) -> None:
    stored = _jsonable(data)
    expected = _round_trip(data)
    assert stored == expected
    # The same key order, at every level, and the same types (tuples became lists).
    assert json.dumps(stored) == json.dumps(expected)


@pytest.mark.parametrize(
    "value",
    [
        PurePosixPath("checkpoints/a.ckpt"),
        Color.RED,
        Level.HIGH,
        {1: "int key"},
        {"nested": [PurePosixPath("x")]},
        float("inf"),
    ],
)
def test_other_values_go_through_the_json_text(value: Any) -> None:
    data = {"b": value, "a": 1}
    assert json.dumps(_jsonable(data)) == json.dumps(_round_trip(data))
