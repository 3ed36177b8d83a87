"""Resources the product emits (CDS suggestions). Each gets one cheap structural check here;
every shape these functions can build is validated with the fhir.resources R4B models in
tests/cds_hooks/test_emitted_resources.py (about 0.3 ms a resource, too dear per request)."""

from __future__ import annotations

import re
import uuid
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_REFERENCE = re.compile(r"[A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


def _check(resource: dict[str, Any], concept_key: str) -> dict[str, Any]:
    """The structure every emitted proposal must have (R4: id, status, intent, subject, a coded
    or named concept, a reference requester); a ValueError names what is wrong."""
    problems = []
    if not _ID.fullmatch(str(resource.get("id"))):
        problems.append("id")
    if resource.get("status") != "draft" or resource.get("intent") != "proposal":
        problems.append("status/intent")
    if not _REFERENCE.fullmatch(str((resource.get("subject") or {}).get("reference"))):
        problems.append("subject")
    requester = resource.get("requester")
    if requester is not None and not isinstance(requester.get("reference"), str):
        problems.append("requester")
    concept = resource.get(concept_key)
    if not isinstance(concept, dict) or not (concept.get("text") or concept.get("coding")):
        problems.append(concept_key)
    for coding in (concept or {}).get("coding") or ():
        if not (isinstance(coding.get("system"), str) and isinstance(coding.get("code"), str)):
            problems.append(f"{concept_key}.coding")
    if problems:
        raise ValueError(f"emitted {resource.get('resourceType')} malformed: {problems}")
    return resource


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
    return _check(resource, "medicationCodeableConcept")


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
    return _check(resource, "code")


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
    return _check(resource, "code")
