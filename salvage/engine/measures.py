"""Place a reported value on one side of a threshold, honouring the lab's comparator (<20, >59)."""

from __future__ import annotations

from typing import Literal

Side = Literal["at-or-above", "below", "indeterminate"]


def side(value: float, comparator: str | None, threshold: float) -> Side:
    """Whether the true value is at or above the threshold, below it, or cannot be placed.

    "<x" means the true value is below x, so it is below any threshold >= x; ">x" means it is above
    x, so it is at or above any threshold <= x. Anything else is indeterminate, never a failure.
    """
    if comparator is None:
        return "at-or-above" if value >= threshold else "below"
    if comparator == "<":
        return "below" if value <= threshold else "indeterminate"
    if comparator == "<=":
        return "below" if value < threshold else "indeterminate"
    if comparator in (">", ">="):
        return "at-or-above" if value >= threshold else "indeterminate"
    return "indeterminate"


def exceeds(value: float, comparator: str | None, threshold: float) -> bool | None:
    """Whether the true value is strictly above the threshold; None when it cannot be told."""
    if comparator is None:
        return value > threshold
    if comparator in ("<", "<="):
        return False if value <= threshold else None
    if comparator == ">":
        return True if value >= threshold else None
    if comparator == ">=":
        return True if value > threshold else None
    return None
