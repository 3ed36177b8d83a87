"""Referenced Medications are fetched only from the launched FHIR server, never elsewhere."""

from __future__ import annotations

from salvage.fhir import client
from smart_app import fhir_reader


class _Recorder(client.FhirReader):
    def __init__(self) -> None:
        super().__init__("https://ehr.example/fhir", client.TokenHolder("t"), budget_seconds=1)
        self.calls: list[str] = []

    def read(self, relative_or_url: str, resource_type: str) -> client.ReadResult:
        self.calls.append(relative_or_url)
        return client.ReadResult()


ORDERS = [
    {
        "resourceType": "MedicationRequest",
        "medicationReference": {"reference": "https://elsewhere.example/fhir/Medication/m1"},
    },
    {"resourceType": "MedicationRequest", "medicationReference": {"reference": "Medication/m2"}},
    {"resourceType": "MedicationRequest", "medicationReference": {"reference": "#contained"}},
]


def test_a_medication_on_another_server_is_not_fetched() -> None:
    reader = _Recorder()
    fhir_reader._read_referenced_medications(reader, None, client.ReadResult(resources=ORDERS))
    assert reader.calls == ["https://ehr.example/fhir/Medication?_id=m2&_count=50"]


def test_without_the_scope_the_gap_is_reported() -> None:
    result = client.ReadResult(resources=ORDERS[1:2])
    fhir_reader._read_referenced_medications(_Recorder(), "not granted", result)
    (gap,) = fhir_reader.data_gaps(result)
    assert gap["type"] == "Medication" and "1 referenced medications" in gap["problem"]
