"""Where a marker chart's threshold label goes (pure geometry): a spot where its text box covers
no data point, no stretch of the line joining the points, no threshold line (its own included:
the label sits above or below it) and no label already placed. Spots near the line's ends are
tried first, then spots along it; when none is free, the one with the fewest overlaps."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

TEXT_ASCENT = 11.0  # px above the baseline a 12 px label reaches
TEXT_DESCENT = 3.0
POINT_RADIUS = 5.0  # the drawn circle plus a margin
ALONG = 6  # spots tried between the two ends of the threshold line


@dataclass(frozen=True, slots=True)
class Box:
    left: float
    right: float
    top: float
    bottom: float

    def overlaps(self, other: Box) -> bool:
        return (
            self.left < other.right
            and other.left < self.right
            and self.top < other.bottom
            and other.top < self.bottom
        )


def text_box(left: float, baseline: float, width: float) -> Box:
    return Box(left, left + width, baseline - TEXT_ASCENT, baseline + TEXT_DESCENT)


def crosses(box: Box, x1: float, y1: float, x2: float, y2: float) -> bool:
    """Whether the segment (x1, y1)-(x2, y2) passes through the box (Liang-Barsky clipping)."""
    dx, dy = x2 - x1, y2 - y1
    low, high = 0.0, 1.0
    for p, q in (
        (-dx, x1 - box.left),
        (dx, box.right - x1),
        (-dy, y1 - box.top),
        (dy, box.bottom - y1),
    ):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def overlaps(
    box: Box,
    points: Sequence[tuple[float, float]],
    lines: Sequence[float],
    x_range: tuple[float, float],
    placed: Sequence[Box],
) -> int:
    """How many things the box would cover: points, stretches of the data line, threshold
    lines (horizontal, across x_range) and labels already placed."""
    hits = sum(
        box.overlaps(Box(x - POINT_RADIUS, x + POINT_RADIUS, y - POINT_RADIUS, y + POINT_RADIUS))
        for x, y in points
    )
    hits += sum(crosses(box, *a, *b) for a, b in itertools.pairwise(points))
    hits += sum(
        box.top <= y <= box.bottom and box.left < x_range[1] and box.right > x_range[0]
        for y in lines
    )
    hits += sum(box.overlaps(other) for other in placed)
    return hits


def spot(
    line_y: float,
    width: float,
    *,
    points: Sequence[tuple[float, float]],
    lines: Sequence[float],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    placed: Sequence[Box] = (),
) -> tuple[float, float]:
    """(left, baseline) of the label of the threshold line at line_y: above or below it, at its
    right end, its left end or along it; inside x_range and y_range (the plot)."""
    x0, x1 = x_range
    right, left = x1 - 2 - width, x0 + 4
    lefts = [right, left] + [right - (right - left) * i / (ALONG + 1) for i in range(1, ALONG + 1)]
    baselines = (
        line_y - 4,
        line_y + TEXT_ASCENT + 3,
        line_y - 4 - 13,
        line_y + TEXT_ASCENT + 3 + 13,
    )
    best: tuple[int, int, tuple[float, float]] | None = None
    order = 0
    for base in baselines:
        for x in lefts:
            box = text_box(x, base, width)
            if box.top < y_range[0] - 2 or box.bottom > y_range[1] + 5 or x < x0:
                continue
            hits = overlaps(box, points, lines, x_range, placed)
            if hits == 0:
                return (x, base)
            if best is None or (hits, order) < best[:2]:
                best = (hits, order, (x, base))
            order += 1
    return best[2] if best else (right, line_y - 4)
