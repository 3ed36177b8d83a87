"""What every FHIR-to-record converter shares: code systems, statuses that say nothing about
what a patient received, the builder state the converters read, and how effective[x] is read."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

import salvage.fhir.genotypes as genotypes
import salvage.fhir.queries as queries
from salvage.engine.dates import optional_date, parse_fhir_date
from salvage.engine.drugs import DrugNormaliser
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


class ConverterBase:
    """State of a RecordBuilder that its converter parts read (see records.py)."""

    kb: KnowledgeBase
    drugs: DrugNormaliser
    medications: dict[str, dict[str, Any]]
    genotypes: genotypes.GenotypeReader

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


def type_id(reference: str) -> str:
    """'Type/id' from a relative or absolute reference."""
    return "/".join(reference.rstrip("/").split("/")[-2:])


def focus_ids(resource: dict[str, Any]) -> tuple[str, ...]:
    """'Type/id' of each Observation.focus reference (which Condition a status is about)."""
    return tuple(
        type_id(f["reference"])
        for f in resource.get("focus") or ()
        if isinstance(f, dict) and isinstance(f.get("reference"), str)
    )


def first_code(concept: Any) -> str | None:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if coding.get("code"):
                return str(coding["code"])
    return None


# Records of a plain shape, decoded typed from NDJSON (typed_records.py) and converted by
# records.RecordBuilder without a dict; declared here so that the converters stay pure.
QuantityRead = tuple[float, str | None, str, str, float | str]


class PlainAdministration(msgspec.Struct, frozen=True):
    """A MedicationAdministration of the plain shape, read: what the converter needs, no more."""

    source: str  # "MedicationAdministration/<id>"
    patient: str  # "Patient/<id>"
    status: str | None
    start: date
    end: date
    dose: tuple[float | None, str | None]
    medication: tuple[frozenset[str], str]  # DrugNormaliser.read_concept of its concept


class PlainObservation(msgspec.Struct, frozen=True):
    """An Observation of the plain shape, read: a quantity of an observation kind."""

    source: str  # "Observation/<id>"
    patient: str  # "Patient/<id>"
    status: str | None
    kind: str
    when: date
    read: QuantityRead | str  # observation_records.read_quantity: the value, or a warning
