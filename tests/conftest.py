"""Shared fixtures: the shipped knowledge base, a fixed analysis date, and FHIR record builders."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from salvage.engine import analyse_patient
from salvage.engine.analysis import PatientAnalysis
from salvage.fhir.records import build_patient_records
from salvage.knowledge import KnowledgeBase, load_knowledge

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
AS_OF = date(2026, 6, 30)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge()


class Chart:
    """A tiny builder of FHIR R4 resources for one patient, for unit tests of the rules."""

    def __init__(self, disease_snomed: str | None = "109969005", pid: str = "p1") -> None:
        self.pid = pid
        self.n = 0
        self.resources: list[dict[str, Any]] = [
            {"resourceType": "Patient", "id": pid, "birthDate": "1960-01-01", "gender": "male"}
        ]
        if disease_snomed:
            self.add("Condition", code={"coding": [{"system": SNOMED, "code": disease_snomed}]})

    def add(self, rtype: str, **fields: Any) -> str:
        self.n += 1
        rid = f"{rtype.lower()}-{self.n}"
        self.resources.append(
            {
                "resourceType": rtype,
                "id": rid,
                "subject": {"reference": f"Patient/{self.pid}"},
                **fields,
            }
        )
        return f"{rtype}/{rid}"

    def give(self, drug: str, day: str, **fields: Any) -> str:
        return self.add(
            "MedicationAdministration",
            status="completed",
            medicationCodeableConcept={"text": drug},
            effectiveDateTime=day,
            **fields,
        )

    def cycles(self, drugs: list[str], days: list[str]) -> list[str]:
        return [self.give(drug, day) for day in days for drug in drugs]

    def order(self, drug: str, day: str, **fields: Any) -> str:
        fields.setdefault("status", "completed")
        return self.add(
            "MedicationRequest",
            intent="order",
            medicationCodeableConcept={"text": drug},
            authoredOn=day,
            **fields,
        )

    def quantity(self, loinc: str, day: str, value: float, unit: str) -> str:
        return self.add(
            "Observation",
            status="final",
            code={"coding": [{"system": LOINC, "code": loinc}]},
            effectiveDateTime=day,
            valueQuantity={"value": value, "unit": unit, "code": unit},
        )

    def status(self, day: str, answer: str = "271299001") -> str:
        return self.add(
            "Observation",
            status="final",
            code={"coding": [{"system": LOINC, "code": "97509-4"}]},
            effectiveDateTime=day,
            valueCodeableConcept={"coding": [{"system": SNOMED, "code": answer}]},
        )

    def procedure(self, code: str, day: str) -> str:
        return self.add(
            "Procedure",
            status="completed",
            code={"coding": [{"system": SNOMED, "code": code}]},
            performedDateTime=day,
        )

    def analyse(self, kb: KnowledgeBase, as_of: date = AS_OF) -> PatientAnalysis:
        patients, skipped = build_patient_records(((r, "test") for r in self.resources), kb)
        assert not skipped, skipped
        return analyse_patient(patients[f"Patient/{self.pid}"], kb, as_of)


def q21(first: str, count: int, every: int = 21) -> list[str]:
    start = date.fromisoformat(first)
    return [date.fromordinal(start.toordinal() + every * n).isoformat() for n in range(count)]
