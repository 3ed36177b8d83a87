"""Resources the product emits (CDS suggestions), validated with fhir.resources R4B models."""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# Shapes already validated: (ingredient, code, requester). The id and the patient reference (a
# FHIR id checked at the request border) do not change whether the resource is valid R4B, and
# validation costs about 0.3 ms a resource, several per card.
_VALIDATED: set[tuple[str, str | None, str | None]] = set()
_VALIDATED_MAX = 4096


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
    shape = (ingredient, rxnorm, requester)
    if shape not in _VALIDATED:
        MedicationRequest.model_validate(resource)
        if len(_VALIDATED) < _VALIDATED_MAX:
            _VALIDATED.add(shape)
    return resource


def referral_service_request(
    patient_id: str, text: str, requester: str | None = None
) -> dict[str, Any]:
    """A draft referral (ServiceRequest, intent 'proposal') for a therapy given by another team."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"salvage-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "proposal",
        "category": [{"text": "Referral"}],
        "code": {"text": text},
        "subject": {"reference": f"Patient/{patient_id}"},
        "note": [
            {"text": "Proposed by salvage-cds decision support; to be completed by the team."}
        ],
    }
    if requester:
        resource["requester"] = {"reference": requester}
    ServiceRequest.model_validate(resource)
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
