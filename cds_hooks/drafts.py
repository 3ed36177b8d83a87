"""The draft orders of order-select and order-sign (H4): validated as FHIR, then read as drugs.
A draft may name its drug in place, through a contained Medication, through a Medication in the
draft Bundle, or through a Medication on the FHIR server (read with the history's)."""

from __future__ import annotations

import logging
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from salvage.engine.drugs import concept_text, normaliser_for
from salvage.engine.order_checks import DraftOrder
from salvage.errors import BadRequest
from salvage.fhir.references import FHIR_ID

log = logging.getLogger("salvage.cds")


def draft_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of the draftOrders Bundle, each valid FHIR R4B, else a 400."""
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("draftOrders.entry must be a list")
    resources = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise BadRequest(f"draftOrders.entry[{index}] has no resource")
        if resource["resourceType"] in DSTU2_ORDERS:
            # The CDS Hooks sandbox's default FHIR server is DSTU2 (quirk 25): say so, never
            # answer an empty set of cards as if the order had been checked.
            raise BadRequest(
                f"draftOrders.entry[{index}] is a DSTU2 {resource['resourceType']}: this service "
                "reads FHIR R4 (MedicationRequest); point the CDS client at an R4 FHIR server"
            )
        try:
            model = get_fhir_model_class(resource["resourceType"])
            model.model_validate(resource)
        except (KeyError, ValueError, ValidationError, RecursionError) as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            lenient = _lenient_draft(resource)
            if lenient is None:
                raise BadRequest(
                    f"draftOrders.entry[{index}] is not a valid {resource['resourceType'][:40]}: "
                    f"{first}",
                ) from exc
            log.info("draftOrders.entry[%d]: invalid draft read leniently (%s)", index, first)
            resource = lenient
        resources.append(resource)
    return resources


DSTU2_ORDERS = frozenset({"MedicationOrder"})
# The models a request's drafts are validated with (the draft types EHRs send and the datatypes
# _lenient_draft checks). fhir.resources imports each model module on first use, about 0.1 s.
PRELOADED_MODELS = (
    "MedicationRequest",
    "ServiceRequest",
    "Medication",
    "Reference",
    "CodeableConcept",
)


def preload_models() -> None:
    """Import those models at start-up (salvage serve, before the start-up heap is frozen), so that
    the first request of each worker does not pay for the imports."""
    for name in PRELOADED_MODELS:
        get_fhir_model_class(name)


def _lenient_draft(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The parts of an invalid draft MedicationRequest the rules read (ids, subject, the drug),
    or None when it is not a draft MedicationRequest. The CDS Hooks sandbox sends drafts without
    `intent` until dispense details exist, `category` as one object, and no medication until one
    is chosen (quirk 27): the clinician is mid-order, so this is not the client's error."""
    if resource.get("resourceType") != "MedicationRequest" or resource.get("status") != "draft":
        return None
    # Only those documented departures are forgiven: the draft must validate once they are
    # set aside (a placeholder intent and drug, the category as a list), else it stays a 400.
    repaired = dict(resource)
    repaired.setdefault("intent", "proposal")
    if isinstance(repaired.get("category"), dict):
        repaired["category"] = [repaired["category"]]
    if "medicationCodeableConcept" not in repaired and "medicationReference" not in repaired:
        repaired["medicationCodeableConcept"] = {"text": "not chosen yet"}
    if not _valid("MedicationRequest", repaired):
        return None
    kept: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "draft"}
    rid = resource.get("id")
    if isinstance(rid, str) and FHIR_ID.fullmatch(rid):
        kept["id"] = rid
    for name, datatype in (
        ("subject", "Reference"),
        ("medicationCodeableConcept", "CodeableConcept"),
        ("medicationReference", "Reference"),
    ):
        if _valid(datatype, resource.get(name)):
            kept[name] = resource[name]
    contained = resource.get("contained")
    if isinstance(contained, list):
        kept["contained"] = [
            c
            for c in contained
            if isinstance(c, dict)
            and c.get("resourceType") == "Medication"
            and _valid("Medication", c)
        ]
    return kept


def _valid(type_name: str, value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    try:
        get_fhir_model_class(type_name).model_validate(value)
    except (KeyError, ValueError, ValidationError, RecursionError):
        return False
    return True


def drafts_of(
    resources: list[dict[str, Any]], kb: Any, known: list[dict[str, Any]]
) -> tuple[list[DraftOrder], set[str]]:
    """(the drafts naming a known drug, the 'Type/id' of every draft). known: resources that may
    hold the Medications drafts reference (the draft Bundle, prefetch, reads)."""
    normaliser = normaliser_for(kb)
    medications = {
        f"Medication/{r['id']}": r
        for r in [*resources, *known]
        if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)
    }
    drafts: list[DraftOrder] = []
    ids: set[str] = set()
    for resource in resources:
        rid = resource.get("id")
        if isinstance(rid, str):
            ids.add(f"{resource['resourceType']}/{rid}")
        if resource["resourceType"] != "MedicationRequest":
            continue
        concept = resource.get("medicationCodeableConcept")
        medication = None
        ref = (resource.get("medicationReference") or {}).get("reference") or ""
        if concept is None and ref.startswith("#"):
            medication = next(
                (c for c in resource.get("contained") or [] if c.get("id") == ref[1:]), None
            )
        elif concept is None and ref:
            medication = medications.get("/".join(ref.rstrip("/").split("/")[-2:]))
        ingredients = normaliser.from_concept(concept)
        if medication is not None:
            concept = medication.get("code")
            ingredients = normaliser.from_concept(concept)
            for item in medication.get("ingredient") or []:
                ingredients |= normaliser.from_concept(item.get("itemCodeableConcept"))
        if ingredients:
            drafts.append(
                DraftOrder(
                    # A draft without an id cannot be named in a delete action (H11).
                    resource_id=f"MedicationRequest/{rid}" if isinstance(rid, str) else None,
                    ingredients=ingredients,
                    text=concept_text(concept) or ", ".join(sorted(ingredients)),
                )
            )
    return drafts, ids
