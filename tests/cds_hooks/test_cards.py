"""Card rules, one scenario each, through the real service with fixture prefetch."""

from __future__ import annotations

from fhir.resources.R4B.servicerequest import ServiceRequest

from tests.cds_hooks.conftest import fixture_prefetch, hook_body, prefetch_from

SIGN = "salvage-order-sign"


def cards(call, patient: str, drugs: list[str], prefetch=None, hook="order-sign"):
    body = hook_body(hook, patient, drugs, prefetch or fixture_prefetch(patient))
    service = {
        "order-sign": SIGN,
        "order-select": "salvage-order-select",
        "patient-view": "salvage-patient-view",
    }[hook]
    reply = call(service, body)
    assert reply.status_code == 200, reply.get_data()
    return reply.get_json()["cards"]


def _renal(prefetch, creatinine: float, weight: float, patient: str = "dlbcl-late-relapse"):
    def obs(i, loinc, value, unit):
        return {
            "resource": {
                "resourceType": "Observation",
                "id": f"renal-{i}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": _today(),
                "valueQuantity": {"value": value, "unit": unit, "code": unit},
            }
        }

    prefetch["observations"]["entry"] += [
        obs(1, "2160-0", creatinine, "mg/dL"),
        obs(2, "29463-7", weight, "kg"),
    ]
    return prefetch


def _today() -> str:
    from datetime import date

    return date.today().isoformat()


def test_a_repeated_failed_regimen_gets_exactly_one_warning_card(call) -> None:
    found = cards(
        call,
        "dlbcl-early-relapse",
        ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"],
    )
    assert [c["indicator"] for c in found] == ["warning"]


def test_a_drug_that_was_not_tolerated_is_flagged(call) -> None:
    (card,) = cards(call, "dlbcl-intolerance", ["vincristine"])
    assert "not tolerated" in card["summary"] and card["indicator"] == "warning"
    assert "MedicationRequest/dlbcl-intolerance-mr-12" in card["detail"]


def test_cisplatin_with_low_clearance_is_contraindicated_with_alternatives(call) -> None:
    prefetch = _renal(
        fixture_prefetch("dlbcl-early-relapse"),
        creatinine=2.0,
        weight=60,
        patient="dlbcl-early-relapse",
    )
    found = cards(
        call,
        "dlbcl-early-relapse",
        ["rituximab", "dexamethasone", "cytarabine", "cisplatin"],
        prefetch,
    )
    (card,) = [c for c in found if c["summary"].startswith("cisplatin: contraindicated")]
    assert "Galsky 2011" in card["detail"] and "Observation/renal-1" in card["detail"]
    labels = [s["label"] for s in card["suggestions"]]
    # Changed 2026-12 (issue 10, item 6): a clearance of 31 mL/min is a PILOT "transplant not
    # intended" criterion, so axi-cel (ZUMA-7: transplant candidates) is no longer suggested; the
    # alternatives are liso-cel (PILOT) and the options for patients who are not candidates.
    # Changed 2026-12 (issue 12, item 7): glofitamab-GemOx (STARGLO) now ranks after Pola-BR.
    assert labels == [
        "Consider Lisocabtagene maraleucel instead",
        "Consider Pola-BR instead",
        "Consider Glofitamab-GemOx instead",
    ]


def test_with_low_clearance_the_card_offers_the_non_transplant_alternatives(call) -> None:
    prefetch = _renal(fixture_prefetch("dlbcl-late-relapse"), creatinine=2.0, weight=60)
    (card,) = cards(
        call,
        "dlbcl-late-relapse",
        ["rituximab", "dexamethasone", "cytarabine", "cisplatin"],
        prefetch,
    )
    assert card["summary"].startswith("cisplatin: contraindicated")
    # Changed 2026-12 (issue 10, item 6): before, every alternative (transplant-track salvage) was
    # excluded here. A clearance of 31 mL/min is a PILOT "transplant not intended" criterion, so
    # the options for patients who are not transplant candidates now fit, and the card offers them.
    labels = [s["label"] for s in card["suggestions"]]
    # Changed 2026-12 (issue 12, item 3): liso-cel is offered for late relapse in patients who are
    # not transplant candidates (PILOT had no 12-month limit), and glofitamab-GemOx (STARGLO).
    assert labels == [
        "Consider Lisocabtagene maraleucel instead",
        "Consider Pola-BR instead",
        "Consider Glofitamab-GemOx instead",
    ]


def test_cisplatin_with_normal_clearance_gets_only_monitoring(call) -> None:
    prefetch = _renal(fixture_prefetch("dlbcl-late-relapse"), creatinine=0.8, weight=80)
    (card,) = cards(
        call,
        "dlbcl-late-relapse",
        ["rituximab", "dexamethasone", "cytarabine", "cisplatin"],
        prefetch,
    )
    assert card["indicator"] == "info" and "R-DHAP" in card["summary"]


def test_a_reasonable_salvage_choice_gets_one_monitoring_card(call) -> None:
    (card,) = cards(
        call, "dlbcl-early-relapse", ["axicabtagene ciloleucel", "fludarabine", "cyclophosphamide"]
    )
    assert card["indicator"] == "info" and "cytokine release syndrome" in card["detail"]
    assert "suggestions" not in card


def test_a_regimen_already_given_after_the_failure_is_not_called_a_repeat(call) -> None:
    # dlbcl-late-relapse already had R-ICE after relapsing: not a failed regimen, no warning
    found = cards(
        call, "dlbcl-late-relapse", ["rituximab", "ifosfamide", "carboplatin", "etoposide"]
    )
    assert all(c["indicator"] != "warning" for c in found)


