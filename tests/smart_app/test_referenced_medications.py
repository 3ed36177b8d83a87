"""Referenced Medications are fetched only from the launched FHIR server, never elsewhere."""

from __future__ import annotations

from smart_app import fhir_reader


def test_a_medication_on_another_server_is_not_fetched(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        fhir_reader, "_read_all", lambda url, base, token: calls.append(url) or ([], None)
    )
    result = fhir_reader.ReadResult(
        resources=[
            {
                "resourceType": "MedicationRequest",
                "medicationReference": {
                    "reference": "https://elsewhere.example/fhir/Medication/m1"
                },
            },
            {
                "resourceType": "MedicationRequest",
                "medicationReference": {"reference": "Medication/m2"},
            },
            {
                "resourceType": "MedicationRequest",
                "medicationReference": {"reference": "#contained"},
            },
        ]
    )
    fhir_reader._read_referenced_medications("https://ehr.example/fhir", None, None, result)
    assert calls == ["https://ehr.example/fhir/Medication?_id=m2&_count=50"]


def test_without_the_scope_the_gap_is_reported() -> None:
    result = fhir_reader.ReadResult(
        resources=[
            {
                "resourceType": "MedicationRequest",
                "medicationReference": {"reference": "Medication/m"},
            }
        ]
    )
    fhir_reader._read_referenced_medications(
        "https://ehr.example/fhir", "not granted", None, result
    )
    (gap,) = result.problems
    assert gap["type"] == "Medication" and "1 referenced medications" in gap["problem"]
