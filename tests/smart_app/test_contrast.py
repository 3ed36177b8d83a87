"""The screen's text colours meet WCAG 2.1 AA contrast (4.5:1 for body text) on the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import smart_app

CSS = (Path(smart_app.__file__).parent / "static" / "app.css").read_text()


def _colour(name: str) -> str:
    return re.search(rf"{re.escape(name)}:\s*(#[0-9a-fA-F]{{6}})", CSS).group(1)


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(
    ("foreground", "background"),
    [("--fg", "--bg"), ("--accent", "--bg"), ("--muted", "--bg"), ("--warn", "--bg")],
)
def test_text_colours_meet_wcag_aa(foreground: str, background: str) -> None:
    assert contrast(_colour(foreground), _colour(background)) >= 4.5


def test_the_contrast_formula_matches_known_values() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#777777", "#ffffff") < 4.5  # a grey that fails AA
