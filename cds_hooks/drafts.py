"""The draft orders of order-select and order-sign (H4): validated as FHIR, then read as drugs.
A draft may name its drug in place, through a contained Medication, through a Medication in the
draft Bundle, or through a Medication on the FHIR server (read with the history's)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from salvage.engine.drugs import concept_text, normaliser_for
from salvage.engine.order_checks import DraftOrder
from salvage.errors import BadRequest


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
        try:
            model = get_fhir_model_class(resource["resourceType"])
            model.model_validate(resource)
        except (KeyError, ValueError, ValidationError, RecursionError) as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise BadRequest(
                f"draftOrders.entry[{index}] is not a valid {resource['resourceType'][:40]}: "
                f"{first}",
            ) from exc
        resources.append(resource)
    return resources


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
