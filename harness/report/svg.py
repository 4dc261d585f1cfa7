"""SVG pictures for the HTML report: the timeline of a run and simple line plots.

Everything is plain SVG text with ``<title>`` tooltips (no script, no external resource), so a
report is one self-contained file that any browser shows offline.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from harness.checks.view import HistoryView, Instance
from harness.history import Event, Kind
from harness.report.figures import recorded_view
from harness.report.render import check_label, check_status, cited_seqs, event_details
from harness.units import format_duration

#: Colours of the checkpoint tiers, the same in the picture and its legend.
TIER_COLOURS = {"local": "#4c78a8", "s3": "#2e8b57", "redis": "#9c5fb5"}
TIER_ROWS = ("local", "s3", "redis")
NOTICE_COLOUR = "#e8872a"
VIOLATION_COLOUR = "#d62728"
OUTPUT_COLOUR = "#2e8b57"
#: Candidate spacings of time ticks, in seconds.
TIME_STEPS = (
    0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400,
)  # fmt: skip

WIDTH = 1000
LEFT = 86
RIGHT = 16
AXIS = 28
LANE = 58
FAULT_ROW = 16


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _title(text: str) -> str:
    return f"<title>{esc(text)}</title>"


def time_ticks(start: float, end: float, most: int = 10) -> list[float]:
    """Round times between ``start`` and ``end``, at most ``most`` of them."""
    span = max(end - start, 1e-9)
    step = next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])
    first = math.ceil(start / step - 1e-9) * step
    count = int((end - first) / step + 1e-9) + 1
    return [first + i * step for i in range(max(count, 0))]


def clock_label(seconds: float) -> str:
    return format_duration(round(seconds, 1)) if seconds else "0s"


@dataclass
class _Canvas:
    """Maps run time to x and collects SVG elements."""

    start: float
    end: float
    parts: list[str] = field(default_factory=list)

    def x(self, t: float) -> float:
        span = max(self.end - self.start, 1e-9)
        return LEFT + (min(max(t, self.start), self.end) - self.start) / span * (
            WIDTH - LEFT - RIGHT
        )

    def span(
        self, t0: float, t1: float, y: float, h: float, attrs: str, title: str, least: float = 1.5
    ) -> None:
        """A bar from ``t0`` to ``t1``, at least ``least`` pixels wide so that it shows."""
        x0, x1 = self.x(t0), self.x(t1)
        width = max(x1 - x0, least)
        self.parts.append(
            f'<rect x="{_num(x0)}" y="{_num(y)}" width="{_num(width)}" height="{_num(h)}" '
            f"{attrs}>{_title(title)}</rect>"
        )

    def add(self, element: str) -> None:
        self.parts.append(element)


def timeline_svg(record: Mapping[str, Any]) -> str:
    """The run of a journal record as an SVG: one lane per instance, faults across them."""
    view = recorded_view(record)
    if not view.events:
        return ""
    canvas = _Canvas(view.run_start, max(view.run_end, view.run_start + 1.0))
    faults = _fault_spans(view)
    fault_rows = max((row for *_, row in faults), default=-1) + 1
    lanes_top = AXIS + fault_rows * FAULT_ROW + 6
    lanes = {inst.id: lanes_top + i * LANE for i, inst in enumerate(view.instances)}
    height = lanes_top + max(len(lanes), 1) * LANE + 8
    _axis(canvas, height)
    _faults(canvas, faults, height)
    for instance in view.instances:
        _lane(canvas, view, instance, lanes[instance.id])
    _violations(canvas, view, record, lanes, lanes_top)
    description = esc(record.get("description") or record.get("name") or "run")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
        f'viewBox="0 0 {WIDTH} {_num(height)}" width="{WIDTH}" height="{_num(height)}" '
        f'font-family="sans-serif" font-size="11">'
        f"<title>timeline: {description}</title>"
        f"{_DEFS}{''.join(canvas.parts)}</svg>"
    )


_DEFS = (
    "<defs>"
    '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="3" height="6" fill="#888" fill-opacity="0.25"/>'
    "</pattern></defs>"
)


def _axis(canvas: _Canvas, height: float) -> None:
    for tick in time_ticks(canvas.start, canvas.end):
        x = _num(canvas.x(tick))
        canvas.add(
            f'<line x1="{x}" y1="{AXIS - 4}" x2="{x}" y2="{_num(height)}" stroke="#ddd"/>'
            f'<text x="{x}" y="{AXIS - 8}" text-anchor="middle" fill="#555">'
            f"{esc(clock_label(tick))}</text>"
        )


def _fault_spans(view: HistoryView) -> list[tuple[Event, float, int]]:
    """Each fault with its end and a row, so that overlapping faults do not hide each other."""
    ends: dict[str, list[Event]] = {}
    for event in view.of_kind(Kind.FAULT_ENDED):
        ends.setdefault(str(event.data.get("fault")), []).append(event)
    spans: list[tuple[Event, float, int]] = []
    row_free: list[float] = []
    for started in view.of_kind(Kind.FAULT_STARTED):
        later = [e for e in ends.get(str(started.data.get("fault")), ()) if e.seq > started.seq]
        end = later[0].t if later else view.run_end
        if later:
            ends[str(started.data.get("fault"))].remove(later[0])
        row = next((i for i, free in enumerate(row_free) if free <= started.t), len(row_free))
        if row == len(row_free):
            row_free.append(end)
        row_free[row] = max(end, started.t + 1e-9)
        spans.append((started, end, row))
    return spans


def _faults(canvas: _Canvas, faults: list[tuple[Event, float, int]], height: float) -> None:
    for started, end, row in faults:
        name = str(started.data.get("fault", "fault"))
        title = f"fault {name} from {clock_label(started.t)} to {clock_label(end)}"
        y = AXIS + row * FAULT_ROW
        canvas.span(started.t, end, y, height - y - 4, 'fill="url(#hatch)"', title)
        canvas.span(started.t, end, y, FAULT_ROW - 3, 'fill="#999" fill-opacity="0.55"', title)
        canvas.add(
            f'<text x="{_num(canvas.x(started.t) + 3)}" y="{_num(y + FAULT_ROW - 6)}" '
            f'fill="#fff" font-size="10">{esc(name)}</text>'
        )


def _lane(canvas: _Canvas, view: HistoryView, instance: Instance, top: float) -> None:
    end = instance.end if instance.ended is not None else view.run_end
    label = f"#{instance.started.data.get('incarnation', instance.order + 1)}"
    canvas.add(
        f'<text x="6" y="{_num(top + 14)}" font-weight="bold">{esc(label)}</text>'
        f'<text x="6" y="{_num(top + 28)}" fill="#555">{esc(instance.cloud)}</text>'
        f'<line x1="{LEFT}" y1="{_num(top + LANE - 3)}" x2="{WIDTH - RIGHT}" '
        f'y2="{_num(top + LANE - 3)}" stroke="#eee"/>'
    )
    canvas.span(
        instance.start,
        end,
        top + 4,
        6,
        'fill="#bbb"',
        f"instance {instance.id} ({label}) from {clock_label(instance.start)} "
        f"to {clock_label(end)}",
    )
    _notices(canvas, view, instance, top)
    _checkpoints(canvas, view, instance, top)
    for event in view.by(instance.id, Kind.OUTPUT_COMMITTED):
        x, y = canvas.x(event.t), top + 46
        canvas.add(
            f'<path d="M{_num(x)} {_num(y - 4)} l4 4 l-4 4 l-4 -4 z" fill="{OUTPUT_COLOUR}">'
            f"{_title(f'output committed at {clock_label(event.t)}: {event_details(event)}')}"
            "</path>"
        )
    for event in view.by(instance.id, Kind.RESUMED):
        canvas.add(
            f'<circle cx="{_num(canvas.x(event.t))}" cy="{_num(top + 7)}" r="4" fill="#fff" '
            'stroke="#333">'
            f"{_title(f'resumed at {clock_label(event.t)}: {event_details(event)}')}</circle>"
        )
    _ending(canvas, view, instance, top)


def _notices(canvas: _Canvas, view: HistoryView, instance: Instance, top: float) -> None:
    for notice in view.notices:
        if instance not in view.notice_targets(notice):
            continue
        issued = notice.issued.t
        title = f"notice {notice.id} ({notice.kind or notice.action}) at {clock_label(issued)}"
        x = canvas.x(issued)
        canvas.add(
            f'<path d="M{_num(x - 5)} {_num(top - 1)} h10 l-5 8 z" fill="{NOTICE_COLOUR}">'
            f"{_title(title)}</path>"
        )
        if notice.advisory:
            continue
        canvas.span(
            issued,
            notice.deadline,
            top,
            LANE - 6,
            f'fill="{NOTICE_COLOUR}" fill-opacity="0.12"',
            f"{title}, deadline {clock_label(notice.deadline)} "
            f"({format_duration(round(notice.deadline - issued, 3))} of notice)",
        )
        xd = _num(canvas.x(notice.deadline))
        canvas.add(
            f'<line x1="{xd}" y1="{_num(top)}" x2="{xd}" y2="{_num(top + LANE - 6)}" '
            f'stroke="{VIOLATION_COLOUR}" stroke-width="1.5" stroke-dasharray="4 2">'
            f"{_title(f'deadline of notice {notice.id} at {clock_label(notice.deadline)}')}"
            "</line>"
        )
    for seen in view.by(instance.id, Kind.NOTICE_SEEN):
        canvas.add(
            f'<circle cx="{_num(canvas.x(seen.t))}" cy="{_num(top + 7)}" r="3" '
            f'fill="{NOTICE_COLOUR}">'
            f"{_title(f'notice seen at {clock_label(seen.t)}: {event_details(seen)}')}</circle>"
        )


def _checkpoints(canvas: _Canvas, view: HistoryView, instance: Instance, top: float) -> None:
    """Each checkpoint on each tier: a bar from its start to durable (or failed, or cut off)."""
    end = instance.end if instance.ended is not None else view.run_end
    outcomes: dict[tuple[str, str], Event] = {}
    uploads: dict[str, Event] = {}
    for event in view.by(instance.id, Kind.CHECKPOINT_DURABLE, Kind.CHECKPOINT_FAILED):
        key = (str(event.data.get("checkpoint_id")), str(event.data.get("tier", "s3")))
        outcomes.setdefault(key, event)
    for event in view.by(instance.id, Kind.CHECKPOINT_UPLOAD_STARTED):
        uploads.setdefault(str(event.data.get("checkpoint_id")), event)
    for started in view.by(instance.id, Kind.CHECKPOINT_STARTED):
        ident = str(started.data.get("checkpoint_id"))
        what = f"checkpoint {ident} ({started.data.get('reason', '')})"
        for row, tier in enumerate(TIER_ROWS):
            y = top + 13 + row * 8
            outcome = outcomes.get((ident, tier))
            colour = TIER_COLOURS[tier]
            if outcome is not None and outcome.kind == Kind.CHECKPOINT_DURABLE:
                took = format_duration(round(outcome.t - started.t, 3))
                canvas.span(
                    started.t, outcome.t, y, 6, f'fill="{colour}"',
                    f"{what}: durable on {tier} after {took}", least=3,
                )  # fmt: skip
            elif outcome is not None:
                canvas.span(
                    started.t, outcome.t, y, 6,
                    f'fill="{colour}" fill-opacity="0.3" stroke="{VIOLATION_COLOUR}"',
                    f"{what}: failed on {tier}: {outcome.data.get('error', '')}", least=3,
                )  # fmt: skip
            elif tier == "s3" and ident in uploads:
                canvas.span(
                    uploads[ident].t, end, y, 6,
                    f'fill="none" stroke="{colour}" stroke-dasharray="3 2"',
                    f"{what}: upload started, never durable",
                )  # fmt: skip


def _ending(canvas: _Canvas, view: HistoryView, instance: Instance, top: float) -> None:
    ended = instance.killed or instance.ended
    if ended is None:
        return
    x, y = canvas.x(ended.t), top + 7
    if ended.kind == Kind.INSTANCE_KILLED:
        title = f"killed at {clock_label(ended.t)}: {event_details(ended)}"
        canvas.add(
            f'<path d="M{_num(x - 5)} {_num(y - 5)} l10 10 m0 -10 l-10 10" '
            f'stroke="{VIOLATION_COLOUR}" stroke-width="2.5">{_title(title)}</path>'
        )
    else:
        title = f"exited at {clock_label(ended.t)}: {event_details(ended)}"
        canvas.add(
            f'<rect x="{_num(x - 1.5)}" y="{_num(y - 6)}" width="3" height="12" fill="#333">'
            f"{_title(title)}</rect>"
        )


def _violations(
    canvas: _Canvas,
    view: HistoryView,
    record: Mapping[str, Any],
    lanes: Mapping[str, float],
    lanes_top: float,
) -> None:
    """A red ring on every event a violation cites, where and when it happened."""
    by_seq = {e.seq: e for e in view.events}
    # Known-bad checks too: the point is to show where a guarantee broke, expected or not.
    for check in record.get("checks") or ():
        if check_status(check) != "failed":
            continue
        for violation in check.get("violations") or ():
            for seq in sorted(cited_seqs([{"violations": [violation]}])):
                event = by_seq.get(seq)
                if event is None:
                    continue
                top = lanes.get(event.instance or "", lanes_top)
                x, y = _num(canvas.x(event.t)), _num(top + LANE / 2 - 3)
                title = (
                    f"{check_label(check)}: {violation.get('message', '')} (#{seq} {event.kind})"
                )
                canvas.add(
                    f'<g class="violation"><circle cx="{x}" cy="{y}" r="9" fill="none" '
                    f'stroke="{VIOLATION_COLOUR}" stroke-width="2.5"/>'
                    f'<text x="{x}" y="{_num(float(y) + 4)}" text-anchor="middle" '
                    f'font-weight="bold" fill="{VIOLATION_COLOUR}">!</text>{_title(title)}</g>'
                )


def legend_html() -> str:
    """The key to the timeline's marks, as HTML with small inline SVG swatches."""
    items = [
        *(
            (f'<rect width="18" height="8" y="3" fill="{c}"/>', f"checkpoint on {tier}")
            for tier, c in TIER_COLOURS.items()
        ),
        ('<rect width="18" height="8" y="3" fill="none" stroke="#2e8b57" '
         'stroke-dasharray="3 2"/>', "upload never durable"),
        (f'<path d="M4 2 h10 l-5 8 z" fill="{NOTICE_COLOUR}"/>', "notice issued"),
        (f'<circle cx="9" cy="7" r="3" fill="{NOTICE_COLOUR}"/>', "notice seen"),
        (f'<line x1="9" y1="0" x2="9" y2="14" stroke="{VIOLATION_COLOUR}" stroke-width="1.5" '
         'stroke-dasharray="4 2"/>', "deadline"),
        ('<rect width="18" height="14" fill="url(#hatch)"/>', "fault"),
        ('<circle cx="9" cy="7" r="4" fill="#fff" stroke="#333"/>', "resumed"),
        (f'<path d="M9 3 l4 4 l-4 4 l-4 -4 z" fill="{OUTPUT_COLOUR}"/>', "output committed"),
        (f'<path d="M4 2 l10 10 m0 -10 l-10 10" stroke="{VIOLATION_COLOUR}" '
         'stroke-width="2.5"/>', "killed"),
        (f'<circle cx="9" cy="7" r="6" fill="none" stroke="{VIOLATION_COLOUR}" '
         'stroke-width="2"/>', "violation"),
    ]  # fmt: skip
    return "".join(
        f'<span class="key"><svg width="18" height="14">{_DEFS}{mark}</svg> {esc(text)}</span>'
        for mark, text in items
    )


