"""The one place where FHIR R4 resources become engine records (PatientRecord and its parts)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import salvage.fhir.genotypes as genotypes
import salvage.fhir.queries as queries
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
# A number written as text, with an optional label before it and a unit after it ("ECOG 2",
# "<20 copies/mL", "> 59", "KPS 60 %"). FHIR R4 Quantity.comparator values: <, <=, >=, >.
_NUMBER_IN_TEXT = re.compile(
    r"^\s*(?:[A-Za-z][A-Za-z .:/()-]*?)?\s*(<=|>=|<|>|\u2264|\u2265)?"
    r"\s*(\d+(?:[.,]\d+)?)\s*(\S.*?)?\s*$"
)
_COMPARATOR_TEXT = {"\u2264": "<=", "\u2265": ">="}
# A calendar date inside free text (onsetString "2023-03", "biopsy 2023-03-14").
_DATE_IN_TEXT = re.compile(r"\b(\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)\b")


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
        self._genotype_codes: dict[Any, bool] = {}  # see _may_be_genotype
        self._handlers = {
            "Patient": self._patient,
            "MedicationRequest": self._medication_request,
            "MedicationAdministration": self._medication_administration,
            "MedicationStatement": self._medication_statement,
            "Observation": self._observation,
            "Condition": self._condition,
            "Procedure": self._procedure,
            "DiagnosticReport": self._diagnostic_report,
        }
        self.genotypes = genotypes.GenotypeReader(kb, self.drugs)

    # -- entry point -----------------------------------------------------------------------------
    def build(self, resources: Iterable[tuple[dict[str, Any], Any]]) -> dict[str, PatientRecord]:
        """Convert while streaming; only records referring to a Medication not yet seen wait."""
        deferred: list[tuple[dict[str, Any], Any]] = []
        loinc_index = self.kb.loinc_index
        for resource, origin in resources:
            rtype = resource.get("resourceType") if type(resource) is dict else None
            if type(rtype) is not str:  # skipped and counted, never fatal
                reason = "malformed resource (resourceType is not a string)"
                self.skipped.append(Skipped(origin_text(origin), "", reason))
                continue
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
                    else:
                        if type(code) is dict and self._may_be_genotype(resource, code, coding):
                            self._convert(resource, origin)  # an HIV resistance result
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
        for record in self.patients.values():
            _resolve_onset_ages(record)
        return self.patients

    def _may_be_genotype(
        self, resource: dict[str, Any], code: dict[str, Any], coding: list[Any]
    ) -> bool:
        """genotypes.is_genotype, remembered per code for Observations without components: the
        same lab code and wording recur across every patient (most are labs no rule reads)."""
        first = coding[0] if len(coding) == 1 else None
        if type(first) is not dict or resource.get("component"):
            return genotypes.is_genotype(resource, self.kb)
        key = (code.get("text"), first.get("system"), first.get("code"), first.get("display"))
        try:
            hash(key)
        except TypeError:
            return genotypes.is_genotype(resource, self.kb)
        known = self._genotype_codes.get(key)
        if known is None:
            known = self._genotype_codes[key] = genotypes.is_genotype(resource, self.kb)
        return known

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
        concept = item.get("itemCodeableConcept")
        if isinstance(concept, dict):
            return concept
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
        missed = self.drugs.unrecognised_parts(text)
        if missed:  # a combination read only in part: say so rather than drop an ingredient
            record.warnings.append(DataWarning(source=source, problem=missed))
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
                notes=tuple(
                    str(n["text"])
                    for n in r.get("note") or ()
                    if isinstance(n, dict) and isinstance(n.get("text"), str)
                ),
            )
        )

    def _is_antiretroviral(self, ingredients: frozenset[str]) -> bool:
        return any(
            self.kb.drugs[i].role == "antiretroviral" for i in ingredients if i in self.kb.drugs
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
            if status == "active" and self._is_antiretroviral(medication[0]):
                # An active antiretroviral order is still being taken: the prescriber has not
                # stopped it, and refills are dispensed one after another. Its supply (x refills)
                # says how long it was authorised, not when the patient stopped (FHIR R4
                # medicationrequest-status; antiretrovirals are lifelong, DHHS).
                end = None
            elif days is not None:
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
        if r.get("status") in IGNORED_STATUS["Observation"]:
            return
        if kind == self.kb.hiv.reading.observation_kind or (
            kind is None and genotypes.is_genotype(r, self.kb)
        ):
            self.genotypes.observation(r, source, record)
            return
        if kind is None:
            return  # an observation no rule reads is not an error
        if r.get("effectiveInstant") is not None:
            when = parse_fhir_date(
                r["effectiveInstant"], field_name="effectiveInstant", source=source
            )
        elif (
            r.get("effectiveDateTime") is None
            and r.get("effectivePeriod") is None
            and r.get("issued")
        ):
            when = parse_fhir_date(r["issued"], field_name="issued", source=source)
        else:
            when, _ = self._effective(r, source, "effective")
        spec = self.kb.observation_kinds[kind]
        value: float | None = None
        comparator: str | None = None
        readable = True
        detected = False
        raw = ""
        codes: set[str] = set()
        factor: float | str | None = 1.0
        if isinstance(r.get("valueQuantity"), dict):
            q = r["valueQuantity"]
            unit = q.get("code") or q.get("unit")
            number = q.get("value")
            shown_unit = _display_unit(str(q.get("unit") or unit or ""))
            comparator = q.get("comparator") if q.get("comparator") in _COMPARATORS else None
            raw = f"{comparator or ''}{number} {shown_unit}".strip()  # '{copies}' -> 'copies'
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise ResourceError("valueQuantity.value is not a number", resource=source)
            factor = _unit_factor(spec, unit)
            if factor is None:
                record.warnings.append(
                    DataWarning(
                        source=source,
                        problem=f"{kind} value {raw!r}: unit {unit!r} cannot be converted to "
                        f"{spec.unit}; value not used",
                    )
                )
                return
            value = _convert(float(number), factor)
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
                comparator=comparator,
                readable=readable,
                detected=detected,
                reference_high=_reference_high(r, spec, factor),
                focus=tuple(
                    _type_id(f["reference"])
                    for f in r.get("focus") or ()
                    if isinstance(f, dict) and isinstance(f.get("reference"), str)
                ),
            )
        )

    def _diagnostic_report(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        if r.get("status") not in IGNORED_STATUS["Observation"] and genotypes.is_genotype(
            r, self.kb
        ):
            self.genotypes.report(r, source, record)

    def _condition(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        verification = _first_code(r.get("verificationStatus"))
        if verification in ("entered-in-error", "refuted"):
            return  # FHIR R4 condition-ver-status: these never describe the patient
        codes = frozenset(
            f"{c.get('system')}|{c.get('code')}"
            for c in (r.get("code") or {}).get("coding") or ()
            if c.get("code")
        )
        onset, onset_basis = _choice_date(r, "onset", source)
        abatement, abatement_basis = _choice_date(r, "abatement", source)
        recorded = optional_date(r.get("recordedDate"), field_name="recordedDate", source=source)
        age = r.get("onsetAge") if isinstance(r.get("onsetAge"), dict) else None
        onset_age = _age_years(age) if age is not None and onset is None else None
        if onset is not None:
            when, basis = onset, onset_basis
        elif onset_age is not None:
            when, basis = None, "onsetAge"  # dated once the birth date is known
        elif abatement is not None:
            when, basis = abatement, abatement_basis
        elif recorded is not None:
            when, basis = recorded, "recordedDate"
        else:
            when, basis = None, ""  # the engine reports it when a rule needed the date
        record.conditions.append(
            ConditionRecord(
                source=source,
                codes=codes,
                clinical_status=_first_code(r.get("clinicalStatus")),
                onset=onset,
                recorded=recorded,
                text=concept_text(r.get("code")),
                verification=verification,
                abatement=abatement,
                when=when,
                date_basis=basis,
                onset_age_years=onset_age,
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


_COMPARATORS = frozenset({"<", "<=", ">", ">="})


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


def _choice_date(r: dict[str, Any], prefix: str, source: str) -> tuple[date | None, str]:
    """A date from a FHIR R4 choice element (onset[x], abatement[x]): dateTime, Period (start,
    else end), or a string containing a date; (None, "") when none can be read."""
    value = r.get(f"{prefix}DateTime")
    if value is not None:
        return parse_fhir_date(value, field_name=f"{prefix}DateTime", source=source), (
            f"{prefix}DateTime"
        )
    period = r.get(f"{prefix}Period")
    if isinstance(period, dict):
        for end in ("start", "end"):
            if period.get(end) is not None:
                day = parse_fhir_date(
                    period[end], field_name=f"{prefix}Period.{end}", source=source
                )
                return day, f"{prefix}Period.{end}"
    text = r.get(f"{prefix}String")
    if isinstance(text, str):
        match = _DATE_IN_TEXT.search(text)
        if match is not None:
            found = optional_date(match.group(1), field_name=f"{prefix}String", source=source)
            return found, f"{prefix}String"
    return None, ""


_AGE_YEARS = {"a": 1.0, "yr": 1.0, "year": 1.0, "years": 1.0, "mo": 1 / 12, "month": 1 / 12}


def _age_years(age: dict[str, Any]) -> float | None:
    value = age.get("value")
    factor = _AGE_YEARS.get(str(age.get("code") or age.get("unit") or "a"))
    if isinstance(value, int | float) and not isinstance(value, bool) and factor and value >= 0:
        return float(value) * factor
    return None


def _resolve_onset_ages(record: PatientRecord) -> None:
    """Date the Conditions given by onsetAge from the birth date (year precision); report those
    that cannot be dated because the birth date is unknown."""
    for index, condition in enumerate(record.conditions):
        if condition.onset_age_years is None or condition.when is not None:
            continue
        if record.birth_date is None:
            fallback = condition.abatement or condition.recorded
            record.conditions[index] = replace(
                condition,
                when=fallback,
                date_basis=(
                    ""
                    if fallback is None
                    else ("abatement" if condition.abatement else "recordedDate")
                ),
            )
            record.warnings.append(
                DataWarning(
                    source=condition.source,
                    problem="onsetAge cannot be turned into a date without a birth date",
                )
            )
            continue
        days = round(condition.onset_age_years * 365.2425)
        record.conditions[index] = replace(
            condition,
            when=record.birth_date + timedelta(days=days),
            onset=record.birth_date + timedelta(days=days),
        )


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
