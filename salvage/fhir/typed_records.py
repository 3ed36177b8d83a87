"""Decode once: a kept NDJSON MedicationAdministration line of the plain shape (the most frequent
resource the converters read: 12 a patient in a lung-cancer population, 30 in the synthetic one)
is decoded straight into a typed struct that carries only what the converter reads, and becomes
a PlainAdministration the builder turns into a drug exposure without building any dict.

Any line this does not cover goes the general dict path, so nothing is lost and the records are
the same: a field the struct does not declare (everything is decoded and checked, nothing
skipped: msgspec would accept, in a field it skips, a number beyond a double's range or bytes
that are not UTF-8, which orjson refuses), a field the converter reads only in rarer shapes (a
Medication reference, an order it carries out, a stop reason, a recorded intent, notes), a value
of another type than FHIR's (a number as text, null), a date that does not parse, a concept
that cannot be read. tests/fhir/test_typed_records.py proves the records equal to the dict
path's.
"""

from __future__ import annotations

import math
from datetime import date

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from salvage.engine.dates import parse_fhir_date
from salvage.engine.drugs import normaliser_for
from salvage.errors import ResourceError
from salvage.fhir.biomarker_records import TumourMarkerReader
from salvage.fhir.medication_records import _positive
from salvage.fhir.observation_records import read_quantity
from salvage.fhir.performance_records import PerformanceReader
from salvage.fhir.record_base import LOINC, PlainAdministration, PlainObservation
from salvage.knowledge.model import KnowledgeBase

_ABSENT = msgspec.Raw()
_Unset = UnsetType
_MEMO_LIMIT = 50_000
ADMINISTRATION_PREFIX = b'{"resourceType":"MedicationAdministration"'
OBSERVATION_PREFIX = b'{"resourceType":"Observation"'


class _Reference(msgspec.Struct, forbid_unknown_fields=True):
    reference: str | _Unset = UNSET
    display: str | _Unset = UNSET


class _Period(msgspec.Struct, forbid_unknown_fields=True):
    start: str | _Unset = UNSET
    end: str | _Unset = UNSET


class _Quantity(msgspec.Struct, forbid_unknown_fields=True):
    value: int | float | _Unset = UNSET
    code: str | _Unset = UNSET
    unit: str | _Unset = UNSET
    system: str | _Unset = UNSET


class _Dosage(msgspec.Struct, forbid_unknown_fields=True):
    dose: _Quantity | _Unset = UNSET


class _ValueQuantity(msgspec.Struct, forbid_unknown_fields=True):
    value: int | float | _Unset = UNSET
    code: str | _Unset = UNSET
    unit: str | _Unset = UNSET
    system: str | _Unset = UNSET
    comparator: str | _Unset = UNSET


class _Coding(msgspec.Struct, forbid_unknown_fields=True):
    system: str | _Unset = UNSET
    code: str | _Unset = UNSET
    display: str | _Unset = UNSET


class _Concept(msgspec.Struct, forbid_unknown_fields=True):
    coding: list[_Coding] | _Unset = UNSET
    text: str | _Unset = UNSET


class _Observation(
    msgspec.Struct, tag_field="resourceType", tag="Observation", forbid_unknown_fields=True
):
    """What observation_records reads from a lab result given as a quantity (and records.py to
    route it). The Raw fields are read only in rarer shapes: present, the line goes the general
    path. `code` stays raw bytes: its reading is remembered per exact bytes."""

    id: str
    subject: _Reference
    code: msgspec.Raw
    effectiveDateTime: str
    valueQuantity: _ValueQuantity
    status: str | _Unset = UNSET
    issued: str | _Unset = UNSET  # read only without effective[x]
    category: list[_Concept] | _Unset = UNSET  # not read
    encounter: _Reference | _Unset = UNSET  # not read
    patient: msgspec.Raw = _ABSENT
    effectiveInstant: msgspec.Raw = _ABSENT
    effectivePeriod: msgspec.Raw = _ABSENT
    component: msgspec.Raw = _ABSENT
    referenceRange: msgspec.Raw = _ABSENT
    focus: msgspec.Raw = _ABSENT


class _Administration(
    msgspec.Struct,
    tag_field="resourceType",
    tag="MedicationAdministration",
    forbid_unknown_fields=True,
):
    """The fields medication_records reads from a MedicationAdministration (and records.py to
    route it to its patient). The Raw fields are read only in rarer shapes: present, the line
    goes the general path."""

    id: str
    subject: _Reference
    medicationCodeableConcept: msgspec.Raw
    status: str | _Unset = UNSET
    effectiveDateTime: str | _Unset = UNSET
    effectivePeriod: _Period | _Unset = UNSET
    dosage: _Dosage | _Unset = UNSET
    context: _Reference | _Unset = UNSET
    patient: msgspec.Raw = _ABSENT
    medicationReference: msgspec.Raw = _ABSENT
    contained: msgspec.Raw = _ABSENT
    request: msgspec.Raw = _ABSENT
    basedOn: msgspec.Raw = _ABSENT
    statusReason: msgspec.Raw = _ABSENT
    reasonReference: msgspec.Raw = _ABSENT
    reasonCode: msgspec.Raw = _ABSENT
    extension: msgspec.Raw = _ABSENT
    note: msgspec.Raw = _ABSENT


