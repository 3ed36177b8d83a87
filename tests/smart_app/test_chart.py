"""Geometry of the timeline and marker charts."""

from __future__ import annotations

from datetime import date

from smart_app import chart

LINES = [
    {
        "number": 1,
        "regimen": "R-CHOP",
        "ingredients": ["rituximab", "vincristine"],
        "start": "2023-01-01",
        "end": "2023-03-01",
        "maintenance": False,
        "sources": ["A/1", "A/2"],
    },
    {
        "number": 2,
        "regimen": "R-ICE",
        "ingredients": ["ifosfamide"],
        "start": "2024-01-01",
        "end": None,
        "maintenance": False,
        "sources": ["A/3"],
    },
]
EXPOSURES = [
    {"source": "A/1", "ingredients": ["rituximab"], "start": "2023-01-01", "end": "2023-03-01"},
    {"source": "A/2", "ingredients": ["vincristine"], "start": "2023-01-01", "end": "2023-02-01"},
    {"source": "A/3", "ingredients": ["ifosfamide"], "start": "2024-01-01", "end": None},
]


def test_the_axis_maps_dates_linearly_and_clamps() -> None:
    axis = chart.TimeAxis(date(2020, 1, 1), date(2021, 1, 1), 100, 466)
    assert axis.x(date(2020, 1, 1)) == 100
    assert axis.x(date(2021, 1, 1)) == 466
    assert axis.x(date(2020, 7, 2)) == 283.0
    assert axis.x(date(2019, 1, 1)) == 100 and axis.x(date(2030, 1, 1)) == 466


def test_lanes_do_not_overlap_and_bars_follow_their_exposures() -> None:
    t = chart.timeline(
        LINES, [{"kind": "relapse", "date": "2023-09-01", "line": 1}], EXPOSURES, date(2024, 6, 1)
    )
    first, second = t.lanes
    assert first["bottom"] < second["top"]
    ritux, vincristine = first["bars"]
    assert ritux["y"] > first["top"] + 12  # below the lane title
    assert vincristine["width"] < ritux["width"]  # stopped earlier
    assert second["ongoing"] and second["bars"][0]["end"] == "2024-06-01"
    assert t.failures[0]["x"] == t.axis.x(date(2023, 9, 1))
    assert all(b["width"] >= 3 for lane in t.lanes for b in lane["bars"])


HIV_RNA = {"kind": "hiv-rna", "label": "HIV-1 RNA", "log_scale": True, "floor": 20}
PSA = {"kind": "psa", "label": "PSA", "log_scale": False, "floor": None}


def test_hiv_rna_is_on_a_log_scale_with_the_200_threshold_between_100_and_1000() -> None:
    axis = chart.TimeAxis(date(2020, 1, 1), date(2022, 1, 1))
    m = chart.marker_chart(
        HIV_RNA,
        [(date(2020, 6, 1), 20.0, "O/1"), (date(2021, 6, 1), 5000.0, "O/2")],
        axis,
        [(200.0, "threshold")],
    )
    ticks = dict((label, y) for y, label in m.ticks)
    (line,) = m.thresholds
    assert m.log and ticks["10^3"] < line["y"] < ticks["10^2"]
    low, high = m.points
    assert low["y"] > high["y"]  # larger values are higher up


def test_values_below_20_copies_are_drawn_at_the_floor() -> None:
    axis = chart.TimeAxis(date(2020, 1, 1), date(2022, 1, 1))
    m = chart.marker_chart(
        HIV_RNA, [(date(2020, 6, 1), 0.0, "O/1"), (date(2020, 7, 1), 20.0, "O/2")], axis, []
    )
    assert m.points[0]["y"] == m.points[1]["y"]


def test_no_values_means_no_marker_chart() -> None:
    assert (
        chart.marker_chart(PSA, [], chart.TimeAxis(date(2020, 1, 1), date(2021, 1, 1)), []) is None
    )
