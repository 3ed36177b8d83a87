"""HIV cards are safe (issue 13 item 5): a suggestion never orders fewer drugs than its option
needs, an optimised background is a prompt and not a one-drug order, the hepatitis-B-active pair
is never dropped, and a repeated drug asks for the genotype instead of being called failed."""

from __future__ import annotations

from tests.cds_hooks.conftest import fixture_prefetch
from tests.cds_hooks.test_cards import _renal, cards


def _creates(suggestion) -> list[str]:
    return [
        a["resource"]["medicationCodeableConcept"]["text"]
        for a in suggestion["actions"]
        if a["type"] == "create" and a["resource"]["resourceType"] == "MedicationRequest"
    ]


def _hbv45_prefetch():
    return _renal(fixture_prefetch("hiv-hbv-crcl45"), 1.73, 70, patient="hiv-hbv-crcl45")


def test_h9_a_repeated_drug_asks_for_the_genotype_instead_of_calling_it_failed(call) -> None:
    found = cards(
        call,
        "hiv-hbv-crcl45",
        ["Atripla"],
        prefetch=_hbv45_prefetch(),
    )
    (repeat,) = [c for c in found if c["source"]["topic"]["code"] == "repeats-failed-therapy"]
    assert repeat["summary"] == (
        "efavirenz, emtricitabine, tenofovir disoproxil were part of a regimen with virologic "
        "failure; check the genotype before reusing it"
    )
    assert "which failed" not in repeat["summary"]
    assert "Genotype: emtricitabine inactive" in repeat["detail"]


def test_h10_with_hepatitis_b_every_suggestion_keeps_taf_and_emtricitabine(call) -> None:
    found = cards(
        call,
        "hiv-hbv-crcl45",
        ["Atripla"],
        prefetch=_hbv45_prefetch(),
    )
    suggestions = [s for c in found for s in c.get("suggestions", [])]
    replacing = [s for s in suggestions if s["label"].startswith("Consider")]
    assert replacing
    for suggestion in replacing:
        created = _creates(suggestion)
        assert {"tenofovir alafenamide", "emtricitabine"} <= set(created), suggestion["label"]
        assert "tenofovir disoproxil" not in created
        assert len(created) >= 3


def test_h9_the_hbv_caution_names_taf_below_60_ml_per_min(call) -> None:
    found = cards(
        call,
        "hiv-hbv-crcl45",
        ["Atripla"],
        prefetch=_hbv45_prefetch(),
    )
    text = " ".join(c["detail"] for c in found)
    assert "TAF or TDF" not in text
    assert "tenofovir disoproxil avoided" in text


def test_h9_a_new_regimen_without_the_hbv_pair_is_flagged(call) -> None:
    found = cards(
        call,
        "hiv-hbv-crcl45",
        ["darunavir", "ritonavir", "dolutegravir"],
        prefetch=_hbv45_prefetch(),
    )
    (card,) = [c for c in found if c["source"]["topic"]["code"] == "hbv-pair-dropped"]
    assert card["indicator"] == "warning"
    assert "tenofovir alafenamide + emtricitabine" in card["detail"]
    for suggestion in card.get("suggestions", []):
        assert {"tenofovir alafenamide", "emtricitabine"} <= set(_creates(suggestion))


def test_h10_an_optimised_background_is_never_a_one_drug_order(call) -> None:
    found = cards(call, "hiv-multiclass-resistance", ["Trogarzo"])
    kinds = [c["source"]["topic"]["code"] for c in found]
    assert "single-active-drug" in kinds
    for card in found:
        for suggestion in card.get("suggestions", []):
            assert "optimised background" not in suggestion["label"]
            created = _creates(suggestion)
            assert len(created) != 1, suggestion["label"]  # 0 = the genotype ServiceRequest


def test_h9_options_list_says_an_optimised_background_is_a_prompt(call) -> None:
    found = cards(call, "hiv-multiclass-resistance", [], hook="patient-view")
    text = " ".join(c["detail"] for c in found)
    assert "Fostemsavir + optimised background" in text
    assert "A prompt to build the regimen" in text
    assert "fully active: " in text


def test_h9_a_booster_with_vincristine_gets_an_interaction_warning(call) -> None:
    found = cards(call, "hiv-virologic-failure", ["Prezcobix", "vincristine"])
    (card,) = [c for c in found if c["source"]["topic"]["code"] == "drug-interaction"]
    assert card["summary"] == "Interaction: cobicistat with vincristine"
    assert "hiv-druginteractions.org" in card["detail"] or "clinicalinfo.hiv.gov" in card["detail"]


def test_h9_lenacapavir_with_a_strong_cyp3a_inducer_gets_an_interaction_warning(call) -> None:
    found = cards(call, "hiv-multiclass-resistance", ["Sunlenca", "rifampin", "doravirine"])
    (card,) = [c for c in found if c["source"]["topic"]["code"] == "drug-interaction"]
    assert card["summary"] == "Interaction: lenacapavir with rifampin"


def test_h9_an_mmae_conjugate_with_a_boosted_regimen_in_use_gets_a_warning(call) -> None:
    # the patient takes ritonavir-boosted darunavir: ordering polatuzumab vedotin interacts
    found = cards(call, "hiv-multiclass-resistance", ["Polivy"])
    (card,) = [c for c in found if c["source"]["topic"]["code"] == "drug-interaction"]
    assert "ritonavir" in card["summary"] and "polatuzumab vedotin" in card["summary"]


def test_hiv_cards_state_counts_and_companions_with_an_hiv_disclaimer(call) -> None:
    found = cards(call, "hiv-multiclass-resistance", [], hook="patient-view")
    text = " ".join(c["detail"] for c in found)
    assert "Fully active drugs: " in text and "Companions (fully active, named): " in text
    assert "tumour board" not in text and "HIV specialist" in text
    for card in found:
        assert not any("tumour board" in r["display"] for r in card["overrideReasons"])
    for card in found:
        for line in card["detail"].splitlines():
            links = [part for part in line.split("; [") if "](" in part]
            assert len(links) == len(set(links)), line