class TypedReader:
    """Typed decoding of kept lines for one knowledge base; `administration` answers None for
    every line the general path must read."""

    def __init__(self, kb: KnowledgeBase) -> None:
        from salvage.fhir.records import patient_reference  # records.py imports this module

        self._patient_reference = patient_reference
        self.drugs = normaliser_for(kb)
        self.kb = kb
        self._decode = msgspec.json.Decoder(_Administration).decode
        self._decode_observation = msgspec.json.Decoder(_Observation).decode
        self._kinds: dict[bytes, str | None] = {}  # raw code -> kind read the plain way
        # kinds the genotype, tumour marker and performance status readers read: general path
        skipped = {
            kb.hiv.reading.observation_kind,
            TumourMarkerReader(kb).kind,
            *PerformanceReader(kb).kinds,
        }
        self._plain_kinds = {k for k in kb.observation_kinds if k not in skipped}
        self._concepts: dict[bytes, tuple[frozenset[str], str] | None] = {}
        self._patients: dict[str, str | None] = {}

    def administration(self, line: bytes) -> PlainAdministration | None:
        try:
            a = self._decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        if (
            a.patient
            or a.medicationReference
            or a.contained
            or a.request
            or a.basedOn
            or a.statusReason
            or a.reasonReference
            or a.reasonCode
            or a.extension
            or a.note
        ):
            return None
        patient = self._patient(a.subject.reference)
        medication = self._medication(bytes(a.medicationCodeableConcept))
        if patient is None or medication is None:
            return None
        source = f"MedicationAdministration/{a.id}"
        try:
            start, end = _effective(a, source)
        except ResourceError:
            return None
        dose = a.dosage.dose if a.dosage is not UNSET else UNSET
        if dose is UNSET:
            read_dose: tuple[float | None, str | None] = (None, None)
        else:
            value = dose.value
            if type(value) is int and not -(2**63) <= value < 2**64:
                return None  # orjson reads it as a float
            read_dose = (
                float(value) if _positive(value) else None,
                str(dose.code or dose.unit or "") or None,
            )
        status = None if a.status is UNSET else a.status
        return PlainAdministration(source, patient, status, start, end, read_dose, medication)

    def observation(self, line: bytes) -> PlainObservation | None:
        try:
            o = self._decode_observation(line)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        if (
            o.patient
            or o.effectiveInstant
            or o.effectivePeriod
            or o.component
            or o.referenceRange
            or o.focus
        ):
            return None
        kind = self._kind(bytes(o.code))
        patient = self._patient(o.subject.reference)
        if kind is None or patient is None:
            return None
        source = f"Observation/{o.id}"
        try:
            when = parse_fhir_date(
                o.effectiveDateTime, field_name="effectiveDateTime", source=source
            )
        except ResourceError:
            return None
        q = o.valueQuantity
        number = q.value
        if type(number) is int and not -(2**63) <= number < 2**64:
            return None  # orjson reads it as a float
        try:
            read = read_quantity(
                self.kb.observation_kinds[kind],
                kind,
                None if number is UNSET else number,
                None if q.code is UNSET else q.code,
                None if q.unit is UNSET else q.unit,
                None if q.comparator is UNSET else q.comparator,
            )
        except (ArithmeticError, ValueError):  # 10**value overflowing: the general path says so
            return None
        if read is None or (not isinstance(read, str) and not math.isfinite(read[0])):
            return None  # the general path reports it
        status = None if o.status is UNSET else o.status
        return PlainObservation(source, patient, status, kind, when, read)

    def _kind(self, raw: bytes) -> str | None:
        """The observation kind ObservationConverter finds in a code (its first LOINC coding
        that names one), when it is a kind read the plain way; remembered per exact bytes."""
        if raw in self._kinds:
            return self._kinds[raw]
        if len(self._kinds) > _MEMO_LIMIT:
            self._kinds.clear()
        kind = None
        try:
            code = orjson.loads(raw)
            for coding in (code or {}).get("coding") or ():
                if coding.get("system") == LOINC:
                    kind = self.kb.loinc_index.get(coding.get("code"))
                    if kind:
                        break
        except Exception:
            kind = None
        if kind not in self._plain_kinds:
            kind = None
        self._kinds[raw] = kind
        return kind

    def _patient(self, reference: str | _Unset) -> str | None:
        if reference is UNSET:
            return None
        if reference in self._patients:
            return self._patients[reference]
        if len(self._patients) > _MEMO_LIMIT:
            self._patients.clear()
        found = self._patients[reference] = self._patient_reference(
            {"subject": {"reference": reference}}
        )
        return found

    def _medication(self, raw: bytes) -> tuple[frozenset[str], str] | None:
        """read_concept of the concept, remembered per exact bytes; None when the concept is not
        an object or cannot be read (the general path then reports why)."""
        if raw in self._concepts:
            return self._concepts[raw]
        if len(self._concepts) > _MEMO_LIMIT:
            self._concepts.clear()
        read: tuple[frozenset[str], str] | None = None
        if raw.startswith(b"{"):
            try:
                read = self.drugs.read_concept(orjson.loads(raw))
            except Exception:
                read = None
        self._concepts[raw] = read
        return read


def _effective(a: _Administration, source: str) -> tuple[date, date]:
    """record_base.ConverterBase._effective for the typed fields, an open end read as the start
    (as medication_records reads an administration)."""
    if a.effectiveDateTime is not UNSET:
        day = parse_fhir_date(a.effectiveDateTime, field_name="effectiveDateTime", source=source)
        return day, day
    period = a.effectivePeriod
    if period is UNSET or period.start is UNSET:
        raise ResourceError("no effective date", resource=source)
    start = parse_fhir_date(period.start, field_name="effectivePeriod.start", source=source)
    if period.end is UNSET:
        return start, start
    return start, parse_fhir_date(period.end, field_name="effectivePeriod.end", source=source)
