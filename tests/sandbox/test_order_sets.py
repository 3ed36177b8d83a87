"""The sandbox's order entry lists the order sets of the patient's diagnoses first, the rest
under "Other orders" (ux finding 4)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sandbox import order_sets

CATALOG = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "sandbox" / "order_catalog.yaml").read_text()
)


def _condition(text: str, verification: str | None = None) -> dict:
    condition: dict = {"resourceType": "Condition", "code": {"text": text}}
    if verification:
        condition["verificationStatus"] = {"coding": [{"code": verification}]}
    return condition


def _labels(texts: list[str]) -> list[str]:
    return [label for label, _ in order_sets.groups(CATALOG, texts)]


def test_the_patients_diagnosis_comes_first_and_the_rest_under_other_orders() -> None:
    groups = order_sets.groups(CATALOG, ["Diffuse large B-cell lymphoma"])
    assert [label for label, _ in groups] == ["Lymphoma", order_sets.OTHER]
    first = [value for value, _ in groups[0][1]]
    assert first[0] == "regimen:R-CHOP" and "regimen:R-ICE" in first
    other = [value for value, _ in groups[1][1]]
    assert "regimen:R-CHOP" not in other and "regimen:DRV/r + DTG" in other


def test_every_order_is_offered_exactly_once() -> None:
    for texts in ([], ["HIV disease", "Malignant neoplasm of breast"], ["NSCLC"]):
        values = [v for _, items in order_sets.groups(CATALOG, texts) for v, _ in items]
        expected = [f"regimen:{n}" for n in CATALOG["regimens"]]
        expected += [f"drug:{n}" for n in CATALOG["drugs"]]
        assert sorted(values) == sorted(expected)


def test_words_match_whole_words_case_insensitively_and_several_diagnoses_are_listed() -> None:
    assert _labels(["HIV disease", "Carcinoma of right breast"]) == [
        "Breast cancer",
        "HIV",
        order_sets.OTHER,
    ]
    assert _labels(["Archive"]) == [order_sets.OTHER]  # "hiv" inside a word is not HIV
    assert _labels(["Human immunodeficiency virus infection"])[0] == "HIV"


def test_displays_count_and_refuted_conditions_do_not() -> None:
    coded = {"code": {"coding": [{"display": "Non-small cell lung cancer"}]}}
    assert order_sets.condition_texts([coded]) == ["Non-small cell lung cancer"]
    refuted = _condition("DLBCL relapse (refuted by biopsy)", "refuted")
    assert order_sets.condition_texts([refuted]) == []


def test_the_sandbox_counts_its_orders_in_words() -> None:
    from sandbox.wording import counted

    assert counted(1, "order") == "1 order" and counted(5, "order") == "5 orders"
