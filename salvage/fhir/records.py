"""The one place where FHIR R4 resources become engine records (PatientRecord and its parts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import salvage.fhir.genotypes as genotypes
from salvage.engine.dates import optional_date, parse_fhir_date
from salvage.engine.drugs import normaliser_for
from salvage.engine.model import (
    DataWarning,
    Measurement,
    PatientRecord,
    ProcedureRecord,
)
from salvage.errors import ResourceError
from salvage.fhir.biomarker_records import TumourMarkerReader
from salvage.fhir.condition_records import ConditionConverter, _resolve_onset_ages
from salvage.fhir.medication_records import MedicationConverter
from salvage.fhir.observation_records import ObservationConverter
from salvage.fhir.performance_records import PerformanceReader
from salvage.fhir.record_base import (
    ACTIVE_STATUS,
    IGNORED_STATUS,
    LOINC,
    SNOMED,
    USED_TYPES,
    PlainAdministration,
    PlainObservation,
    type_id,
)

__all__ = ["ACTIVE_STATUS", "IGNORED_STATUS", "LOINC", "SNOMED", "USED_TYPES"]
from salvage.knowledge.model import KnowledgeBase


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


class RecordBuilder(MedicationConverter, ObservationConverter, ConditionConverter):
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
        self.tumour_markers = TumourMarkerReader(kb)
        self.performance = PerformanceReader(kb)

    # -- entry point -----------------------------------------------------------------------------
    def build(self, resources: Iterable[tuple[Any, Any]]) -> dict[str, PatientRecord]:
        """Convert while streaming; only records referring to a Medication not yet seen wait.
        A resource is a dict, or a PlainAdministration / PlainObservation decoded typed
        (typed_records.py); anything else is skipped as malformed."""
        deferred: list[tuple[dict[str, Any], Any]] = []
        loinc_index = self.kb.loinc_index
        for resource, origin in resources:
            if type(resource) is PlainAdministration:
                self._plain_administration(resource, origin)
                continue
            if type(resource) is PlainObservation:
                self._plain_observation(resource)
                continue
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
                        if type(code) is dict and (
                            self.tumour_markers.claims(resource)
                            or self._may_be_genotype(resource, code, coding)
                            or self.performance.claims(code)
                        ):
                            self._convert(resource, origin)  # a tumour or HIV genotype result
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
        return not target.startswith("#") and type_id(target) not in self.medications

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

    def _plain_administration(self, plain: PlainAdministration, origin: Any) -> None:
        """_convert and _medication_administration for an administration decoded typed
        (typed_records.py), which has already checked what they would check."""
        record = self.patients.get(plain.patient)
        if record is None:
            record = self.patients[plain.patient] = PatientRecord(reference=plain.patient)
        if plain.status in IGNORED_STATUS["MedicationAdministration"]:
            return
        try:
            self._exposure(
                plain.medication,
                {"status": plain.status},
                plain.source,
                record,
                start=plain.start,
                end=plain.end,
                stop_reasons=(),
                dose=plain.dose,
            )
        except (ResourceError, TypeError, AttributeError, ValueError, KeyError) as exc:
            reason = (
                str(exc)
                if isinstance(exc, ResourceError)
                else f"malformed resource ({type(exc).__name__})"
            )
            self.skipped.append(Skipped(origin_text(origin), plain.source, reason))

    def _plain_observation(self, plain: PlainObservation) -> None:
        """_convert and _observation for a quantity decoded typed (typed_records.py), which has
        already checked what they would check and read the quantity as they would."""
        record = self.patients.get(plain.patient)
        if record is None:
            record = self.patients[plain.patient] = PatientRecord(reference=plain.patient)
        if plain.status in IGNORED_STATUS["Observation"]:
            return
        if isinstance(plain.read, str):
            record.warnings.append(DataWarning(source=plain.source, problem=plain.read))
            return
        value, comparator, raw, shown, _ = plain.read
        record.measurements.append(
            Measurement(
                source=plain.source,
                kind=plain.kind,
                when=plain.when,
                value=value,
                codes=frozenset(),
                raw=raw,
                shown=shown,
                comparator=comparator,
                readable=True,
                detected=False,
                reference_high=None,
                focus=(),
            )
        )

    # -- resource handlers -----------------------------------------------------------------------
    def _patient(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        record.birth_date = optional_date(r.get("birthDate"), field_name="birthDate", source=source)
        record.gender = r.get("gender")

    def _diagnostic_report(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        if r.get("status") in IGNORED_STATUS["Observation"]:
            return
        if genotypes.is_genotype(r, self.kb):
            self.genotypes.report(r, source, record)
        elif self.tumour_markers.claims_report(r):
            self.tumour_markers.read_report(r, source, self._report_date(r, source), record)

    def _report_date(self, r: dict[str, Any], source: str) -> Any:
        if r.get("effectiveDateTime") is None and r.get("effectivePeriod") is None:
            return parse_fhir_date(r.get("issued"), field_name="issued", source=source)
        when, _ = self._effective(r, source, "effective")
        return when

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


def build_patient_records(
    resources: Iterable[tuple[dict[str, Any], Any]], kb: KnowledgeBase
) -> tuple[dict[str, PatientRecord], list[Skipped]]:
    """Group resources by patient and convert them; returns (patients, skipped resources)."""
    builder = RecordBuilder(kb)
    patients = builder.build(resources)
    return patients, builder.skipped
