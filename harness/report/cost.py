"""What interruptions cost: measured figures and a price table make an effective price.

Per paid hour of a spot instance the job does useful work for

    useful = 1 - overhead - rate * (lost + recovery) / 3600

where ``overhead`` is the share of time checkpoints take, ``rate`` the interruptions per hour,
``lost`` the seconds of work redone after each one and ``recovery`` the seconds a replacement
takes from boot to resume. The effective price of a useful hour is ``spot / useful``, compared
with the on-demand price (no interruption, no checkpoint needed); it equals on-demand at the
break-even rate ``3600 * (1 - overhead - spot / on_demand) / (lost + recovery)``.

The measured figures come from a journal (:func:`measure`); the prices from a YAML table
(:func:`load_prices`), validated with file:line:col for every problem.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.report.figures import run_figures

# The scenario loader's YAML reader keeps every value's file:line:col; the price table uses it.
from harness.scenario.loader import Mark, Problem, SourceMap, _Builder, _documents
from harness.units import UnitError, parse_duration

PRICES_FORMAT = "spot-harness-prices/1"
DEFAULT_PRICES = "prices.yaml"


class PriceError(Exception):
    """A price table that cannot be used; holds every problem, each with its position."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.mark)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Model):
    title: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    date: datetime.date = Field(description="when the figure was published or read")


class PriceRow(_Model):
    provider: str = Field(min_length=1)
    instance_type: str = Field(min_length=1)
    region: str = ""
    on_demand: float = Field(gt=0, description="price per hour")
    spot: float = Field(gt=0, description="price per hour")
    interruptions_per_hour: float = Field(ge=0)
    sources: tuple[str, ...] = Field(min_length=1)
    note: str = ""
    #: When the row's prices are not in the table's currency (e.g. relative to on-demand).
    currency: str | None = None

    @property
    def label(self) -> str:
        where = f" {self.region}" if self.region else ""
        return f"{self.provider} {self.instance_type}{where}"


class PriceTable(_Model):
    format: Literal["spot-harness-prices/1"]
    currency: str = "USD"
    note: str = ""
    sources: dict[str, Source]
    prices: tuple[PriceRow, ...] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _some(cls, value: dict[str, Source]) -> dict[str, Source]:
        if not value:
            raise ValueError("name at least one source: each figure says where it comes from")
        return value


def default_prices_path() -> Path:
    return Path(str(resources.files("harness.report").joinpath(DEFAULT_PRICES)))


def load_prices(path: Path | None = None) -> PriceTable:
    """The price table at ``path`` (default: the shipped example table)."""
    path = path or default_prices_path()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PriceError([Problem(Mark(str(path), 1, 1), f"cannot read: {error}")]) from None
    return parse_prices(text, str(path))


def parse_prices(text: str, file: str = "<string>") -> PriceTable:
    try:
        nodes = list(_documents(text, file))
    except Exception as error:  # ScenarioError: the YAML itself is broken
        problems = getattr(error, "problems", [Problem(Mark(file, 1, 1), str(error))])
        raise PriceError(problems) from None
    if len(nodes) != 1:
        found = "no document" if not nodes else f"{len(nodes)} documents"
        raise PriceError(
            [Problem(Mark(file, 1, 1), f"a price table is one YAML document, got {found}")]
        )
    builder = _Builder(file)
    data = builder.build(nodes[0], ())
    problems = list(builder.problems)
    table: PriceTable | None = None
    if not isinstance(data, dict):
        problems.append(Problem(builder.source.values[()], _SHAPE))
    else:
        try:
            table = PriceTable.model_validate(data)
        except ValidationError as error:
            errors = error.errors()
            # A row with errors also makes its list "too short"; only the row's errors help.
            deeper = [tuple(e["loc"]) for e in errors]
            problems.extend(
                _located(e, builder.source)
                for e in errors
                if not any(
                    len(d) > len(e["loc"]) and d[: len(e["loc"])] == e["loc"] for d in deeper
                )
            )
    if table is not None:
        problems.extend(_unknown_sources(table, builder.source))
    if problems or table is None:
        raise PriceError(problems)
    return table


_SHAPE = (
    f"a price table is a mapping with `format: {PRICES_FORMAT}`, `sources:` and `prices:` "
    "(see the default table: harness cost --show-prices)"
)


def _located(error: Any, source: SourceMap) -> Problem:
    loc = tuple(error["loc"])
    name = str(loc[-1]) if loc else "table"
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(
            source.find(loc, key=True), f"unknown key `{name}`; remove it or fix its spelling"
        )
    if kind == "missing":
        return Problem(source.find(loc[:-1]), f"missing `{name}`")
    message = error["msg"].removeprefix("Value error, ")
    return Problem(source.find(loc), f"`{name}`: {message} (got {error.get('input')!r})")


def _unknown_sources(table: PriceTable, source: SourceMap) -> Iterable[Problem]:
    for index, row in enumerate(table.prices):
        for position, name in enumerate(row.sources):
            if name not in table.sources:
                known = ", ".join(table.sources)
                yield Problem(
                    source.find(("prices", index, "sources", position)),
                    f"source `{name}` is not under `sources:` (known: {known}); add it there",
                )


