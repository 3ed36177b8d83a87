"""Threshold labels of the marker charts go where no point, no stretch of the data line, no
threshold line and no other label is (ux finding 6)."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from smart_app import chart, label_spot

X_RANGE = (150.0, 746.0)
Y_RANGE = (14.0, 140.0)


def _free(box: label_spot.Box, points, lines, placed=()) -> bool:  # type: ignore[no-untyped-def]
    return label_spot.overlaps(box, points, lines, X_RANGE, placed) == 0


def test_a_segment_through_a_box_is_seen_and_one_beside_it_is_not() -> None:
    box = label_spot.Box(100, 200, 50, 64)
    assert label_spot.crosses(box, 50, 0, 250, 120)  # diagonal through the middle
    assert label_spot.crosses(box, 150, 10, 150, 100)  # vertical through it
    assert not label_spot.crosses(box, 50, 10, 250, 30)  # above it
    assert not label_spot.crosses(box, 210, 0, 260, 120)  # right of it


def test_the_right_end_is_kept_when_it_is_free() -> None:
    left, base = label_spot.spot(
        80.0, 60.0, points=[(200.0, 120.0)], lines=[80.0], x_range=X_RANGE, y_range=Y_RANGE
    )
    assert (left, base) == (X_RANGE[1] - 2 - 60.0, 76.0)


def test_a_label_moves_off_the_data_line_crossing_the_right_end() -> None:
    """A rising line that crosses the threshold's right end, above and below it."""
    points = [(600.0, 138.0), (700.0, 60.0), (740.0, 20.0)]
    width = 80.0
    left, base = label_spot.spot(
        90.0, width, points=points, lines=[90.0], x_range=X_RANGE, y_range=Y_RANGE
    )
    box = label_spot.text_box(left, base, width)
    assert _free(box, points, [90.0])
    assert not _free(label_spot.text_box(X_RANGE[1] - 2 - width, 86.0, width), points, [90.0])


def test_two_close_thresholds_do_not_share_a_spot_or_cover_each_others_line() -> None:
    lines = [60.0, 72.0]
    placed: list[label_spot.Box] = []
    for line_y in lines:
        left, base = label_spot.spot(
            line_y, 90.0, points=[], lines=lines, x_range=X_RANGE, y_range=Y_RANGE, placed=placed
        )
        box = label_spot.text_box(left, base, 90.0)
        assert _free(box, [], lines, placed)
        placed.append(box)


def test_when_nothing_is_free_the_spot_with_fewest_overlaps_is_chosen() -> None:
    crowded = [(float(x), float(y)) for x in range(150, 750, 8) for y in range(14, 141, 8)]
    left, base = label_spot.spot(
        70.0, 60.0, points=crowded, lines=[70.0], x_range=X_RANGE, y_range=Y_RANGE
    )
    assert X_RANGE[0] <= left <= X_RANGE[1] and Y_RANGE[0] - 2 <= base - 11


PSA = {"kind": "psa", "label": "PSA", "unit": "ng/mL", "log_scale": False}


@pytest.mark.parametrize("seed", range(8))
def test_marker_chart_labels_cover_no_point_or_line_segment(seed: int) -> None:
    """PSA series zig-zagging across two thresholds, as after radiotherapy (nadir, nadir + 2)."""
    axis = chart.TimeAxis(date(2020, 1, 1), date(2024, 1, 1))
    span = date(2024, 1, 1) - date(2020, 1, 1)
    values = [
        (date(2020, 1, 1) + span * i / 12, 0.4 + ((i * (seed + 3)) % 7) * 0.5, f"O/{i}")
        for i in range(12)
    ]
    m = chart.marker_chart(PSA, values, axis, [(2.4, "nadir + 2"), (0.4, "nadir")])
    assert m is not None
    points = [(p["x"], p["y"]) for p in m.points]
    ys = [t["y"] for t in m.thresholds]
    boxes = [
        label_spot.text_box(t["text_x"], t["text_y"], chart.text_width(t["label"]))
        for t in m.thresholds
    ]
    for box, other in itertools.permutations(boxes, 2):
        assert not box.overlaps(other)
    for box in boxes:
        assert label_spot.overlaps(box, points, ys, (axis.x0, axis.x1), []) == 0, (seed, box)
