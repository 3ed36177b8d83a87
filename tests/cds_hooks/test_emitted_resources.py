"""Every resource shape the CDS service can propose is valid FHIR R4 (fhir.resources R4B models):
checked here, over every drug, referral and requester form, instead of on every request; each
request keeps a cheap structural check (salvage/fhir/emit.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from salvage.fhir import emit
from salvage.knowledge import KnowledgeBase
from tests.cds_hooks.conftest import hook_body, prefetch_from
from tests.conftest import FIXTURES

REQUESTERS = (None, "Practitioner/dr-a", "https://ehr.example.org/fhir/Practitioner/7")


def _valid(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.mark.parametrize("requester", REQUESTERS)
def test_every_proposal_the_knowledge_base_allows_is_valid_r4(
    kb: KnowledgeBase, requester: str | None
) -> None:
    assert kb.drugs
    for name, drug in kb.drugs.items():
        _valid(emit.proposal_medication_request("p-1", name, drug.rxnorm_ingredient, requester))
        _valid(emit.proposal_medication_request("p-1", name, None, requester))
    for referral in kb.order_checks.referrals.values():
        _valid(emit.referral_service_request("p-1", referral, requester))
    _valid(emit.genotype_service_request("p-1"))


def test_structural_check_refuses_a_broken_proposal() -> None:
    with pytest.raises(ValueError, match="subject"):
        emit.proposal_medication_request("not an id!", "rituximab", "121191")
    with pytest.raises(ValueError, match="medicationCodeableConcept"):
        emit.proposal_medication_request("p-1", "", None)


def _resources_in(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        action["resource"]
        for card in cards
        for suggestion in card.get("suggestions") or ()
        for action in suggestion.get("actions") or ()
        if "resource" in action
    ]


def test_cards_on_every_fixture_carry_valid_r4_resources(call) -> None:  # type: ignore[no-untyped-def]
    emitted = 0
    for path in sorted(FIXTURES.glob("*.json")):
        resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
        patient = next(r["id"] for r in resources if r["resourceType"] == "Patient")
        for service, hook in (
            ("salvage-order-sign", "order-sign"),
            ("salvage-patient-view", "patient-view"),
        ):
            body = hook_body(hook, patient, ["rituximab"], prefetch=prefetch_from(resources))
            reply = call(service, body)
            assert reply.status_code == 200, (path.name, reply.get_data()[:200])
            for resource in _resources_in(reply.get_json()["cards"]):
                _valid(resource)
                emitted += 1
    assert emitted >= 10
