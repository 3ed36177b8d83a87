"""HIV-1 genotype results as laboratories send them in FHIR become GenotypeResult records."""

from __future__ import annotations

import pytest

from salvage.engine import resistance
from salvage.fhir.records import build_patient_records


def _records(kb, *resources):
    base = [{"resourceType": "Patient", "id": "p"}]
    patients, skipped = build_patient_records(
        ((r, i) for i, r in enumerate([*base, *resources])), kb
    )
    assert not skipped, skipped
    return patients["Patient/p"]


def _obs(rid: str, name: str, day: str = "2026-03-01", **value):
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": day,
        "code": {"text": name},
        **value,
    }


@pytest.mark.parametrize(
    ("text", "genes", "mutations"),
    [
        ("RT: M184V, K103N; PR: none", {"RT", "PR"}, {"RT:M184V", "RT:K103N"}),
        (
            "Reverse transcriptase: K65R\nIntegrase: Q148H, G140S",
            {"RT", "IN"},
            {"RT:K65R", "IN:Q148H", "IN:G140S"},
        ),
        ("M184V/I, K103KN", {"RT"}, {"RT:M184V", "RT:M184I", "RT:K103N"}),
        ("IN: no resistance mutations; RT: M184V", {"IN", "RT"}, {"RT:M184V"}),
        # one sentence per gene (review finding 14): the PR sentence is read, not swallowed by RT
        ("RT: K103N, M184V. PR: no major mutations.", {"RT", "PR"}, {"RT:K103N", "RT:M184V"}),
        ("RT: K103N. Protease: no resistance mutations", {"RT", "PR"}, {"RT:K103N"}),
        ("RT: M184V. PR: none. IN: not sequenced.", {"RT", "PR"}, {"RT:M184V"}),
        ("RT: M184V. PR: failed to amplify", {"RT"}, {"RT:M184V"}),
        ("RT: M184V. High-level resistance to FTC/3TC.", {"RT"}, {"RT:M184V"}),
    ],
)
def test_a_mutation_list_in_value_string_is_read(kb, text, genes, mutations) -> None:
    record = _records(kb, _obs("g", "HIV-1 genotype drug resistance", valueString=text))
    (result,) = record.genotypes
    assert result.genes == genes
    assert result.mutations == mutations
    assert result.problem is None


def test_genomics_reporting_components_are_read_with_their_gene(kb) -> None:
    loinc = "http://loinc.org"
    record = _records(
        kb,
        _obs(
            "g",
            "Viral genotype panel",
            component=[
                {
                    "code": {"coding": [{"system": loinc, "code": "48018-6"}]},
                    "valueCodeableConcept": {"text": "Integrase"},
                },
                {
                    "code": {"coding": [{"system": loinc, "code": "48005-3"}]},
                    "valueCodeableConcept": {"text": "N155H"},
                },
            ],
        ),
    )
    (result,) = record.genotypes
    assert result.mutations == {"IN:N155H"} and result.genes == {"IN"}


def test_the_laboratorys_own_call_wins_over_the_rules(kb) -> None:
    interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    record = _records(
        kb,
        _obs("g1", "HIV-1 genotype (PR)", valueString="PR: I50V, I84V, L76V"),
        _obs(
            "g2",
            "HIV-1 darunavir resistance interpretation",
            valueCodeableConcept={"text": "Low-level resistance"},
            interpretation=[{"coding": [{"system": interpretation, "code": "I"}]}],
        ),
    )
    activity = resistance.assess(record, kb)
    assert activity.drugs["darunavir"].level == "partial"
    assert activity.drugs["darunavir"].basis == "laboratory interpretation"


def test_a_diagnostic_report_groups_its_observations_into_one_test(kb) -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r",
        "status": "final",
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-03-01",
        "code": {"text": "HIV-1 genotypic resistance report"},
        "result": [{"reference": "Observation/a"}, {"reference": "Observation/b"}],
    }
    record = _records(
        kb,
        report,
        _obs("a", "HIV-1 genotype RT", valueString="RT: M184V"),
        _obs("b", "HIV-1 integrase genotype", day="2026-03-02", valueString="none"),
    )
    tests, unreadable = resistance.genotype_tests(record)
    (test,) = tests
    assert test.sources == ("DiagnosticReport/r", "Observation/a", "Observation/b")
    assert test.genes == {"RT", "IN"} and not unreadable


def test_an_unreadable_genotype_is_reported_as_such(kb) -> None:
    record = _records(kb, _obs("g", "HIV-1 genotype", valueString="Amplification failed"))
    tests, unreadable = resistance.genotype_tests(record)
    assert tests == ()
    assert "Observation/g" in unreadable[0] and "not fully read" in unreadable[0]


def test_archived_resistance_counts_after_a_later_clean_genotype(kb) -> None:
    record = _records(
        kb,
        _obs("old", "HIV-1 genotype", day="2017-01-01", valueString="RT: M184V"),
        _obs("new", "HIV-1 genotype", day="2026-01-01", valueString="RT: none"),
    )
    activity = resistance.assess(record, kb)
    assert activity.level("emtricitabine") == "inactive"
    assert activity.drugs["emtricitabine"].sources == ("Observation/old",)


def test_a_drug_whose_gene_was_never_sequenced_is_unknown_not_active(kb) -> None:
    record = _records(kb, _obs("g", "HIV-1 genotype", valueString="RT: none; PR: none"))
    activity = resistance.assess(record, kb)
    assert activity.level("dolutegravir") == "unknown"
    assert activity.level("lenacapavir") == "unknown"
    assert activity.level("ibalizumab") == "unknown"
    assert activity.level("darunavir") == "active"


def test_other_observations_are_not_taken_for_genotypes(kb) -> None:
    record = _records(kb, _obs("g", "HIV-1 RNA comment", valueString="M184V noted"))
    assert record.genotypes == []


def test_a_loinc_coded_genotype_names_its_genes(kb) -> None:
    loinc = "http://loinc.org"
    rt_pr = _obs("a", "", valueString="K103N, M184V")
    rt_pr["code"] = {"coding": [{"system": loinc, "code": "53798-5"}]}
    integrase = _obs("b", "", valueString="None detected")
    integrase["code"] = {"coding": [{"system": loinc, "code": "72560-6"}]}
    record = _records(kb, rt_pr, integrase)
    first, second = record.genotypes
    assert first.genes == {"RT", "PR"} and first.mutations == {"RT:K103N", "RT:M184V"}
    assert second.genes == {"IN"} and second.mutations == frozenset()
    assert resistance.assess(record, kb).level("dolutegravir") == "active"


def test_genotype_loinc_codes_are_requested_by_the_observation_searches(kb) -> None:
    assert {"53798-5", "72560-6"} <= set(kb.loinc_index)


def test_a_region_the_report_says_was_not_assessed_stays_unknown_despite_the_code(kb) -> None:
    # LOINC 53798-5 names RT and PR; "PR: failed to amplify" must not make PR wild type.
    loinc = {"coding": [{"system": "http://loinc.org", "code": "53798-5"}]}
    observation = _obs("g", "x", valueString="RT: K103N; PR: failed to amplify")
    observation["code"] = loinc
    (result,) = _records(kb, observation).genotypes
    assert result.genes == {"RT"} and result.problem is None


def test_a_result_that_only_says_a_region_was_not_sequenced_says_so(kb) -> None:
    record = _records(kb, _obs("g", "HIV-1 genotype", valueString="IN: not sequenced"))
    (result,) = record.genotypes
    assert result.genes == frozenset() and result.problem == "IN not assessed"
