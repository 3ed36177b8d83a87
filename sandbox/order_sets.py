"""The order pick-list grouped as EHRs group it: the order sets of the patient's diagnoses first
(matched by words against the patient's conditions), the rest under "Other orders"."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

OTHER = "Other orders"
# Conditions that say they are not the patient's diagnosis (R4 condition-ver-status).
NOT_A_DIAGNOSIS = frozenset({"refuted", "entered-in-error"})


def condition_texts(conditions: Iterable[dict[str, Any]]) -> list[str]:
    """The words a Condition is recorded with: its text and its codings' displays."""
    texts = []
    for condition in conditions:
        verification = (condition.get("verificationStatus") or {}).get("coding") or [{}]
        if verification[0].get("code") in NOT_A_DIAGNOSIS:
            continue
        code = condition.get("code") or {}
        texts += [code.get("text") or ""]
        texts += [c.get("display") or "" for c in code.get("coding") or [] if isinstance(c, dict)]
    return [t for t in texts if t]


def _mentions(words: Iterable[str], texts: list[str]) -> bool:
    joined = " ".join(texts).lower()
    return any(re.search(rf"(?<!\w){re.escape(w.lower())}(?!\w)", joined) for w in words)


def groups(catalog: dict[str, Any], texts: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(group label, [(option value, label)])]: the matching order sets in catalog order, then
    every order not listed yet under "Other orders" (each order offered once)."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    listed: set[str] = set()
    for order_set in catalog.get("order_sets") or []:
        if not _mentions(order_set.get("words") or [], texts):
            continue
        items = [
            (f"regimen:{n}", n) for n in order_set.get("regimens") or [] if n in catalog["regimens"]
        ]
        items += [(f"drug:{n}", n) for n in order_set.get("drugs") or [] if n in catalog["drugs"]]
        items = [(value, label) for value, label in items if value not in listed]
        listed |= {value for value, _ in items}
        if items:
            out.append((order_set["name"], items))
    rest = [(f"regimen:{n}", n) for n in catalog["regimens"]]
    rest += [(f"drug:{n}", n) for n in catalog["drugs"]]
    rest = [(value, label) for value, label in rest if value not in listed]
    if rest:
        out.append((OTHER, rest))
    return out