def test_no_failure_no_card(call) -> None:
    assert cards(call, "breast-cmf-capecitabine-substitution", ["capecitabine"]) == []


def test_hiv_adding_a_single_drug_to_a_failing_regimen_is_flagged(call) -> None:
    (card,) = cards(call, "hiv-virologic-failure", ["darunavir"])
    assert card["source"]["topic"]["code"] == "single-active-drug"
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    ServiceRequest.model_validate(action["resource"])
    assert action["resource"]["intent"] == "proposal"


def test_patient_view_reminds_when_no_new_line_follows_a_failure(call) -> None:
    (card,) = cards(call, "hiv-virologic-failure", [], hook="patient-view")
    assert card["indicator"] == "info" and "No new line of therapy recorded" in card["summary"]
    assert "if a plan is in place, no action is needed" in " ".join(card["detail"].split())
    assert card["suggestions"][0]["label"].startswith("Order an HIV-1 genotypic")


def test_patient_view_is_quiet_once_a_new_line_started(call) -> None:
    assert cards(call, "dlbcl-late-relapse", [], hook="patient-view") == []


def _hiv_prefetch(*observations):
    prefetch = fixture_prefetch("hiv-virologic-failure")
    prefetch["observations"]["entry"] += [{"resource": o} for o in observations]
    return prefetch


def _obs(oid: str, loinc: str, **value):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": "Patient/hiv-virologic-failure"},
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "effectiveDateTime": _today(),
        **value,
    }


def test_abacavir_with_hla_b5701_positive_is_contraindicated(call) -> None:
    positive = _obs(
        "hla-1",
        "50956-2",
        valueCodeableConcept={
            "coding": [
                {"system": "http://snomed.info/sct", "code": "10828004", "display": "Positive"}
            ]
        },
    )
    found = cards(
        call,
        "hiv-virologic-failure",
        ["abacavir", "dolutegravir", "lamivudine"],
        _hiv_prefetch(positive),
    )
    assert any(
        c["summary"].startswith("abacavir: contraindicated") and "Observation/hla-1" in c["detail"]
        for c in found
    )


def test_abacavir_with_hla_b5701_negative_is_not_flagged(call) -> None:
    negative = _obs(
        "hla-2",
        "50956-2",
        valueCodeableConcept={
            "coding": [
                {"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}
            ]
        },
    )
    found = cards(
        call,
        "hiv-virologic-failure",
        ["abacavir", "dolutegravir", "lamivudine"],
        _hiv_prefetch(negative),
    )
    assert not any("abacavir: contraindicated" in c["summary"] for c in found)


def test_tenofovir_disoproxil_below_60_ml_per_min_is_contraindicated_but_taf_is_not(call) -> None:
    renal = [
        _obs("cr", "2160-0", valueQuantity={"value": 1.5, "unit": "mg/dL", "code": "mg/dL"}),
        _obs("wt", "29463-7", valueQuantity={"value": 60, "unit": "kg", "code": "kg"}),
    ]
    tdf = cards(
        call,
        "hiv-virologic-failure",
        ["darunavir", "ritonavir", "tenofovir disoproxil", "emtricitabine"],
        _hiv_prefetch(*renal),
    )
    assert any(c["summary"].startswith("tenofovir disoproxil: contraindicated") for c in tdf)
    taf = cards(
        call,
        "hiv-virologic-failure",
        ["darunavir", "ritonavir", "tenofovir alafenamide", "emtricitabine"],
        _hiv_prefetch(*renal),
    )
    assert not any("contraindicated" in c["summary"] for c in taf)


def test_the_warning_names_the_failure_of_the_repeated_line_not_the_latest_one(call) -> None:
    from tests.conftest import Chart, q21

    chart = Chart(pid="two-failures")
    chart.cycles(
        ["rituximab", "cyclophosphamide", "vincristine", "prednisone"], q21("2023-01-02", 6)
    )
    for day in q21("2023-01-02", 6):  # doses documented: the anthracycline total is known
        chart.give("doxorubicin", day, dosage={"dose": {"value": 50, "unit": "mg/m2"}})
    relapse = chart.status("2023-11-20")
    chart.cycles(["rituximab", "ifosfamide", "carboplatin", "etoposide"], ["2023-12-04"])
    chart.order(
        "ifosfamide",
        "2023-12-25",
        status="stopped",
        statusReason={"coding": [{"system": "http://snomed.info/sct", "code": "407563006"}]},
    )

    prefetch = prefetch_from(chart.resources)
    (card,) = cards(
        call,
        "two-failures",
        ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"],
        prefetch,
    )
    assert card["summary"] == "This order repeats R-CHOP, which failed (relapse, 2023-11-20)"
    assert relapse in card["detail"]


def test_cisplatin_with_a_stale_low_clearance_gets_a_warning_not_an_info_card(call) -> None:
    # issue 10, item 7: the last clearance (38 mL/min) is 4 years old; the abnormal old value keeps
    # its caution at order entry and the card names its date.
    found = cards(
        call,
        "dlbcl-stale-clearance",
        ["rituximab", "dexamethasone", "cytarabine", "cisplatin"],
    )
    assert [c["indicator"] for c in found] == ["warning"]
    assert "2022-06-01" in found[0]["detail"] and "re-check" in found[0]["detail"]


def test_options_that_hold_on_one_branch_say_so_in_the_card(call) -> None:
    """dlbcl-early-relapse has no performance status: transplant eligibility is unknown, and
    the card's option list labels each option's branch as the screen does (never assumed fit)."""
    found = cards(
        call,
        "dlbcl-early-relapse",
        ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"],
    )
    detail = found[0]["detail"]
    assert "*(if transplant candidate)*" in detail
    assert "*(if not a transplant candidate)*" in detail
