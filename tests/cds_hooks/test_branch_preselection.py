"""isRecommended is not set when transplant candidacy is unknown and the suggestions lie on
different branches of it (ux finding 3); the card says why none is pre-selected."""

from __future__ import annotations

import pytest

from tests.cds_hooks.conftest import fixture_prefetch, hook_body

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]


def _repeat_card(call, patient: str) -> dict:  # type: ignore[no-untyped-def]
    reply = call(
        "salvage-order-sign", hook_body("order-sign", patient, R_CHOP, fixture_prefetch(patient))
    )
    assert reply.status_code == 200
    (card,) = [
        c
        for c in reply.get_json()["cards"]
        if c["source"]["topic"]["code"] == "repeats-failed-therapy"
    ]
    return card


@pytest.mark.parametrize("patient", ["dlbcl-early-relapse", "dlbcl-late-relapse"])
def test_no_suggestion_is_preselected_across_unknown_branches(call, patient: str) -> None:
    card = _repeat_card(call, patient)
    suggestions = card["suggestions"]
    assert len(suggestions) >= 2
    assert not any(s.get("isRecommended") for s in suggestions)
    assert "No suggestion is pre-selected: transplant candidacy is unknown" in card["detail"]
    assert (
        "the suggestions differ by it (" in card["detail"]
        and "Decide the candidacy first" in card["detail"]
    )


@pytest.mark.parametrize("patient", ["dlbcl-no-birthdate-no-ecog", "dlbcl-stale-clearance"])
def test_suggestions_on_one_branch_keep_the_first_recommended(call, patient: str) -> None:
    card = _repeat_card(call, patient)
    assert card["suggestions"][0]["isRecommended"] is True
    assert not any(s.get("isRecommended") for s in card["suggestions"][1:])
    assert "pre-selected" not in card["detail"]
