"""Kaplan-Meier estimates with right censoring, by lifelines (a maintained survival library)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    n: int
    events: int
    median: float | None  # days; None when the curve never falls to one half
    points: list[tuple[float, float]]  # (day, probability still without the event)


def kaplan_meier(observations: list[tuple[int, bool]]) -> Estimate:
    """observations: (days, event happened); False means censored at that day."""
    n = len(observations)
    events = sum(1 for _, event in observations if event)
    if n == 0:
        return Estimate(0, 0, None, [])
    from lifelines import KaplanMeierFitter

    fitter = KaplanMeierFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines warns on tiny groups; the n is reported
        fitter.fit([d for d, _ in observations], [e for _, e in observations])
    median = float(fitter.median_survival_time_)
    frame = fitter.survival_function_
    points = [
        (float(t), round(float(s), 6)) for t, s in zip(frame.index, frame.iloc[:, 0], strict=True)
    ]
    return Estimate(n, events, None if math.isinf(median) else median, points)
