"""Performance status Observations -> measurements: coded answers, numbers, and scores written as
text ("ECOG 3", "PS 2", "KPS: 50") read by the patterns of observations.yaml performance_text.

A score that is ambiguous ("ECOG 1-2", "poor PS"), outside its scale or in an unknown unit is kept
as "recorded but unreadable": the fitness rules show it as unknown with the reason, never as fit.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from salvage.engine.drugs import concept_text
from salvage.engine.model import DataWarning, Measurement, PatientRecord
from salvage.fhir.record_base import focus_ids
from salvage.knowledge.model import KnowledgeBase


class PerformanceReader:
    """Reads ECOG and Karnofsky Observations for one knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        spec = kb.performance_text
        flags = re.IGNORECASE
        self.names: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = ()
        self.ambiguous: tuple[re.Pattern[str], ...] = ()
        self.values: tuple[tuple[str, re.Pattern[str]], ...] = ()
        self.ranges: dict[str, tuple[int, int]] = {}
        if spec is not None:
            self.names = tuple(
                (kind, tuple(re.compile(p, flags) for p in patterns))
                for kind, patterns in spec.names.items()
            )
            self.ambiguous = tuple(re.compile(p, flags) for p in spec.ambiguous)
            self.values = tuple((v.scale, re.compile(v.pattern, flags)) for v in spec.values)
            self.ranges = dict(spec.range)
        self.kinds = frozenset(self.ranges)

    def claims(self, code: Any) -> str | None:
        """The performance kind an Observation's code names in words (code.text or a coding's
        display), for an Observation no LOINC code of the knowledge base identifies."""
        if type(code) is not dict:
            return None
        texts = [code.get("text")]
        coding = code.get("coding")
        if type(coding) is list:
            texts += [c.get("display") for c in coding if type(c) is dict]
        words = [t for t in texts if isinstance(t, str) and t.strip()]
        for kind, patterns in self.names:
            if any(p.search(t) for p in patterns for t in words):
                return kind
        return None

    def score(self, text: str, own: str) -> tuple[str, float] | None:
        """(kind, score) read from a text; None when it is ambiguous, unlabelled in a way no
        pattern reads, or outside the scale its label names."""
        if not text.strip() or any(p.search(text) for p in self.ambiguous):
            return None
        for scale, pattern in self.values:
            match = pattern.match(text)
            if match is None:
                continue
            kind = own if scale == "own" else scale
            value = float(match.group("score"))
            return (kind, value) if self.in_range(kind, value) else None
        return None

    def in_range(self, kind: str, value: float) -> bool:
        low, high = self.ranges.get(kind, (0, 0))
        return value.is_integer() and low <= value <= high

    def read(
        self, r: dict[str, Any], kind: str, source: str, when: date, record: PatientRecord
    ) -> None:
        spec = self.kb.observation_kinds[kind]
        value: float | None = None
        codes: set[str] = set()
        raw = ""
        problem = ""
        if isinstance(r.get("valueQuantity"), dict):
            q = r["valueQuantity"]
            number = q.get("value")
            unit = q.get("code") or q.get("unit")
            raw = f"{q.get('comparator') or ''}{number} {q.get('unit') or unit or ''}".strip()
            if q.get("comparator"):
                problem = "a score with a comparator"
            elif not isinstance(number, int | float) or isinstance(number, bool):
                problem = "not a number"
            elif unit not in (None, "") and unit not in spec.convert:
                problem = f"unit {unit!r} is not a score unit"
            else:
                value = float(number)
        elif isinstance(r.get("valueInteger"), int) and not isinstance(r.get("valueInteger"), bool):
            value = float(r["valueInteger"])
            raw = str(r["valueInteger"])
        elif isinstance(r.get("valueCodeableConcept"), dict):
            vc = r["valueCodeableConcept"]
            raw = concept_text(vc)
            for coding in vc.get("coding") or ():
                if isinstance(coding, dict) and coding.get("code"):
                    codes.add(str(coding["code"]))
                    answer = spec.answers.get(f"{coding.get('system')}|{coding.get('code')}")
                    if answer is not None and value is None:
                        value = answer
            if value is None:  # coded locally: read the words of the answer
                texts = [str(c.get("display") or "") for c in vc.get("coding") or ()]
                kind, value = self._first_score([*texts, str(vc.get("text") or "")], kind)
        elif isinstance(r.get("valueString"), str):
            raw = r["valueString"]
            kind, value = self._first_score([raw], kind)
        else:
            # No value: the score may be written in the code's own text ("ECOG 2").
            code = r.get("code")
            text = code.get("text") if isinstance(code, dict) else None
            raw = text if isinstance(text, str) else ""
            if raw:
                kind, value = self._first_score([raw], kind)
        if value is not None and not self.in_range(kind, value):
            problem = f"outside the {kind} scale"
            value = None
        if value is None:
            reason = problem or "cannot be read as a single score"
            record.warnings.append(
                DataWarning(source=source, problem=f"{kind} value {raw!r}: {reason}")
            )
        record.measurements.append(
            Measurement(
                source=source,
                kind=kind,
                when=when,
                value=value,
                codes=frozenset(codes),
                raw=raw,
                readable=value is not None,
                focus=focus_ids(r),
            )
        )

    def _first_score(self, texts: list[str], own: str) -> tuple[str, float | None]:
        for text in texts:
            found = self.score(text, own)
            if found is not None:
                return found
        return own, None
