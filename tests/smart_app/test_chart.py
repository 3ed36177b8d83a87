"""Geometry of the timeline and marker charts."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

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
    assert m.log and ticks["1,000"] < line["y"] < ticks["100"]
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


@pytest.mark.parametrize(
    ("start", "end", "step", "first_labels"),
    [
        (date(2023, 2, 20), date(2023, 8, 10), 1, ["Mar 2023", "Apr", "May"]),
        (date(2022, 1, 10), date(2022, 12, 20), 2, ["Mar 2022", "May", "Jul"]),
        (date(2021, 11, 1), date(2023, 10, 1), 3, ["Jan 2022", "Apr", "Jul"]),
        (date(2017, 12, 1), date(2021, 2, 1), 6, ["Jan 2018", "Jul", "Jan 2019"]),
        (date(2014, 3, 1), date(2024, 3, 1), 24, ["2016", "2018", "2020"]),
    ],
)
def test_ticks_adapt_to_the_span(start, end, step, first_labels) -> None:
    axis = chart.TimeAxis(start, end)
    ticks = axis.ticks()
    assert axis.step_months() == step
    assert [t.label for t in ticks][:3] == first_labels
    gaps = [b.x - a.x for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= chart.MIN_TICK_GAP - 6  # months differ in length by a few px


def test_a_one_year_timeline_has_several_ticks() -> None:
    axis = chart.axis_for([date(2022, 2, 1), date(2022, 9, 27)], date(2026, 1, 1))
    assert len(axis.ticks()) >= 4


def test_tick_and_failure_labels_stay_inside_the_chart() -> None:
    axis = chart.TimeAxis(date(2020, 1, 20), date(2020, 12, 31))
    assert all(t.anchor == "end" for t in axis.ticks() if t.x > chart.WIDTH - 30)
    labels, rows = chart.place_labels(
        [
            (axis.x(date(2020, 12, 20)), "biochemical-recurrence 2020-12-20"),
            (axis.x(date(2020, 12, 1)), "relapse 2020-12-01"),
        ],
        top=100,
    )
    assert rows == 2  # the second label would overlap the first: it goes to a new row
    for label in labels:
        left = label.x - (chart.text_width(label.text) if label.anchor == "end" else 0)
        assert 0 <= left and left + chart.text_width(label.text) <= chart.WIDTH


def test_a_radiotherapy_course_gets_its_own_bar() -> None:
    line = {
        "number": 1,
        "regimen": "Radiotherapy + leuprolide",
        "ingredients": ["leuprolide"],
        "start": "2018-02-20",
        "end": "2018-08-06",
        "maintenance": False,
        "procedure": "radiotherapy",
        "sources": ["MR/1", "Procedure/rt"],
    }
    procedures = [
        {
            "source": "Procedure/rt",
            "kind": "radiotherapy",
            "label": "Radiotherapy",
            "start": "2018-03-05",
            "end": "2018-04-20",
        }
    ]
    exposures = [
        {
            "source": "MR/1",
            "ingredients": ["leuprolide"],
            "start": "2018-02-20",
            "end": "2018-08-06",
        }
    ]
    t = chart.timeline([line], [], exposures, date(2020, 1, 1), procedures=procedures)
    kinds = [(b["kind"], b["drug"]) for b in t.lanes[0]["bars"]]
    assert kinds == [("procedure", "Radiotherapy"), ("drug", "leuprolide")]


def test_only_the_given_thresholds_are_drawn_and_confirming_values_are_marked() -> None:
    axis = chart.TimeAxis(date(2018, 1, 1), date(2021, 1, 1))
    values = [
        (date(2018, 6, 1), 0.4, "O/1"),
        (date(2020, 6, 1), 2.6, "O/2"),
        (date(2020, 9, 1), 3.1, "O/3"),
    ]
    m = chart.marker_chart(
        PSA,
        values,
        axis,
        [(0.4, "nadir 0.4"), (2.4, "nadir + 2 = 2.4 (Phoenix)")],
        frozenset({"O/1", "O/2", "O/3"}),
    )
    assert [t["kind"] for t in m.thresholds] == ["threshold", "nadir"]
    assert [p["kind"] for p in m.points] == ["nadir-point", "confirming", "confirming"]
    first, second = m.thresholds
    assert abs(first["text_y"] - second["text_y"]) >= 13  # labels do not overlap
