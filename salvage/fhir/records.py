"""The one place where FHIR R4 resources become engine records (PatientRecord and its parts)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from salvage.engine.dates import optional_date, parse_fhir_date
from salvage.engine.drugs import concept_text, normaliser_for
from salvage.engine.model import (
    ConditionRecord,
    DataWarning,
    DrugExposure,
    Measurement,
    PatientRecord,
    ProcedureRecord,
    Unmapped,
)
from salvage.errors import ResourceError
from salvage.fhir import queries
from salvage.knowledge.model import KnowledgeBase

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

# Records in these states say nothing about what the patient received (FHIR R4 status value sets).
IGNORED_STATUS = {
    "MedicationRequest": {"entered-in-error", "cancelled", "draft"},
    "MedicationAdministration": {"entered-in-error", "not-done"},
    "MedicationStatement": {"entered-in-error", "not-taken", "draft"},
    "Observation": {"entered-in-error", "cancelled", "registered"},
    "Procedure": {"entered-in-error", "not-done", "preparation"},
}
# Statuses under which an open-ended order is still running at as_of.
ACTIVE_STATUS = frozenset({"active", "on-hold", "in-progress", "intended", "unknown"})
USED_TYPES = queries.USED_TYPES  # the one query set says what is read
# Results reported as text when the virus is not detected.
_NOT_DETECTED = ("not detected", "undetectable", "target not detected", "<lod", "negative")


@dataclass(frozen=True, slots=True)
class Skipped:
    origin: str  # "file:line" or "file#entry"
    resource: str  # "Observation/123" or "" when it had no id
    reason: str


def patient_reference(resource: dict[str, Any]) -> str | None:
    """'Patient/<id>' for the patient a resource belongs to (absolute URLs reduced to Type/id)."""
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource.get('id')}" if resource.get("id") else None
    ref = resource.get("subject") or resource.get("patient")
    if not isinstance(ref, dict):
        return None
    value = ref.get("reference")
    if not isinstance(value, str):
        return None
    if value.startswith("Patient/") and value.count("/") == 1:
        return value  # the usual relative reference
    parts = value.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == "Patient":
        return f"Patient/{parts[-1]}"
    return None


class RecordBuilder:
    """Turns resources into records for each patient; one bad resource is skipped, not fatal."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.drugs = normaliser_for(kb)
        self.medications: dict[str, dict[str, Any]] = {}
        self.patients: dict[str, PatientRecord] = {}
        self.skipped: list[Skipped] = []
        self._handlers = {
            "Patient": self._patient,
            "MedicationRequest": self._medication_request,
            "MedicationAdministration": self._medication_administration,
            "MedicationStatement": self._medication_statement,
            "Observation": self._observation,
            "Condition": self._condition,
            "Procedure": self._procedure,
        }

    # -- entry point -----------------------------------------------------------------------------
    def build(self, resources: Iterable[tuple[dict[str, Any], Any]]) -> dict[str, PatientRecord]:
        """Convert while streaming; only records referring to a Medication not yet seen wait."""
        deferred: list[tuple[dict[str, Any], Any]] = []
        loinc_index = self.kb.loinc_index
        for resource, origin in self._typed(resources):
            rtype = resource.get("resourceType")
            if rtype == "Observation":
                # Most observations in a record are labs no rule reads: drop them before any work.
                code = resource.get("code")
                coding = code.get("coding") if type(code) is dict else None
                if type(coding) is list:
                    for c in coding:
                        if (
                            type(c) is dict
                            and type(c.get("code")) is str
                            and c["code"] in loinc_index
                        ):
                            self._convert(resource, origin)
                            break
                    continue
                self._convert(resource, origin)
            elif rtype == "Medication":
                if resource.get("id"):
                    self.medications[f"Medication/{resource['id']}"] = resource
            elif rtype in USED_TYPES:
                if self._refers_to_unseen_medication(resource):
                    deferred.append((resource, origin))
                else:
                    self._convert(resource, origin)
        for resource, origin in deferred:
            self._convert(resource, origin)
        return self.patients

    def _typed(
        self, resources: Iterable[tuple[dict[str, Any], Any]]
    ) -> Iterable[tuple[dict[str, Any], Any]]:
        """Only objects with a resourceType string go on; anything else is skipped and counted."""
        for resource, origin in resources:
            if type(resource) is dict and type(resource.get("resourceType")) is str:
                yield resource, origin
            else:
                reason = "malformed resource (resourceType is not a string)"
                self.skipped.append(Skipped(origin_text(origin), "", reason))

    def _refers_to_unseen_medication(self, resource: dict[str, Any]) -> bool:
        ref = resource.get("medicationReference")
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return False
        target = ref["reference"]
        return not target.startswith("#") and _type_id(target) not in self.medications

    def _convert(self, resource: dict[str, Any], origin: Any) -> None:
        source = f"{resource.get('resourceType')}/{resource.get('id', '')}"
        try:
            patient_ref = patient_reference(resource)
            if patient_ref is None:
                raise ResourceError("no Patient subject", resource=source)
            record = self.patients.get(patient_ref)
            if record is None:
                record = self.patients[patient_ref] = PatientRecord(reference=patient_ref)
            self._handlers[resource["resourceType"]](resource, source, record)
        except ResourceError as exc:
            self.skipped.append(Skipped(origin_text(origin), source, str(exc)))
        except (TypeError, AttributeError, ValueError, KeyError, ArithmeticError) as exc:
            # A resource whose shape is not FHIR (a string where an object belongs, a number too
            # large for a date, ...): skipped and counted, never fatal (issue 14).
            reason = f"malformed resource ({type(exc).__name__})"
            self.skipped.append(Skipped(origin_text(origin), source, reason))

    # -- resource handlers -----------------------------------------------------------------------
    def _patient(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        record.birth_date = optional_date(r.get("birthDate"), field_name="birthDate", source=source)
        record.gender = r.get("gender")

    def _medication(self, r: dict[str, Any], source: str) -> tuple[frozenset[str], str]:
        concept = r.get("medicationCodeableConcept")
        if concept is None and isinstance(r.get("medicationReference"), dict):
            ref = r["medicationReference"].get("reference", "")
            med = None
            if isinstance(ref, str) and ref.startswith("#"):
                med = next(
                    (
                        c
                        for c in r.get("contained") or ()
                        if isinstance(c, dict)
                        and c.get("resourceType") == "Medication"
                        and c.get("id") == ref[1:]
                    ),
                    None,
                )
            elif isinstance(ref, str):
                med = self.medications.get(_type_id(ref))
            if med is not None:
                found = self.drugs.from_concept(med.get("code"))
                if not found:  # Medication.ingredient list, each item a concept or a reference
                    for item in med.get("ingredient") or ():
                        found |= self.drugs.from_concept(self._ingredient_concept(item, r, med))
                return found, self._medication_name(med, r) or "a medication without a name"
            display = r["medicationReference"].get("display")
            return frozenset(), str(display) if display else "a medication that could not be read"
        return self.drugs.from_concept(concept), concept_text(concept)

    def _ingredient_concept(
        self, item: Any, order: dict[str, Any], med: dict[str, Any]
    ) -> dict[str, Any] | None:
        """An ingredient's concept, given in place or as itemReference to a Medication (contained
        in the order or the Medication, or read with the record)."""
        if not isinstance(item, dict):
            return None
        if isinstance(item.get("itemCodeableConcept"), dict):
            return item["itemCodeableConcept"]
        ref = (item.get("itemReference") or {}).get("reference")
        if not isinstance(ref, str):
            return None
        if ref.startswith("#"):
            contained = [*(order.get("contained") or ()), *(med.get("contained") or ())]
            target = next((c for c in contained if c.get("id") == ref[1:]), None)
        else:
            target = self.medications.get(_type_id(ref))
        return target.get("code") if isinstance(target, dict) else None

    def _medication_name(self, med: dict[str, Any], order: dict[str, Any]) -> str:
        """What a person calls the drug: the Medication's code text, else its ingredients'."""
        names = [concept_text(med.get("code"))]
        if not names[0]:
            names = [
                concept_text(self._ingredient_concept(item, order, med))
                for item in med.get("ingredient") or ()
            ]
        return ", ".join(n for n in names if n)

    def _exposure(
        self,
        medication: tuple[frozenset[str], str],
        r: dict[str, Any],
        source: str,
        record: PatientRecord,
        *,
        start: date,
        end: date | None,
        stop_reasons: Iterable[dict[str, Any]],
        dose: tuple[float | None, str | None] = (None, None),
    ) -> None:
        ingredients, text = medication
        if not ingredients:
            record.unmapped.append(Unmapped(source=source, text=text or "(no medication given)"))
            return
        reasons: set[str] = set()
        for concept in stop_reasons:
            for coding in (concept or {}).get("coding") or ():
                if coding.get("system") == SNOMED and coding.get("code"):
                    reasons.add(str(coding["code"]))
        record.exposures.append(
            DrugExposure(
                source=source,
                ingredients=ingredients,
                start=start,
                end=end if end is None or end >= start else start,
                status=str(r.get("status") or "unknown"),
                active=str(r.get("status") or "unknown") in ACTIVE_STATUS,
                stop_reasons=frozenset(reasons),
                dose=dose[0],
                dose_unit=dose[1],
                text=text,
            )
        )

    def _is_continuous(self, ingredients: frozenset[str]) -> bool:
        return any(
            self.kb.drugs[i].continuous or self.kb.drugs[i].role == "antiretroviral"
            for i in ingredients
            if i in self.kb.drugs
        )

    def _medication_request(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        status = r.get("status")
        if status in IGNORED_STATUS["MedicationRequest"]:
            return
        bounds: dict[str, Any] = {}
        for dosage in r.get("dosageInstruction") or ():
            repeat = ((dosage or {}).get("timing") or {}).get("repeat") or {}
            if isinstance(repeat.get("boundsPeriod"), dict):
                bounds = repeat["boundsPeriod"]
                break
        dispense = r.get("dispenseRequest") or {}
        validity = dispense.get("validityPeriod") or {}
        authored = optional_date(r.get("authoredOn"), field_name="authoredOn", source=source)
        start = (
            optional_date(bounds.get("start"), field_name="boundsPeriod.start", source=source)
            or authored
            or optional_date(
                validity.get("start"), field_name="validityPeriod.start", source=source
            )
        )
        if start is None:
            raise ResourceError("no authoredOn or start date", resource=source)
        end = optional_date(bounds.get("end"), field_name="boundsPeriod.end", source=source)
        medication = self._medication(r, source)
        if end is None and self._is_continuous(medication[0]):
            # Continuous therapy is active over the supplied period (supply x (1 + refills)).
            supply = dispense.get("expectedSupplyDuration") or {}
            days = _duration_days(supply)
            if days is not None:
                repeats = int(dispense.get("numberOfRepeatsAllowed") or 0)
                end = start + timedelta(days=max(1, round(days * (1 + repeats))) - 1)
            elif status in ACTIVE_STATUS:
                end = None  # open-ended and still active
            else:
                end = start + timedelta(days=self.kb.default_rules.default_supply_days - 1)
        elif end is None:
            end = start
        reason = r.get("statusReason")
        self._exposure(
            medication,
            r,
            source,
            record,
            start=start,
            end=end,
            stop_reasons=[reason] if isinstance(reason, dict) else [],
        )

    def _medication_administration(
        self, r: dict[str, Any], source: str, record: PatientRecord
    ) -> None:
        if r.get("status") in IGNORED_STATUS["MedicationAdministration"]:
            return
        start, end = self._effective(r, source, "effective")
        dose = ((r.get("dosage") or {}).get("dose")) or {}
        value = dose.get("value")
        self._exposure(
            self._medication(r, source),
            r,
            source,
            record,
            start=start,
            end=end if end is not None else start,
            stop_reasons=r.get("statusReason") or [],
            dose=(
                float(value) if isinstance(value, int | float) else None,
                dose.get("code") or dose.get("unit"),
            ),
        )

    def _medication_statement(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        status = r.get("status")
        if status in IGNORED_STATUS["MedicationStatement"]:
            return
        try:
            start, end = self._effective(r, source, "effective")
        except ResourceError:
            asserted = r.get("dateAsserted")
            if asserted is None:
                raise
            start = end = parse_fhir_date(asserted, field_name="dateAsserted", source=source)
        if end is None and status not in ("active", "intended", "on-hold"):
            end = start
        self._exposure(
            self._medication(r, source),
            r,
            source,
            record,
            start=start,
            end=end,
            stop_reasons=r.get("statusReason") or [],
        )

    def _effective(self, r: dict[str, Any], source: str, prefix: str) -> tuple[date, date | None]:
        """(start, end) from effective[x] or performed[x]; end None when the period is open."""
        when = r.get(f"{prefix}DateTime")
        if when is not None:
            day = parse_fhir_date(when, field_name=f"{prefix}DateTime", source=source)
            return day, day
        period = r.get(f"{prefix}Period")
        if isinstance(period, dict) and period.get("start") is not None:
            start = parse_fhir_date(
                period["start"], field_name=f"{prefix}Period.start", source=source
            )
            return start, optional_date(
                period.get("end"), field_name=f"{prefix}Period.end", source=source
            )
        raise ResourceError(f"no {prefix}DateTime or {prefix}Period.start", resource=source)

    def _observation(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        kind = None
        for coding in (r.get("code") or {}).get("coding") or ():
            if coding.get("system") == LOINC:
                kind = self.kb.loinc_index.get(coding.get("code"))
                if kind:
                    break
        if kind is None or r.get("status") in IGNORED_STATUS["Observation"]:
            return  # an observation no rule reads is not an error
        if (
            r.get("effectiveDateTime") is None
            and r.get("effectivePeriod") is None
            and r.get("issued")
        ):
            when = parse_fhir_date(r["issued"], field_name="issued", source=source)
        else:
            when, _ = self._effective(r, source, "effective")
        spec = self.kb.observation_kinds[kind]
        value: float | None = None
        raw = ""
        codes: set[str] = set()
        if isinstance(r.get("valueQuantity"), dict):
            q = r["valueQuantity"]
            unit = q.get("code") or q.get("unit")
            number = q.get("value")
            shown_unit = _display_unit(str(q.get("unit") or unit or ""))
            raw = (
                f"{q.get('comparator', '')}{number} {shown_unit}".strip()
            )  # '{copies}' -> 'copies'
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise ResourceError("valueQuantity.value is not a number", resource=source)
            factor = spec.convert.get(unit) if unit is not None else None
            if spec.unit is not None and unit == spec.unit:
                factor = spec.convert.get(unit, 1.0)
            if factor is None:
                record.warnings.append(
                    DataWarning(
                        source=source,
                        problem=f"{kind} value {raw!r}: unit {unit!r} cannot be converted to "
                        f"{spec.unit}; value not used",
                    )
                )
                return
            value = 10 ** float(number) if factor == "log10" else float(number) * float(factor)
        elif isinstance(r.get("valueInteger"), int):
            value = float(r["valueInteger"])
            raw = str(r["valueInteger"])
        elif isinstance(r.get("valueCodeableConcept"), dict):
            vc = r["valueCodeableConcept"]
            for coding in vc.get("coding") or ():
                if coding.get("code"):
                    codes.add(str(coding["code"]))
                    if kind in ("ecog", "karnofsky") and str(coding.get("display", "")).isdigit():
                        value = float(coding["display"])
            raw = concept_text(vc)
        elif isinstance(r.get("valueString"), str):
            raw = r["valueString"]
            if kind == "hiv-rna" and raw.strip().lower().startswith(_NOT_DETECTED):
                value = 0.0
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
                source=source, kind=kind, when=when, value=value, codes=frozenset(codes), raw=raw
            )
        )

    def _condition(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        verification = _first_code(r.get("verificationStatus"))
        if verification in ("entered-in-error", "refuted"):
            return
        codes = frozenset(
            f"{c.get('system')}|{c.get('code')}"
            for c in (r.get("code") or {}).get("coding") or ()
            if c.get("code")
        )
        record.conditions.append(
            ConditionRecord(
                source=source,
                codes=codes,
                clinical_status=_first_code(r.get("clinicalStatus")),
                onset=optional_date(
                    r.get("onsetDateTime"), field_name="onsetDateTime", source=source
                ),
                recorded=optional_date(
                    r.get("recordedDate"), field_name="recordedDate", source=source
                ),
                text=concept_text(r.get("code")),
            )
        )

    def _procedure(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        if r.get("status") in IGNORED_STATUS["Procedure"]:
            return
        kind = self._procedure_kind(r.get("code") or {})
        if kind is None:
            return
        start, end = self._effective(r, source, "performed")
        record.procedures.append(
            ProcedureRecord(
                source=source,
                kind=kind,
                label=self.kb.procedures[kind].label,
                when=start,
                end=end or start,
            )
        )

    def _procedure_kind(self, concept: dict[str, Any]) -> str | None:
        codings = concept.get("coding") or ()
        for kind in self.kb.procedures.values():
            if any((c.get("system"), c.get("code")) in kind.codes for c in codings):
                return kind.id
        text = " ".join(
            [str(concept.get("text") or "")] + [str(c.get("display") or "") for c in codings]
        ).lower()
        for kind in self.kb.procedures.values():
            if any(t in text for t in kind.text):
                return kind.id
        return None


def origin_text(origin: Any) -> str:
    """(file, line) or (file, '#entry[i]') as text; any other origin as given."""
    if isinstance(origin, tuple) and len(origin) == 2:
        where, position = origin
        return f"{where}:{position}" if isinstance(position, int) else f"{where}{position}"
    return str(origin)


@functools.lru_cache(maxsize=1024)
def _display_unit(unit: str) -> str:
    """A UCUM unit for people: annotations lose their braces ('{copies}/mL' -> 'copies/mL')."""
    return re.sub(r"\{([^}]*)\}", r"\1", unit)


def _type_id(reference: str) -> str:
    """'Type/id' from a relative or absolute reference."""
    return "/".join(reference.rstrip("/").split("/")[-2:])


def _first_code(concept: Any) -> str | None:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if coding.get("code"):
                return str(coding["code"])
    return None


_DURATION_DAYS = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "a": 365,
    "h": 1 / 24,
}


def _duration_days(duration: dict[str, Any]) -> float | None:
    value = duration.get("value")
    factor = _DURATION_DAYS.get(str(duration.get("code") or duration.get("unit") or "d"))
    if isinstance(value, int | float) and factor is not None and value > 0:
        return float(value) * factor
    return None


def build_patient_records(
    resources: Iterable[tuple[dict[str, Any], Any]], kb: KnowledgeBase
) -> tuple[dict[str, PatientRecord], list[Skipped]]:
    """Group resources by patient and convert them; returns (patients, skipped resources)."""
    builder = RecordBuilder(kb)
    patients = builder.build(resources)
    return patients, builder.skipped
