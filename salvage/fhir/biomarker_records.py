"""Tumour biomarker Observations -> TumourMarkerResult: variant results with gene-studied and
variant components (mCODE / HL7 Genomics Reporting), and results written only as text ("KRAS
G12C detected", "PD-L1 TPS 60 %"). What each result says is decided by engine/biomarkers.py."""

from __future__ import annotations

import re
from typing import Any

from salvage.engine.drugs import concept_text
from salvage.engine.model import PatientRecord, TumourMarkerResult
from salvage.fhir.record_base import LOINC
from salvage.knowledge.model import KnowledgeBase


class TumourMarkerReader:
    """Which Observations carry a tumour biomarker, and their parts as recorded."""

    def __init__(self, kb: KnowledgeBase) -> None:
        markers = kb.biomarkers
        self.codes: frozenset[str] = frozenset()
        self.gene_codes: frozenset[str] = frozenset()
        self.variant_codes: frozenset[str] = frozenset()
        self.names: re.Pattern[str] | None = None
        self.kind: str | None = None
        if markers is None:
            return
        self.kind = markers.codes.observation_kind
        self.codes = frozenset(
            [*markers.codes.variant_panels]
            + [c for m in markers.biomarkers.values() for c in m.loinc]
        )
        self.gene_codes = frozenset(markers.codes.gene_studied)
        self.variant_codes = frozenset(markers.codes.variant_text)
        words = sorted(
            {w for m in markers.biomarkers.values() if m.kind != "histology" for w in m.genes}
            | {w for m in markers.biomarkers.values() if m.kind != "histology" for w in m.aliases},
            key=len,
            reverse=True,
        )
        # Gene symbols are matched as written (upper case): "RET" is a gene, "ret" is not.
        self.names = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, words)) + r")\b")

    def reads(self, kind: str | None) -> bool:
        """The observation kind of the biomarker result codes (fetched live by their LOINC)."""
        return kind is not None and kind == self.kind

    def claims(self, r: dict[str, Any]) -> bool:
        """A biomarker result: its LOINC code is a biomarker code, or its name says so."""
        code = r.get("code")
        if not isinstance(code, dict):
            return False
        for coding in code.get("coding") or ():
            if (
                isinstance(coding, dict)
                and coding.get("system") == LOINC
                and isinstance(coding.get("code"), str)
                and coding["code"] in self.codes
            ):
                return True
        if self.names is None:
            return False
        loinc_coded = any(
            isinstance(c, dict) and c.get("system") == LOINC for c in code.get("coding") or ()
        )
        if loinc_coded and isinstance(r.get("valueQuantity"), dict):
            return False  # a LOINC-coded measurement ("ALK PHOS" 120 U/L) is not a gene report
        names = [str(code.get("text") or "")] + [
            str(c.get("display") or "") for c in code.get("coding") or () if isinstance(c, dict)
        ]
        # A report coded only as a generic panel ("Tumour NGS panel") names the genes in its value.
        if isinstance(r.get("valueString"), str):
            names.append(r["valueString"])
        return any(self.names.search(n) for n in names if n)

    def claims_report(self, r: dict[str, Any]) -> bool:
        """A DiagnosticReport whose name or conclusion names a biomarker gene (molecular reports
        are often a report with a conclusion, without result Observations)."""
        if self.names is None:
            return False
        code = r.get("code")
        texts = [_all_text(code) if isinstance(code, dict) else "", _report_text(r)]
        return any(self.names.search(t) for t in texts if t)

    def read_report(self, r: dict[str, Any], source: str, when: Any, record: PatientRecord) -> None:
        text = _report_text(r)
        if not text:
            return
        record.tumour_markers.append(
            TumourMarkerResult(
                source=source,
                when=when,
                label=_all_text(r["code"]) if isinstance(r.get("code"), dict) else "",
                text=text,
            )
        )

    def read(self, r: dict[str, Any], source: str, when: Any, record: PatientRecord) -> None:
        codes = frozenset(
            str(c.get("code"))
            for c in (r.get("code") or {}).get("coding") or ()
            if isinstance(c, dict) and c.get("system") == LOINC and c.get("code")
        )
        label = _all_text(r["code"]) if isinstance(r.get("code"), dict) else ""
        texts: list[str] = []
        value_codes: set[str] = set()
        number: float | None = None
        comparator: str | None = None
        vc = r.get("valueCodeableConcept")
        if isinstance(vc, dict):
            texts.append(_all_text(vc))
            value_codes |= _codes(vc)
        if isinstance(r.get("valueString"), str):
            texts.append(r["valueString"])
        quantity = r.get("valueQuantity")
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
            if not isinstance(quantity.get("value"), bool):
                number = float(quantity["value"])
                comparator = quantity.get("comparator")
                texts.append(f"{comparator or ''}{quantity['value']} {quantity.get('unit') or ''}")
        if isinstance(r.get("valueInteger"), int) and not isinstance(r.get("valueInteger"), bool):
            number = float(r["valueInteger"])
        genes: list[str] = []
        variants: list[str] = []
        for component in r.get("component") or ():
            if not isinstance(component, dict):
                continue
            ccodes = {
                str(c.get("code"))
                for c in (component.get("code") or {}).get("coding") or ()
                if isinstance(c, dict)
            }
            value = _component_value(component)
            if ccodes & self.gene_codes:
                genes += [v for v in value if v]
            elif ccodes & self.variant_codes:
                variants += [v for v in value if v]
            else:
                texts.append(concept_text(component.get("code")) + ": " + " ".join(value))
                cvc = component.get("valueCodeableConcept")
                if isinstance(cvc, dict):
                    value_codes |= _codes(cvc)
        absent = r.get("dataAbsentReason")
        if isinstance(absent, dict):
            texts.append(_all_text(absent).replace("-", " ") or "no result")
        for note in r.get("note") or ():
            if isinstance(note, dict) and isinstance(note.get("text"), str):
                texts.append(note["text"])
        interpretation = r.get("interpretation")
        for concept in interpretation if isinstance(interpretation, list) else ():
            if isinstance(concept, dict):
                texts.append(_all_text(concept))
        record.tumour_markers.append(
            TumourMarkerResult(
                source=source,
                when=when,
                codes=codes,
                genes=tuple(genes),
                variant=" ".join(variants),
                label=label,
                value_codes=frozenset(value_codes),
                number=number,
                comparator=comparator if comparator in ("<", "<=", ">", ">=") else None,
                text=" ; ".join(t for t in texts if t),
            )
        )


