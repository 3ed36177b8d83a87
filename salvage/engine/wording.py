"""Counted nouns for every output: "1 line", "2 lines", never "1 lines"."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """n with the noun in the number it needs; plural defaults to singular + "s"."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def sentence(text: str) -> str:
    """The text with its first letter upper case (the rest kept: drug names, 'HIV-1')."""
    return text[:1].upper() + text[1:]
