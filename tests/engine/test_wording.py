"""One helper for counted nouns (ux finding 5), also a Jinja filter on the SMART screen."""

from __future__ import annotations

import pytest

from salvage.engine import factors
from salvage.engine.wording import counted, sentence


@pytest.mark.parametrize(
    ("n", "singular", "plural", "expected"),
    [
        (1, "line", None, "1 line"),
        (0, "line", None, "0 lines"),
        (2, "failure", None, "2 failures"),
        (1, "analysis", "analyses", "1 analysis"),
        (3, "analysis", "analyses", "3 analyses"),
    ],
)
def test_counted(n: int, singular: str, plural: str | None, expected: str) -> None:
    assert counted(n, singular, plural) == expected


def test_ages_read_in_the_right_number() -> None:
    assert factors.age_text(1) == "1 day old"
    assert factors.age_text(45) == "45 days old"
    assert factors.age_text(61) == "2 months old"


def test_sentence_keeps_the_rest_of_the_text() -> None:
    assert sentence("the HIV-1 RNA") == "The HIV-1 RNA" and sentence("") == ""
