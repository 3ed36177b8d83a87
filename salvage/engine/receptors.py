"""Breast cancer receptor status from coded results (ER, PR, HER2): the most recent of each."""

from __future__ import annotations

import re
from dataclasses import dataclass

from salvage.engine.model import Measurement, PatientRecord
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True)
class Status:
    value: str  # positive | negative | unknown
    sources: tuple[str, ...]
    text: str


def _result(m: Measurement, kb: KnowledgeBase, *, hormone: bool = False) -> str:
    """positive / negative from the coded answer or the whole text; else from the first word of
    a text result ("negative (<1 %)", "Positive, 95 %"), after the receptor's name for ER/PR
    ("ER: positive"); else, for ER/PR, from the share of stained nuclei ("ER 90% strong");
    unknown when equivocal or unreadable."""
    answers = kb.answers
    said = answers.reading(m.codes, m.raw)
    if said != "unknown" or not m.raw:
        return said
    text = m.raw.strip().lower()
    if hormone and answers.receptor_label:
        text = re.sub(answers.receptor_label, "", text, count=1)
    first = re.split(r"[^a-z ]", text, maxsplit=1)[0].strip()
    said = answers.reading(frozenset(), first)
    if said != "unknown" or not hormone or answers.receptor_positive_from is None:
        return said
    shares = list(re.finditer(answers.receptor_percent, text))
    if answers.receptor_ambiguous and re.search(answers.receptor_ambiguous, text):
        return "unknown"  # a range or a hedge ("0-5%", "~1%"): either side of the cut-off
    if len(shares) != 1:
        return "unknown"  # no share, or several ("ER 90%, PR 0%" in one result): not guessed
    share = float(shares[0]["pct"].replace(",", "."))
    below = shares[0]["below"] is not None
    if below and share <= answers.receptor_positive_from:
        return "negative"
    if below:
        return "unknown"  # "<5 %" could be either side of the threshold
    return "positive" if share >= answers.receptor_positive_from else "negative"


def _latest(record: PatientRecord, kind: str) -> Measurement | None:
    found = [m for m in record.measurements if m.kind == kind]
    return max(found, key=lambda m: m.when) if found else None


def hormone_receptor(record: PatientRecord, kb: KnowledgeBase) -> Status:
    """Positive when ER or PR is positive; negative when both are negative."""
    er, pr = _latest(record, "estrogen-receptor"), _latest(record, "progesterone-receptor")
    results = {
        name: (m, _result(m, kb, hormone=True))
        for name, m in (("ER", er), ("PR", pr))
        if m is not None
    }
    sources = tuple(m.source for m, _ in results.values())
    text = ", ".join(
        f"{name} {value} ({m.when.isoformat()})" for name, (m, value) in results.items()
    )
    if any(value == "positive" for _, value in results.values()):
        return Status("positive", sources, text)
    if len(results) == 2 and all(value == "negative" for _, value in results.values()):
        return Status("negative", sources, text)
    return Status("unknown", sources, text)


def her2(record: PatientRecord, kb: KnowledgeBase) -> Status:
    m = _latest(record, "her2")
    if m is None:
        return Status("unknown", (), "")
    value = _result(m, kb)
    return Status(value, (m.source,), f"HER2 {value} ({m.when.isoformat()})")
