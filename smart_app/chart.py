"""Geometry of the timeline chart (pure): one swimlane per line, a bar per drug, failure markers,
and the disease's key marker on the same time axis (log scale for HIV-1 RNA)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

LABEL_WIDTH = 170
WIDTH = 760
LANE = 26
MARKER_HEIGHT = 140


@dataclass(frozen=True)
class TimeAxis:
    start: date
    end: date
    x0: float = LABEL_WIDTH
    x1: float = WIDTH - 10

    def x(self, day: date) -> float:
        span = max((self.end - self.start).days, 1)
        clamped = min(max(day, self.start), self.end)
        return round(self.x0 + (self.x1 - self.x0) * (clamped - self.start).days / span, 1)

    def ticks(self) -> list[tuple[float, str]]:
        years = range(
            self.start.year + (self.start.month > 1 or self.start.day > 1), self.end.year + 1
        )
        return [(self.x(date(y, 1, 1)), str(y)) for y in years]


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


@dataclass
class Timeline:
    axis: TimeAxis
    lanes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    height: int = 0


def timeline(
    lines: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    exposures: list[dict[str, Any]],
    today: date,
) -> Timeline:
    """lines/failures in the JSON shape of `salvage lines`; exposures: source, ingredients,
    start, end (ISO dates) for the bars."""
    days = [date.fromisoformat(x["start"]) for x in lines]
    days += [date.fromisoformat(x["end"]) for x in lines if x["end"]]
    days += [date.fromisoformat(f["date"]) for f in failures]
    axis = axis_for(days, today, ongoing=any(x["end"] is None for x in lines))
    chart = Timeline(axis=axis)
    by_source = {e["source"]: e for e in exposures}
    y = 24
    for line in lines:
        lane_top = y
        y += 16  # the lane's title row
        start = date.fromisoformat(line["start"])
        end = date.fromisoformat(line["end"]) if line["end"] else today
        bars = []
        for drug in line["ingredients"] or [line["regimen"]]:
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
            x = axis.x(first)
            bars.append(
                {
                    "drug": drug,
                    "x": x,
                    "width": max(axis.x(last) - x, 3.0),
                    "y": y,
                    "height": LANE - 8,
                    "start": first.isoformat(),
                    "end": last.isoformat(),
                }
            )
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
        y += 8
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
    chart.height = y + 24
    return chart


@dataclass
class MarkerChart:
    label: str
    unit: str
    log: bool
    points: list[dict[str, Any]]
    thresholds: list[dict[str, Any]]
    ticks: list[tuple[float, str]]
    height: int = MARKER_HEIGHT


def marker_chart(
    marker: dict[str, Any],
    values: list[tuple[date, float, str]],
    axis: TimeAxis,
    thresholds: list[tuple[float, str]],
) -> MarkerChart | None:
    """Points for one marker, on a log10 scale when the knowledge base says so (values below the
    marker's floor, e.g. the assay limit, drawn at the floor)."""
    if not values:
        return None
    log = bool(marker.get("log_scale"))
    floor = float(marker.get("floor") or 1.0)
    top, bottom = 30.0, MARKER_HEIGHT - 12.0  # the title sits above the plot
    all_values = [v for _, v, _ in values] + [t for t, _ in thresholds]
    if log:
        low, high = 1.0, max(5.0, math.ceil(math.log10(max(max(all_values), floor))))
    else:
        low, high = 0.0, max(all_values) * 1.15 or 1.0

    def y(value: float) -> float:
        v = math.log10(max(value, floor)) if log else value
        return round(bottom - (bottom - top) * (v - low) / (high - low), 1)

    points = [
        {"x": axis.x(day), "y": y(value), "value": value, "date": day.isoformat(), "source": source}
        for day, value, source in sorted(values)
    ]
    lines = [{"y": y(value), "label": label, "value": value} for value, label in thresholds]
    if log:
        ticks = [(y(10.0**p), f"10^{p}") for p in range(int(low) + 1, int(high) + 1)]
    else:
        ticks = [(y(high * f / 1.15), f"{high * f / 1.15:.2g}") for f in (0.0, 0.5, 1.0)]
    return MarkerChart(
        label=str(marker.get("label", "")),
        unit=str(marker.get("unit", "")),
        log=log,
        points=points,
        thresholds=lines,
        ticks=ticks,
    )
