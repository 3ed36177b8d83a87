"""Observations -> measurements: codes and answers, quantities with their comparator through unit
conversion, numbers written as text, reference ranges; genotypes go to the genotype reader."""

from __future__ import annotations

import functools
import math
import re
from datetime import date
from typing import Any

import salvage.fhir.genotypes as genotypes
from salvage.engine.dates import parse_fhir_date
from salvage.engine.drugs import concept_text
from salvage.engine.model import (
    DataWarning,
    Measurement,
    PatientRecord,
)
from salvage.errors import ResourceError
from salvage.fhir.biomarker_records import TumourMarkerReader
from salvage.fhir.performance_records import PerformanceReader
from salvage.fhir.record_base import (
    IGNORED_STATUS,
    LOINC,
    ConverterBase,
    QuantityRead,
    focus_ids,
)

# A number written as text, with an optional label before it and a unit after it ("ECOG 2",
# "<20 copies/mL", "> 59", "KPS 60 %"). FHIR R4 Quantity.comparator values: <, <=, >=, >.
_NUMBER_IN_TEXT = re.compile(
    r"^\s*(?:[A-Za-z][A-Za-z .:/()-]*?)?\s*(<=|>=|<|>|\u2264|\u2265)?"
    r"\s*(\d+(?:[.,]\d+)?)\s*(\S.*?)?\s*$"
)
_COMPARATOR_TEXT = {"\u2264": "<=", "\u2265": ">="}