# -- line plots -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: Sequence[tuple[float, float]]
    #: Draw as steps (an empirical distribution) rather than straight segments.
    steps: bool = False
    markers: bool = False
    dashed: bool = False
    #: Listed in the legend (marks that only annotate another series are not).
    legend: bool = True


@dataclass(frozen=True)
class Guide:
    """A labelled vertical (``axis="x"``) or horizontal line, e.g. a cloud's notice."""

    at: float
    label: str
    colour: str = "#666"
    axis: str = "x"


def line_plot(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str] = _num,
    y_format: Callable[[float], str] = _num,
    guides: Iterable[Guide] = (),
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    width: int = 760,
    height: int = 320,
) -> str:
    """A line plot as SVG with axes, guides and a legend."""
    guides = list(guides)
    xs = [x for s in series for x, _ in s.points] + [g.at for g in guides if g.axis == "x"]
    ys = [y for s in series for _, y in s.points] + [g.at for g in guides if g.axis == "y"]
    x0, x1 = x_range or (min(xs, default=0.0), max(xs, default=1.0))
    y0, y1 = y_range or (min([0.0, *ys]), max(ys, default=1.0) * 1.08)
    x1, y1 = max(x1, x0 + 1e-9), max(y1, y0 + 1e-9)
    left, right, top = 64, 16, 30
    listed = [line for line in series if line.legend]
    bottom = 46 + 16 * len(listed)  # the legend goes below the axis label
    clip = f"plot{zlib.crc32(title.encode()):08x}"  # unique per plot on a page
    pw, ph = width - left - right, height - top - 46
    height += bottom - 46

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    parts = [
        f'<text x="{left}" y="18" font-weight="bold">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for tick in _nice_ticks(x0, x1):
        parts.append(
            f'<line x1="{_num(px(tick))}" y1="{top}" x2="{_num(px(tick))}" y2="{top + ph}" '
            f'stroke="#eee"/><text x="{_num(px(tick))}" y="{top + ph + 14}" '
            f'text-anchor="middle" fill="#555">{esc(x_format(tick))}</text>'
        )
    for tick in _nice_ticks(y0, y1):
        parts.append(
            f'<line x1="{left}" y1="{_num(py(tick))}" x2="{left + pw}" y2="{_num(py(tick))}" '
            f'stroke="#eee"/><text x="{left - 4}" y="{_num(py(tick) + 4)}" text-anchor="end" '
            f'fill="#555">{esc(y_format(tick))}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{top + ph + 32}" text-anchor="middle">{esc(x_label)}'
        "</text>"
        f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{esc(y_label)}</text>"
    )
    for guide in guides:
        if guide.axis == "x" and x0 <= guide.at <= x1:
            x = _num(px(guide.at))
            parts.append(
                f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + ph}" stroke="{guide.colour}" '
                f'stroke-dasharray="5 3"/><text x="{x}" y="{top + 12}" fill="{guide.colour}" '
                f'transform="rotate(-90 {x} {top + 12})" text-anchor="end" dy="-3">'
                f"{esc(guide.label)}</text>"
            )
        elif guide.axis == "y" and y0 <= guide.at <= y1:
            y = _num(py(guide.at))
            parts.append(
                f'<line x1="{left}" y1="{y}" x2="{left + pw}" y2="{y}" stroke="{guide.colour}" '
                f'stroke-dasharray="5 3"/><text x="{left + pw - 4}" y="{y}" dy="-4" '
                f'text-anchor="end" fill="{guide.colour}">{esc(guide.label)}</text>'
            )
    parts.append(
        f'<clipPath id="{clip}"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/></clipPath>'
    )
    for line in series:
        parts.append(f'<g clip-path="url(#{clip})">{_series_path(line, px, py)}</g>')
    for index, line in enumerate(listed):
        ly = top + ph + 52 + index * 16
        parts.append(
            f'<line x1="{left + 10}" y1="{ly - 4}" x2="{left + 28}" y2="{ly - 4}" '
            f'stroke="{line.colour}" stroke-width="2.5"/>'
            f'<text x="{left + 32}" y="{ly}">{esc(line.name)}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11"><title>{esc(title)}</title>'
        f"{''.join(parts)}</svg>"
    )


def _series_path(line: Series, px: Callable[[float], float], py: Callable[[float], float]) -> str:
    points = sorted(line.points)
    if not points:
        return ""
    coords: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        if line.steps and i:
            coords.append((px(x), py(points[i - 1][1])))
        coords.append((px(x), py(y)))
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{_num(x)} {_num(y)}" for i, (x, y) in enumerate(coords)
    )
    dash = ' stroke-dasharray="6 3"' if line.dashed else ""
    out = [
        f'<path d="{path}" fill="none" stroke="{line.colour}" stroke-width="2"{dash}>'
        f"{_title(line.name)}</path>"
    ]
    if line.markers:
        out.extend(
            f'<circle cx="{_num(px(x))}" cy="{_num(py(y))}" r="3" fill="{line.colour}">'
            f"{_title(f'{line.name}: {_num(x)}, {_num(y)}')}</circle>"
            for x, y in points
        )
    return "".join(out)


def _nice_ticks(low: float, high: float, most: int = 8) -> list[float]:
    span = max(high - low, 1e-12)
    raw = span / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
