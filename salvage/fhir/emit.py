"""Resources the product emits (CDS suggestions), validated with fhir.resources R4B models."""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def proposal_medication_request(
    patient_id: str, ingredient: str, rxnorm: str | None, requester: str | None = None
) -> dict[str, Any]:
    """A draft MedicationRequest with intent 'proposal' and no dose: the prescriber completes it."""
    concept: dict[str, Any] = {"text": ingredient}
    if rxnorm:
        concept["coding"] = [{"system": RXNORM, "code": rxnorm, "display": ingredient}]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"salvage-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{patient_id}"},
        "note": [
            {
                "text": "Proposed by salvage-cds decision support; dose and schedule to be "
                "completed by the prescriber."
            }
        ],
    }
    if requester:
        resource["requester"] = {"reference": requester}
    MedicationRequest.model_validate(resource)
    return resource


def genotype_service_request(patient_id: str) -> dict[str, Any]:
    """A draft order for an HIV-1 genotypic resistance test (coded as text: no verified LOINC)."""
    resource = {
        "resourceType": "ServiceRequest",
        "id": f"salvage-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "proposal",
        "code": {
            "text": "HIV-1 genotypic resistance test (protease, reverse transcriptase, integrase)"
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "note": [
            {
                "text": "Draw while the failing regimen is still taken or within 4 weeks of "
                "stopping it (DHHS)."
            }
        ],
    }
    ServiceRequest.model_validate(resource)
    return resource