class ObservationConverter(ConverterBase):
    tumour_markers: TumourMarkerReader
    performance: PerformanceReader

    def _observation(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        kind = None
        for coding in (r.get("code") or {}).get("coding") or ():
            if coding.get("system") == LOINC:
                kind = self.kb.loinc_index.get(coding.get("code"))
                if kind:
                    break
        if r.get("status") in IGNORED_STATUS["Observation"]:
            return
        if self.tumour_markers.reads(kind) or (kind is None and self.tumour_markers.claims(r)):
            self.tumour_markers.read(r, source, self._observation_date(r, source), record)
            return
        if kind == self.kb.hiv.reading.observation_kind or (
            kind is None and genotypes.is_genotype(r, self.kb)
        ):
            self.genotypes.observation(r, source, record)
            return
        if kind is None:
            kind = self.performance.claims(r.get("code"))  # "ECOG" as text, no LOINC code
        if kind is None:
            return  # an observation no rule reads is not an error
        when = self._observation_date(r, source)
        if kind in self.performance.kinds:
            self.performance.read(r, kind, source, when, record)
            return
        spec = self.kb.observation_kinds[kind]
        value: float | None = None
        comparator: str | None = None
        readable = True
        detected = False
        raw = ""
        shown = ""  # the value in the canonical unit, saying the unit it was recorded in
        codes: set[str] = set()
        factor: float | str | None = 1.0
        if isinstance(r.get("valueQuantity"), dict):
            q = r["valueQuantity"]
            read = read_quantity(
                spec, kind, q.get("value"), q.get("code"), q.get("unit"), q.get("comparator")
            )
            if read is None:
                raise ResourceError("valueQuantity.value is not a number", resource=source)
            if isinstance(read, str):
                record.warnings.append(DataWarning(source=source, problem=read))
                return
            value, comparator, raw, shown, factor = read
        elif isinstance(r.get("valueInteger"), int) and not isinstance(r.get("valueInteger"), bool):
            value = float(r["valueInteger"])
            raw = str(r["valueInteger"])
        elif isinstance(r.get("valueCodeableConcept"), dict):
            vc = r["valueCodeableConcept"]
            raw = concept_text(vc)
            for coding in vc.get("coding") or ():
                if coding.get("code"):
                    codes.add(str(coding["code"]))
                    answer = spec.answers.get(f"{coding.get('system')}|{coding.get('code')}")
                    if answer is not None and value is None:
                        value = answer
            if value is None and spec.unitless and spec.unit == "{score}":
                # Scores coded locally: read the number in the display or text ("ECOG 3").
                texts = [str(c.get("display") or "") for c in vc.get("coding") or ()]
                for text in [*texts, str(vc.get("text") or "")]:
                    parsed = _number_in_text(text)
                    if parsed is not None and parsed[2] is None and parsed[1] is None:
                        value = parsed[0]
                        break
                readable = value is not None
        elif isinstance(r.get("valueString"), str):
            raw = r["valueString"]
            text = raw.strip().lower()
            parsed = _number_in_text(raw)
            if spec.text_answers:
                pass  # qualitative ("REACTIVE"): the rules read it through answers.yaml
            elif spec.not_detected and text.startswith(spec.not_detected):
                value = 0.0  # below the assay's detection limit
            elif spec.detected_below and text.startswith(spec.detected_below):
                # "Detected, <20 copies/mL (below LLOQ)": present, below quantification
                detected = True
                phrase = next(p for p in spec.detected_below if text.startswith(p))
                rest = raw.strip()[len(phrase) :].lstrip(" ,;:-").split("(")[0]
                below = _number_in_text(rest)
                below_factor = (
                    _unit_factor(spec, below[2]) if below and below[1] in ("<", "<=") else None
                )
                if below is not None and below_factor is not None:
                    value, comparator = _convert(below[0], below_factor), below[1]
                else:
                    readable = False
            elif parsed is not None and (
                (parsed[2] is None and spec.unitless)
                or (parsed[2] is not None and _unit_factor(spec, parsed[2]) is not None)
            ):
                number, comparator, unit_text = parsed
                factor = 1.0 if unit_text is None else _unit_factor(spec, unit_text)
                value = _convert(number, factor)
                if unit_text is not None:
                    shown = _shown(spec, comparator, number, unit_text, factor, value)
            elif spec.unit == "{score}":
                readable = False  # a performance status was recorded but cannot be read
                record.warnings.append(
                    DataWarning(
                        source=source, problem=f"{kind} value {raw!r} cannot be read as a score"
                    )
                )
            else:
                record.warnings.append(
                    DataWarning(
                        source=source, problem=f"{kind} value {raw!r} is not a number; not used"
                    )
                )
                return
        if value is not None and not math.isfinite(value):
            raise ResourceError("value is not finite", resource=source)
        record.measurements.append(
            Measurement(
                source=source,
                kind=kind,
                when=when,
                value=value,
                codes=frozenset(codes),
                raw=raw,
                shown=shown,
                comparator=comparator,
                readable=readable,
                detected=detected,
                reference_high=_reference_high(r, spec, factor),
                focus=focus_ids(r),
            )
        )

    def _observation_date(self, r: dict[str, Any], source: str) -> date:
        if r.get("effectiveInstant") is not None:
            return parse_fhir_date(
                r["effectiveInstant"], field_name="effectiveInstant", source=source
            )
        if (
            r.get("effectiveDateTime") is None
            and r.get("effectivePeriod") is None
            and r.get("issued")
        ):
            return parse_fhir_date(r["issued"], field_name="issued", source=source)
        when, _ = self._effective(r, source, "effective")
        return when


def read_quantity(
    spec: Any, kind: str, number: Any, code: Any, unit: Any, comparator: Any
) -> QuantityRead | str | None:
    """A valueQuantity of an observation kind: (value in the canonical unit, comparator, value
    as recorded, value shown in the canonical unit, unit factor); a warning when its unit cannot
    be converted; None when its value is not a number. Shared by the dict path and the typed
    path (typed_records.py), so that both read a quantity alike."""
    used_unit = code or unit
    shown_unit = _display_unit(str(unit or used_unit or ""))
    comparator = comparator if comparator in _COMPARATORS else None
    raw = f"{comparator or ''}{number} {shown_unit}".strip()  # '{copies}' -> 'copies'
    if not isinstance(number, int | float) or isinstance(number, bool):
        return None
    factor = _unit_factor(spec, used_unit)
    if factor is None:
        return (
            f"{kind} value {raw!r}: unit {used_unit!r} cannot be converted to {spec.unit}; "
            "value not used"
        )
    value = _convert(float(number), factor)
    return (
        value,
        comparator,
        raw,
        _shown(spec, comparator, float(number), shown_unit, factor, value),
        factor,
    )


@functools.lru_cache(maxsize=1024)
def _display_unit(unit: str) -> str:
    """A UCUM unit for people: annotations lose their braces ('{copies}/mL' -> 'copies/mL')."""
    return re.sub(r"\{([^}]*)\}", r"\1", unit)


_COMPARATORS = frozenset({"<", "<=", ">", ">="})


def _shown(
    spec: Any,
    comparator: str | None,
    number: float,
    recorded_unit: str,
    factor: float | str | None,
    value: float,
) -> str:
    """A value recorded in another unit than the kind's canonical one, for people: in the
    canonical unit the thresholds are stated in, then the unit it was recorded in. A unit whose
    factor in observations.yaml is 1 keeps the number ("2.6 ng/mL (recorded as ug/L)"); another
    factor shows the recorded number too ("0.25 ng/mL (recorded as 25 ng/dL)"). Log units and
    the canonical unit itself are shown as recorded."""
    canonical = _display_unit(spec.unit or "")
    if not canonical or factor == "log10" or _display_unit(recorded_unit) == canonical:
        return ""
    sign = comparator or ""
    if factor == 1:
        return f"{sign}{number:g} {canonical} (recorded as {recorded_unit})"
    return f"{sign}{value:g} {canonical} (recorded as {sign}{number:g} {recorded_unit})"


def _number_in_text(text: str) -> tuple[float, str | None, str | None] | None:
    """(number, comparator, unit text) read from a value written as text, or None."""
    match = _NUMBER_IN_TEXT.match(text)
    if match is None:
        return None
    comparator = match.group(1)
    comparator = _COMPARATOR_TEXT.get(comparator or "", comparator)
    number = float(match.group(2).replace(",", "."))
    unit = match.group(3) or None
    return number, comparator, unit


def _unit_factor(spec: Any, unit: str | None) -> float | str | None:
    """The factor converting a unit to the kind's canonical unit; None when it cannot be."""
    if unit is None or unit == "":
        return 1.0 if spec.unitless else None
    unit = unit.strip()
    if spec.unit is not None and unit == spec.unit:
        return spec.convert.get(unit, 1.0)  # type: ignore[no-any-return]
    factor = spec.convert.get(unit)
    if factor is None:
        # a unit written for people ('copies/mL' for '{copies}/mL')
        factor = next((f for u, f in spec.convert.items() if _display_unit(u) == unit), None)
    return factor  # type: ignore[no-any-return]


def _convert(number: float, factor: float | str | None) -> float:
    if factor == "log10":
        return float(10**number)
    return number * float(factor if factor is not None else 1.0)


def _reference_high(r: dict[str, Any], spec: Any, factor: float | str | None) -> float | None:
    """The upper limit of normal of the first referenceRange, in the kind's canonical unit."""
    for reference in r.get("referenceRange") or ():
        high = (reference or {}).get("high") if isinstance(reference, dict) else None
        if isinstance(high, dict) and isinstance(high.get("value"), int | float):
            unit = high.get("code") or high.get("unit")
            own = _unit_factor(spec, unit) if unit else factor
            if own is None or own == "log10":
                return None
            return float(high["value"]) * float(own)
    return None
