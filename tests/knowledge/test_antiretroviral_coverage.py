"""Every antiretroviral in current use and the common brand-name combinations map to every
ingredient (issue 13 item 6); a combination read only in part is reported."""

from __future__ import annotations

import pytest

from salvage.engine.drugs import normaliser_for
from salvage.fhir.records import build_patient_records

BRANDS = {
    "Genvoya": {"elvitegravir", "cobicistat", "emtricitabine", "tenofovir alafenamide"},
    "Stribild": {"elvitegravir", "cobicistat", "emtricitabine", "tenofovir disoproxil"},
    "Symtuza": {"darunavir", "cobicistat", "emtricitabine", "tenofovir alafenamide"},
    "Kaletra": {"lopinavir", "ritonavir"},
    "Cabenuva": {"cabotegravir", "rilpivirine"},
    "Vocabria": {"cabotegravir"},
    "Juluca": {"dolutegravir", "rilpivirine"},
    "Dovato": {"dolutegravir", "lamivudine"},
    "Triumeq": {"abacavir", "dolutegravir", "lamivudine"},
    "Biktarvy": {"bictegravir", "emtricitabine", "tenofovir alafenamide"},
    "Odefsey": {"rilpivirine", "emtricitabine", "tenofovir alafenamide"},
    "Complera": {"rilpivirine", "emtricitabine", "tenofovir disoproxil"},
    "Delstrigo": {"doravirine", "lamivudine", "tenofovir disoproxil"},
    "Symfi": {"efavirenz", "lamivudine", "tenofovir disoproxil"},
    "Prezcobix": {"darunavir", "cobicistat"},
    "Evotaz": {"atazanavir", "cobicistat"},
    "Sunlenca": {"lenacapavir"},
    "Rukobia": {"fostemsavir"},
    "Trogarzo": {"ibalizumab"},
    "Atripla": {"efavirenz", "emtricitabine", "tenofovir disoproxil"},
    "Combivir": {"lamivudine", "zidovudine"},
    "Epzicom": {"abacavir", "lamivudine"},
    "Descovy": {"emtricitabine", "tenofovir alafenamide"},
    "lopinavir/ritonavir 200/50 mg": {"lopinavir", "ritonavir"},
    "cabotegravir/rilpivirine ER injection": {"cabotegravir", "rilpivirine"},
    "elvitegravir/cobicistat/emtricitabine/tenofovir alafenamide": {
        "elvitegravir",
        "cobicistat",
        "emtricitabine",
        "tenofovir alafenamide",
    },
    "efavirenz/emtricitabine/tenofovir DF": {
        "efavirenz",
        "emtricitabine",
        "tenofovir disoproxil",
    },
}


@pytest.mark.parametrize(("text", "ingredients"), sorted(BRANDS.items()))
def test_brand_and_combination_text_maps_to_every_ingredient(kb, text, ingredients) -> None:
    assert normaliser_for(kb).from_text(text) == ingredients


@pytest.mark.parametrize(
    "drug",
    [
        "nevirapine",
        "etravirine",
        "fosamprenavir",
        "tipranavir",
        "maraviroc",
        "enfuvirtide",
        "raltegravir",
        "zidovudine",
        "atazanavir",
    ],
)
def test_older_and_entry_inhibitor_antiretrovirals_are_known(kb, drug) -> None:
    assert kb.drugs[drug].role == "antiretroviral"


def test_a_combination_read_only_in_part_is_reported(kb) -> None:
    order = {
        "resourceType": "MedicationRequest",
        "id": "m",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2026-01-01",
        "medicationCodeableConcept": {"text": "islatravir 0.75 mg / doravirine 100 mg tablet"},
    }
    patients, _ = build_patient_records([(order, 0)], kb)
    record = patients["Patient/p"]
    assert [e.ingredients for e in record.exposures] == [frozenset({"doravirine"})]
    (warning,) = record.warnings
    assert "recognised only in part" in warning.problem and "islatravir" in warning.problem


def test_doses_after_a_slash_are_not_taken_for_missing_ingredients(kb) -> None:
    assert normaliser_for(kb).unrecognised_parts("Kaletra 200 mg/50 mg tablets") is None
