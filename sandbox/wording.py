"""Counted nouns on the sandbox's screens ("1 order", "2 orders"). The sandbox imports nothing of
the product (DESIGN.md), so it keeps this small copy of salvage/engine/wording.py."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