def select(table: PriceTable, provider: str | None, instance_type: str | None) -> list[PriceRow]:
    return [
        row
        for row in table.prices
        if (provider is None or row.provider == provider)
        and (instance_type is None or row.instance_type == instance_type)
    ]


# -- measured figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What a job's runs say about its cost of interruptions."""

    #: Share of instance time spent from a checkpoint's start to its first durable copy.
    overhead: float
    #: Seconds of work redone after an interruption, on average.
    lost_work: float
    #: Seconds from a replacement's boot to its resume, on average.
    recovery: float
    runs: int = 0
    interruptions: int = 0
    instance_seconds: float = 0.0
    seconds_per_item: float | None = None

    @property
    def per_interruption(self) -> float:
        return self.lost_work + self.recovery


def measure(records: Iterable[Mapping[str, Any]]) -> Measured:
    """The figures of every judged run of a journal (runs that ended in an error are left out)."""
    runs = [r for r in records if r.get("status") != "error"]
    figures = [run_figures(r) for r in runs]
    seconds = sum(f.instance_seconds for f in figures)
    lost = [x for f in figures for x in f.lost_work]
    recovery = [x for f in figures for x in f.recovery]
    return Measured(
        overhead=sum(f.checkpoint_seconds for f in figures) / seconds if seconds else 0.0,
        lost_work=sum(lost) / len(lost) if lost else 0.0,
        recovery=sum(recovery) / len(recovery) if recovery else 0.0,
        runs=len(runs),
        interruptions=sum(f.interruptions for f in figures),
        instance_seconds=seconds,
        seconds_per_item=_seconds_per_item(runs),
    )


def _seconds_per_item(runs: Sequence[Mapping[str, Any]]) -> float | None:
    """The job's seconds per item, when every run that says agrees."""
    found = set()
    for run in runs:
        raw = (run.get("job") or {}).get("seconds_per_item")
        if raw is not None:
            try:
                found.add(parse_duration(raw))
            except (UnitError, TypeError, ValueError):
                continue
    return found.pop() if len(found) == 1 else None


# -- the model --------------------------------------------------------------------------------


def useful_share(measured: Measured, rate: float) -> float:
    """Share of a paid hour that is useful work at ``rate`` interruptions per hour."""
    return 1.0 - measured.overhead - rate * measured.per_interruption / 3600.0


def effective_price(measured: Measured, spot: float, rate: float) -> float:
    """Price of a useful hour on spot (``inf`` when interruptions eat every hour)."""
    share = useful_share(measured, rate)
    return spot / share if share > 0 else math.inf


def break_even_rate(measured: Measured, row: PriceRow) -> float:
    """Interruptions per hour at which spot costs as much as on-demand."""
    headroom = 1.0 - measured.overhead - row.spot / row.on_demand
    if headroom <= 0:
        return 0.0
    if measured.per_interruption <= 0:
        return math.inf
    return 3600.0 * headroom / measured.per_interruption


@dataclass(frozen=True)
class Costed:
    row: PriceRow
    effective: float
    break_even: float

    @property
    def ratio(self) -> float:
        """Effective spot price over on-demand."""
        return self.effective / self.row.on_demand


def cost_rows(measured: Measured, rows: Iterable[PriceRow]) -> list[Costed]:
    return [
        Costed(
            row,
            effective_price(measured, row.spot, row.interruptions_per_hour),
            break_even_rate(measured, row),
        )
        for row in rows
    ]


COLOURS = ("#4c78a8", "#e8872a", "#2e8b57", "#9c5fb5", "#d62728", "#8c564b", "#17becf")


def cost_plot(measured: Measured, costed: Sequence[Costed]) -> str:
    """SVG: effective spot price as a share of on-demand against interruptions per hour."""
    from harness.report.svg import Guide, Series, line_plot

    finite = [c.break_even for c in costed if math.isfinite(c.break_even) and c.break_even > 0]
    rates = [c.row.interruptions_per_hour for c in costed]
    top = max([*(1.25 * b for b in finite), *(2 * r for r in rates), 1e-3])
    steps = 60
    series = []
    for index, item in enumerate(costed):
        points = []
        for i in range(steps + 1):
            rate = top * i / steps
            price = effective_price(measured, item.row.spot, rate)
            if math.isfinite(price) and price / item.row.on_demand <= 10:
                points.append((rate, 100 * price / item.row.on_demand))
        colour = COLOURS[index % len(COLOURS)]
        series.append(Series(item.row.label, colour, points))
        series.append(
            Series(
                f"{item.row.label}: table rate",
                colour,
                [(item.row.interruptions_per_hour, 100 * item.ratio)],
                markers=True,
                legend=False,
            )
        )
    return line_plot(
        series,
        title="effective spot price of a useful hour, as a share of on-demand (dots: table rates)",
        x_label="interruptions per instance-hour",
        y_label="% of on-demand",
        x_format=lambda x: f"{x:.3g}",
        y_format=lambda y: f"{y:.0f}%",
        guides=[Guide(100.0, "on-demand", "#d62728", axis="y")],
        x_range=(0.0, top),
        y_range=(0.0, 160.0),
    )