def _codes(concept: dict[str, Any]) -> set[str]:
    return {
        f"{c.get('system')}|{c.get('code')}"
        for c in concept.get("coding") or ()
        if isinstance(c, dict) and c.get("code")
    }


def _all_text(concept: dict[str, Any]) -> str:
    """The text and every display of a CodeableConcept (a coded answer may say "Present")."""
    parts = [str(concept.get("text") or "")] + [
        str(c.get("display") or "") for c in concept.get("coding") or () if isinstance(c, dict)
    ]
    return " ".join(dict.fromkeys(p for p in parts if p))


def _component_value(component: dict[str, Any]) -> list[str]:
    vc = component.get("valueCodeableConcept")
    if isinstance(vc, dict):
        text = _all_text(vc)
        if text:
            return [text]
        return [str(c.get("code") or "") for c in vc.get("coding") or () if isinstance(c, dict)]
    if isinstance(component.get("valueString"), str):
        return [component["valueString"]]
    return []


def _report_text(r: dict[str, Any]) -> str:
    """DiagnosticReport.conclusion and the texts of its conclusionCode."""
    parts = [r["conclusion"]] if isinstance(r.get("conclusion"), str) else []
    for concept in r.get("conclusionCode") or ():
        if isinstance(concept, dict):
            parts.append(_all_text(concept))
    return " ; ".join(p for p in parts if p)
