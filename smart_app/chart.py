"""Geometry of the timeline and marker charts (pure): one swimlane per line with a bar per drug or
procedure, failure markers, and the disease's key marker, all on one shared time axis whose ticks
adapt to the span (months, quarters, half-years or years) and whose labels stay inside the SVG."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from smart_app import label_spot

LABEL_WIDTH = 150
WIDTH = 760
RIGHT_MARGIN = 14
LANE = 24
MARKER_HEIGHT = 170
FONT_PX = 12
AXIS_ROW = 22  # the tick labels' row above the lanes
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TICK_STEPS = (1, 2, 3, 6, 12, 24, 60)  # months between labelled ticks, finest first
MIN_TICK_GAP = 62.0  # px between labelled ticks: room for "Sep 2024" at 12 px


def text_width(text: str) -> float:
    """A conservative estimate of the rendered width at FONT_PX in a sans-serif face (the
    browser test measures the real boxes)."""
    return len(text) * FONT_PX * 0.62 + 2


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    anchor: str  # SVG text-anchor: start, middle or end, chosen so the label stays inside
    major: bool  # a year boundary


@dataclass(frozen=True)
class TimeAxis:
    start: date
    end: date
    x0: float = LABEL_WIDTH
    x1: float = WIDTH - RIGHT_MARGIN

    def x(self, day: date) -> float:
        span = max((self.end - self.start).days, 1)
        clamped = min(max(day, self.start), self.end)
        return round(self.x0 + (self.x1 - self.x0) * (clamped - self.start).days / span, 1)

    def step_months(self) -> int:
        """The finest step whose labels do not collide: monthly for a few months, quarterly
        within a couple of years, yearly for long histories."""
        px_per_month = (self.x1 - self.x0) / max((self.end - self.start).days / 30.44, 0.1)
        for step in TICK_STEPS:
            if step * px_per_month >= MIN_TICK_GAP:
                return step
        return TICK_STEPS[-1]

    def ticks(self) -> list[Tick]:
        step = self.step_months()
        first = _month_index(self.start) + (self.start.day > 1)
        if step >= 12:  # on 1 January, every year or every 2 or 5 years
            years = step // 12
            first_year = first // 12 + (first % 12 > 0)
            first = (first_year + (-first_year) % years) * 12
        else:
            first += (-first) % step  # quarters on Jan/Apr/Jul/Oct, half-years on Jan/Jul
        ticks: list[Tick] = []
        shown_year = None
        for index in range(first, _month_index(self.end) + 1, step):
            day = _month_start(index)
            if day > self.end:
                break
            if step >= 12:
                label = str(day.year)
            elif shown_year != day.year or day.month == 1:
                label = f"{MONTHS[day.month - 1]} {day.year}"
            else:
                label = MONTHS[day.month - 1]
            shown_year = day.year
            x = self.x(day)
            half = text_width(label) / 2
            anchor = "middle"
            if x + half > WIDTH - 2:
                anchor = "end"
            elif x - half < 2:
                anchor = "start"
            ticks.append(Tick(x=x, label=label, anchor=anchor, major=day.month == 1))
        return ticks


def axis_for(days: list[date], today: date, *, ongoing: bool = False) -> TimeAxis:
    """From the first event to the last; to today when a line is ongoing or the last event is
    recent (so a delay after a failure shows), otherwise the chart would be mostly empty."""
    if not days:
        return TimeAxis(today - timedelta(days=365), today)
    start, end = min(days), max(days)
    if ongoing or (today - end).days <= 365:
        end = max(end, today)
    pad = timedelta(days=max(14, (end - start).days // 30))
    return TimeAxis(start - pad, end + pad)


def shared_axis(patient: dict[str, Any], today: date) -> TimeAxis:
    """One time scale for lines, procedures, failures and every marker point."""
    lines = patient.get("lines") or []
    days = [date.fromisoformat(x["start"]) for x in lines]
    days += [date.fromisoformat(x["end"]) for x in lines if x.get("end")]
    days += [date.fromisoformat(f["date"]) for f in patient.get("failures") or []]
    for proc in patient.get("procedures") or []:
        days += [date.fromisoformat(proc["start"]), date.fromisoformat(proc["end"])]
    for marker in patient.get("markers") or []:
        days += [date.fromisoformat(p["date"]) for p in marker.get("points") or []]
    return axis_for(days, today, ongoing=any(x.get("end") is None for x in lines))


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str


def place_labels(
    items: list[tuple[float, str]], top: float, row_height: float = 15.0
) -> tuple[list[Label], int]:
    """Labels at given x positions, pushed to a new row when they would overlap a label already
    placed, and anchored so they never run past either edge. Returns the labels and the rows used.
    """
    rows: list[list[tuple[float, float]]] = []
    placed = []
    for x, text in sorted(items):
        width = text_width(text)
        left, anchor = x + 7, "start"  # just right of the marker
        if left + width > WIDTH - 2:
            left, anchor = x - 7 - width, "end"
        left = max(left, 2.0)
        span = (left, left + width)
        row = next(
            (
                i
                for i, used in enumerate(rows)
                if all(span[1] + 6 < a or span[0] > b + 6 for a, b in used)
            ),
            len(rows),
        )
        if row == len(rows):
            rows.append([])
        rows[row].append(span)
        anchor_x = span[0] if anchor == "start" else span[1]
        placed.append(
            Label(x=round(anchor_x, 1), y=top + row * row_height, text=text, anchor=anchor)
        )
    return placed, len(rows)


@dataclass
class Timeline:
    axis: TimeAxis
    ticks: list[Tick] = field(default_factory=list)
    lanes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failure_labels: list[Label] = field(default_factory=list)
    lanes_bottom: int = 0
    height: int = 0


def _bar(axis: TimeAxis, label: str, first: date, last: date, y: int, kind: str) -> dict[str, Any]:
    x = axis.x(first)
    return {
        "drug": label,
        "x": x,
        "width": max(axis.x(last) - x, 3.0),
        "y": y,
        "height": LANE - 8,
        "start": first.isoformat(),
        "end": last.isoformat(),
        "kind": kind,
    }


def timeline(
    lines: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    exposures: list[dict[str, Any]],
    today: date,
    *,
    procedures: list[dict[str, Any]] | None = None,
    axis: TimeAxis | None = None,
) -> Timeline:
    """lines/failures in the JSON shape of `salvage lines`; exposures: source, ingredients,
    start, end (ISO dates) for the bars; procedures: source, label, start, end (a radiotherapy
    course or a prostatectomy is part of its line and gets its own bar)."""
    procedures = procedures or []
    if axis is None:
        axis = shared_axis({"lines": lines, "failures": failures, "procedures": procedures}, today)
    chart = Timeline(axis=axis, ticks=axis.ticks())
    by_source = {e["source"]: e for e in exposures}
    procs_by_source = {p["source"]: p for p in procedures}
    y = AXIS_ROW + 4
    for line in lines:
        lane_top = y
        y += 16  # the lane's title row
        start = date.fromisoformat(line["start"])
        end = date.fromisoformat(line["end"]) if line["end"] else today
        bars = []
        for source in line["sources"]:
            proc = procs_by_source.get(source)
            if proc:
                first, last = date.fromisoformat(proc["start"]), date.fromisoformat(proc["end"])
                bars.append(_bar(axis, proc["label"], first, last, y, "procedure"))
                y += LANE
        if line.get("procedure") and not bars:  # the procedure is known only from the line
            bars.append(_bar(axis, str(line["procedure"]), start, end, y, "procedure"))
            y += LANE
        drugs = line["ingredients"] or ([] if bars else [line["regimen"]])
        for drug in drugs:
            spans = [
                (
                    date.fromisoformat(by_source[s]["start"]),
                    date.fromisoformat(by_source[s]["end"] or today.isoformat()),
                )
                for s in line["sources"]
                if s in by_source and drug in by_source[s]["ingredients"]
            ]
            first = min((a for a, _ in spans), default=start)
            last = max((b for _, b in spans), default=end)
            kind = "maintenance" if line["maintenance"] else "drug"
            bars.append(_bar(axis, drug, first, last, y, kind))
            y += LANE
        chart.lanes.append(
            {
                "number": line["number"],
                "regimen": line["regimen"],
                "maintenance": line["maintenance"],
                "bars": bars,
                "top": lane_top,
                "bottom": y - 4,
                "ongoing": line["end"] is None,
            }
        )
        y += 6
    chart.lanes_bottom = y
    for failure in failures:
        day = date.fromisoformat(failure["date"])
        chart.failures.append(
            {
                "x": axis.x(day),
                "kind": failure["kind"],
                "date": failure["date"],
                "line": failure["line"],
            }
        )
    labels, rows = place_labels(
        [(f["x"], f"{f['kind'].replace('-', ' ')} {f['date']}") for f in chart.failures],
        top=y + 22,
    )
    chart.failure_labels = labels
    chart.height = y + 14 + rows * 15 + 4 if rows else y + 8
    return chart


@dataclass
class MarkerChart:
    label: str
    unit: str
    log: bool
    points: list[dict[str, Any]]
    thresholds: list[dict[str, Any]]
    ticks: list[tuple[float, str]]
    time_ticks: list[Tick] = field(default_factory=list)
    path: str = ""
    plot_bottom: float = 0.0
    note: str = ""
    height: int = MARKER_HEIGHT


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:g}"


def marker_chart(
    marker: dict[str, Any],
    values: list[tuple[date, float, str]],
    axis: TimeAxis,
    thresholds: list[tuple[float, str]],
    confirming: frozenset[str] = frozenset(),
) -> MarkerChart | None:
    """Points for one marker, on a log10 scale when the knowledge base says so (values below the
    marker's floor, e.g. the assay limit, drawn at the floor). Only the thresholds the engine
    says apply to this patient are drawn; the values that confirmed a failure and the nadir are
    marked."""
    if not values:
        return None
    log = bool(marker.get("log_scale"))
    floor = float(marker.get("floor") or 1.0)
    top, bottom = 14.0, MARKER_HEIGHT - 30.0  # the time axis labels sit below the plot
    all_values = [v for _, v, _ in values] + [t for t, _ in thresholds]
    if log:
        low = math.floor(math.log10(floor)) if floor > 0 else 0
        high = max(low + 2, math.ceil(math.log10(max(max(all_values), floor) * 1.5)))
    else:
        low, high = 0.0, (max(all_values) * 1.15) or 1.0

    def y(value: float) -> float:
        v = math.log10(max(value, floor)) if log else value
        return round(bottom - (bottom - top) * (v - low) / (high - low), 1)

    nadirs = {t for t, label in thresholds if _threshold_kind(label) == "nadir"}
    points = []
    nadir_marked = False
    for day, value, source in sorted(values):
        kind = "point"
        if value in nadirs and not nadir_marked:  # the nadir is cited too: it stays the nadir
            kind, nadir_marked = "nadir-point", True
        elif source in confirming:
            kind = "confirming"
        points.append(
            {
                "x": axis.x(day),
                "y": y(value),
                "value": value,
                "date": day.isoformat(),
                "source": source,
                "kind": kind,
            }
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{p['x']},{p['y']}" for i, p in enumerate(points))
    lines = []
    placed: list[label_spot.Box] = []
    line_ys = [y(value) for value, _ in thresholds]
    xy = [(p["x"], p["y"]) for p in points]
    for value, label in sorted(thresholds, key=lambda t: -t[0]):
        line_y = y(value)
        width = text_width(label)
        found = label_spot.spot(
            line_y,
            width,
            points=xy,
            lines=line_ys,
            x_range=(axis.x0, axis.x1),
            y_range=(top, bottom),
            placed=placed,
        )
        placed.append(label_spot.text_box(found[0], found[1], width))
        spot = found
        lines.append(
            {
                "y": line_y,
                "label": label,
                "value": value,
                "text_x": round(spot[0], 1),
                "text_y": spot[1],
                "kind": _threshold_kind(label),
            }
        )
    if log:
        ticks = [(y(10.0**p), _number(10.0**p)) for p in range(int(low), int(high) + 1)]
    else:
        step = _nice_step(high / 3)
        ticks = [(y(step * i), f"{step * i:g}") for i in range(int(high / step) + 1)]
    return MarkerChart(
        label=str(marker.get("label", "")),
        unit=str(marker.get("unit", "")),
        log=log,
        points=points,
        thresholds=lines,
        ticks=ticks,
        time_ticks=axis.ticks(),
        path=path,
        plot_bottom=bottom,
        note=str(marker.get("note") or ""),
    )


def _threshold_kind(label: str) -> str:
    return "nadir" if label.startswith("nadir") and "+" not in label else "threshold"


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, so a linear axis reads 0, 0.5, 1.0 ... not 0, 0.37 ..."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)
