"""Issue 10 rules at their thresholds, each tested on both sides: comparators, dates, verification
status, performance status codings, cycle and primary-refractory windows, PILOT criteria,
recency."""

from __future__ import annotations

from datetime import date

import pytest

from salvage.engine import analyse_patient, contraindications, factors, fitness
from salvage.engine.measures import exceeds, side
from salvage.engine.recommend import recommend
from salvage.fhir.records import build_patient_records
from tests.conftest import AS_OF, LOINC, SNOMED, Chart, q21

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]
R_ICE = ["rituximab", "ifosfamide", "carboplatin", "etoposide"]
DLBCL = {"coding": [{"system": SNOMED, "code": "109969005"}]}


def record_of(chart: Chart, kb):
    patients, skipped = build_patient_records(((r, "test") for r in chart.resources), kb)
    assert not skipped, skipped
    return patients[f"Patient/{chart.pid}"]


def observe(chart: Chart, loinc: str, day: str = "2026-06-10", **value) -> str:
    return chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": LOINC, "code": loinc}]},
        effectiveDateTime=day,
        **value,
    )


# -- comparators (item 10) ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "comparator", "threshold", "expected"),
    [
        (0.2, "<", 0.2, "below"),  # "<0.2" is below 0.2
        (0.3, "<", 0.2, "indeterminate"),  # "<0.3" may be above or below 0.2
        (0.2, None, 0.2, "at-or-above"),
        (0.19, None, 0.2, "below"),
        (200, "<=", 200, "indeterminate"),  # "<=200" may be exactly 200
        (199, "<=", 200, "below"),
        (59, ">", 60, "indeterminate"),  # eGFR ">59" cannot be placed against 60
        (60, ">", 60, "at-or-above"),
        (60, ">=", 60, "at-or-above"),
    ],
)
def test_a_comparator_places_the_value_or_says_indeterminate(
    value: float, comparator: str | None, threshold: float, expected: str
) -> None:
    assert side(value, comparator, threshold) == expected


@pytest.mark.parametrize(
    ("value", "comparator", "expected"),
    [(80, None, False), (81, None, True), (80, ">", True), (79, ">", None), (80, "<", False)],
)
def test_strictly_above_honours_the_comparator(value, comparator, expected) -> None:
    assert exceeds(value, comparator, 80) is expected


def _after_prostatectomy(chart: Chart) -> None:
    chart.procedure("176262001", "2021-03-15")


@pytest.mark.parametrize(
    ("second", "comparator", "recurrence"),
    [(0.2, None, True), (0.2, "<", False), (0.3, "<", False), (0.19, None, False)],
)
def test_psa_below_the_comparator_is_no_biochemical_recurrence(
    kb, second: float, comparator: str | None, recurrence: bool
) -> None:
    chart = Chart(disease_snomed="399068003")
    _after_prostatectomy(chart)
    observe(
        chart,
        "2857-1",
        "2021-06-01",
        valueQuantity={"value": 0.25, "unit": "ng/mL", "code": "ng/mL"},
    )
    q = {"value": second, "unit": "ng/mL", "code": "ng/mL"} | (
        {"comparator": comparator} if comparator else {}
    )
    observe(chart, "2857-1", "2021-09-01", valueQuantity=q)
    kinds = [f.kind for f in chart.analyse(kb).failures]
    assert (kinds == ["biochemical-recurrence"]) is recurrence


def _on_art(chart: Chart) -> None:
    chart.order("Biktarvy", "2020-01-01", status="active")


@pytest.mark.parametrize(
    ("text", "failure"),
    [("<20 copies/mL", False), ("Not detected", False), ("250 copies/mL", True), ("<500", False)],
)
def test_hiv_rna_written_as_text_is_read_with_its_comparator(kb, text: str, failure: bool) -> None:
    chart = Chart(disease_snomed="86406008")
    _on_art(chart)
    observe(
        chart,
        "20447-9",
        "2020-08-01",
        valueQuantity={"value": 900, "unit": "{copies}/mL", "code": "{copies}/mL"},
    )
    observe(chart, "20447-9", "2020-09-01", valueString=text)
    analysis = chart.analyse(kb)
    assert analysis.warnings == ()
    assert ([f.kind for f in analysis.failures] == ["virologic-failure"]) is failure


@pytest.mark.parametrize(("comparator", "failure"), [("<", False), (None, True)])
def test_hiv_rna_less_than_200_is_not_at_or_above_200(kb, comparator, failure: bool) -> None:
    chart = Chart(disease_snomed="86406008")
    _on_art(chart)
    for day in ("2020-08-01", "2020-09-01"):
        q = {"value": 200, "unit": "{copies}/mL", "code": "{copies}/mL"}
        observe(
            chart,
            "20447-9",
            day,
            valueQuantity=q | ({"comparator": comparator} if comparator else {}),
        )
    assert bool(chart.analyse(kb).failures) is failure


@pytest.mark.parametrize(
    ("egfr", "basis"), [(">59", "indeterminate"), (">60", None), ("58", "current")]
)
def test_egfr_with_a_comparator_is_never_read_as_its_number(
    kb, egfr: str, basis: str | None
) -> None:
    chart = Chart()
    observe(chart, "98979-8", "2026-06-20", valueString=f"{egfr} mL/min/1.73m2")
    findings = contraindications.drug_findings(
        frozenset({"cisplatin"}), record_of(chart, kb), kb, AS_OF
    )
    assert [f.basis for f in findings] == ([basis] if basis else [])


# -- dates (items 2 and 11) -----------------------------------------------------------------------
def _relapse_condition(chart: Chart, **dates) -> str:
    return chart.add(
        "Condition",
        code=DLBCL,
        clinicalStatus={"coding": [{"code": "relapse"}]},
        **dates,
    )


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ({"onsetDateTime": "2024-03-01", "recordedDate": "2024-06-01"}, "2024-03-01"),
        ({"onsetPeriod": {"start": "2024-03-01"}}, "2024-03-01"),
        ({"onsetPeriod": {"end": "2024-03-01"}}, "2024-03-01"),
        ({"onsetString": "relapse on PET 2024-03-01"}, "2024-03-01"),
        ({"onsetAge": {"value": 64, "unit": "a", "code": "a"}}, "2024-01-01"),
        ({"recordedDate": "2024-06-01"}, "2024-06-01"),
        ({"abatementDateTime": "2024-05-01", "recordedDate": "2024-06-01"}, "2024-05-01"),
        # an onset before first-line therapy is the original diagnosis: the recorded date dates it
        ({"onsetDateTime": "2021-01-01", "recordedDate": "2024-06-01"}, "2024-06-01"),
    ],
)
def test_a_relapse_is_dated_from_every_fhir_choice_onset_first(kb, dates, expected: str) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2023-01-02", 6))
    source = _relapse_condition(chart, **dates)
    (failure,) = chart.analyse(kb).failures
    assert (failure.when.isoformat(), failure.sources) == (expected, (source,))


def test_a_relapse_that_cannot_be_dated_is_reported(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2023-01-02", 6))
    source = _relapse_condition(chart, onsetString="some time ago")
    analysis = chart.analyse(kb)
    assert analysis.failures == ()
    assert [w.source for w in analysis.warnings] == [source]


def test_an_observation_with_effective_instant_is_read(kb) -> None:
    chart = Chart()
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": LOINC, "code": "89247-1"}]},
        effectiveInstant="2026-06-01T10:00:00.000Z",
        valueInteger=2,
    )
    fact = factors.ecog(record_of(chart, kb), kb, AS_OF)
    assert fact is not None and fact.value == 2 and fact.when == date(2026, 6, 1)


# -- verification status and unrelated recurrences (items 1 and 12) --------------------------------
@pytest.mark.parametrize(
    ("verification", "counts"),
    [
        (None, True),
        ("confirmed", True),
        ("provisional", False),
        ("differential", False),
        ("unconfirmed", False),
        ("refuted", False),
        ("entered-in-error", False),
    ],
)
def test_only_confirmed_or_unstated_diagnoses_count(kb, verification, counts: bool) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2023-01-02", 6))
    extra = {"verificationStatus": {"coding": [{"code": verification}]}} if verification else {}
    _relapse_condition(chart, onsetDateTime="2024-03-01", **extra)
    assert bool(chart.analyse(kb).failures) is counts


@pytest.mark.parametrize(
    ("code", "relapse"),
    [
        ({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N39.0"}, False),
        ({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C83.38"}, True),
    ],
)
def test_only_a_condition_of_the_treated_disease_signals_relapse(kb, code, relapse: bool) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2023-01-02", 6))
    chart.add(
        "Condition",
        code={"coding": [code]},
        clinicalStatus={"coding": [{"code": "recurrence"}]},
        onsetDateTime="2024-03-01",
    )
    assert bool(chart.analyse(kb).failures) is relapse


def test_a_later_improved_status_closes_the_failure(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2023-01-02", 6))
    chart.status("2024-03-01")
    chart.status("2024-09-01", answer="268910001")
    analysis = chart.analyse(kb)
    (failure,) = analysis.failures
    assert failure.closed_on == date(2024, 9, 1)
    rec = recommend(analysis, kb, AS_OF)
    assert rec.failure is None and "no salvage is indicated now" in (rec.statement or "")


# -- refractory windows (item 3) ------------------------------------------------------------------
def _two_lines(chart: Chart) -> None:
    chart.cycles(R_CHOP, q21("2022-01-03", 6))  # last dose 2022-04-18
    chart.status("2022-10-03")  # relapse of line 1
    chart.cycles(R_ICE, q21("2022-10-17", 2))  # last dose 2022-11-07; cycle 21 days


@pytest.mark.parametrize(("day", "kind"), [("2022-11-28", "refractory"), ("2022-11-29", "relapse")])
def test_a_line_is_active_until_one_cycle_after_its_last_dose(kb, day: str, kind: str) -> None:
    chart = Chart()
    _two_lines(chart)
    # a response to R-ICE is on record: after its cycle window a progression is a relapse (without
    # one, progression as the best response makes it refractory: the test below)
    chart.status("2022-11-01", "268910001")
    chart.status(day)
    failure = next(f for f in chart.analyse(kb).failures if f.line == 2)
    assert failure.kind == kind and not failure.primary


def test_progression_soon_after_a_salvage_line_with_no_response_is_refractory(kb) -> None:
    # specialist review 07: ICE whose best response was progression, progression a few weeks
    # after it ended, is refractory disease (SCHOLAR-1), not a relapse
    chart = Chart()
    _two_lines(chart)
    chart.status("2022-12-05")
    failure = next(f for f in chart.analyse(kb).failures if f.line == 2)
    assert failure.kind == "refractory" and not failure.primary
    assert "gave no response (best response: progression)" in failure.detail


@pytest.mark.parametrize(
    ("day", "kind", "primary"),
    [
        ("2024-04-15", "refractory", True),
        ("2024-07-14", "refractory", True),
        ("2024-07-15", "relapse", False),
    ],
)
def test_progression_within_90_days_of_first_line_is_primary_refractory(
    kb, day: str, kind: str, primary: bool
) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 6))  # last dose 2024-04-15
    chart.status(day)
    (failure,) = chart.analyse(kb).failures
    assert (failure.kind, failure.primary) == (kind, primary)


# -- performance status codings (item 4) ----------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "ecog"),
    [
        ({"valueCodeableConcept": {"coding": [{"system": LOINC, "code": f"LA962{i}-{c}"}]}}, i - 2)
        for i, c in ((2, 7), (3, 5), (4, 3), (5, 0), (6, 8), (7, 6))
    ]
    + [
        ({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code}]}}, n)
        for n, code in enumerate(
            ["425389002", "422512005", "422894000", "423053003", "423237006", "423409001"]
        )
    ]
    + [
        ({"valueString": "ECOG 2"}, 2),
        ({"valueQuantity": {"value": 1, "unit": "{score}", "code": "{score}"}}, 1),
        ({"valueInteger": 3}, 3),
    ],
)
def test_ecog_is_read_in_every_coding(kb, value, ecog: int) -> None:
    chart = Chart()
    observe(chart, "89247-1", **value)
    fact = factors.ecog(record_of(chart, kb), kb, AS_OF)
    assert fact is not None and fact.value == ecog


@pytest.mark.parametrize(
    ("karnofsky", "ecog"),
    [(100, 0), (90, 1), (80, 1), (70, 2), (60, 2), (50, 3), (40, 3), (30, 4), (10, 4), (0, 5)],
)
def test_karnofsky_maps_to_ecog_by_the_cited_table(kb, karnofsky: int, ecog: int) -> None:
    chart = Chart()
    observe(chart, "89243-0", valueInteger=karnofsky)
    fact = factors.ecog(record_of(chart, kb), kb, AS_OF)
    assert fact is not None and fact.value == ecog


def test_an_unreadable_ecog_is_reported_as_unreadable_not_missing(kb) -> None:
    chart = Chart()
    source = observe(chart, "89247-1", valueString="fit, walks in")
    eligibility = fitness.transplant(record_of(chart, kb), kb, "dlbcl", AS_OF)
    assert eligibility is not None and eligibility.status == "unknown"
    assert any(source in u for u in eligibility.unreadable)
    assert "ECOG performance status" not in eligibility.missing


# -- PILOT / TRANSFORM / ZUMA-7 and HD-R1 (items 5 and 6) -----------------------------------------
def _fit_chart(birth: str = "1960-01-01") -> Chart:
    chart = Chart()
    chart.resources[0]["birthDate"] = birth
    observe(chart, "89247-1", valueInteger=0)
    return chart


@pytest.mark.parametrize(("lvef", "status"), [(50, "candidate"), (49, "not-candidate")])
def test_lvef_below_50_means_not_a_transplant_candidate(kb, lvef: float, status: str) -> None:
    chart = _fit_chart()
    observe(chart, "10230-1", valueQuantity={"value": lvef, "unit": "%", "code": "%"})
    eligibility = fitness.transplant(record_of(chart, kb), kb, "dlbcl", AS_OF)
    assert eligibility is not None and eligibility.status == status


@pytest.mark.parametrize(("ast", "status"), [(80, "candidate"), (81, "not-candidate")])
def test_ast_above_twice_the_upper_limit_means_not_a_candidate(kb, ast: float, status: str) -> None:
    chart = _fit_chart()
    observe(
        chart,
        "1920-8",
        valueQuantity={"value": ast, "unit": "U/L", "code": "U/L"},
        referenceRange=[{"high": {"value": 40, "unit": "U/L", "code": "U/L"}}],
    )
    eligibility = fitness.transplant(record_of(chart, kb), kb, "dlbcl", AS_OF)
    assert eligibility is not None and eligibility.status == status


@pytest.mark.parametrize(
    ("birth", "status"), [("1965-07-01", "candidate"), ("1965-06-30", "unknown")]
)
def test_hodgkin_candidacy_follows_the_hd_r1_age_range(kb, birth: str, status: str) -> None:
    # born 1965-07-01 is 60 on AS_OF (2026-06-30); born 1965-06-30 turns 61 that day
    chart = _fit_chart(birth)
    eligibility = fitness.transplant(record_of(chart, kb), kb, "hodgkin", AS_OF)
    assert eligibility is not None and eligibility.status == status


def test_no_birth_date_and_no_ecog_is_unknown_never_fit(kb) -> None:
    chart = Chart()
    del chart.resources[0]["birthDate"]
    eligibility = fitness.transplant(record_of(chart, kb), kb, "dlbcl", AS_OF)
    assert eligibility is not None and eligibility.status == "unknown"
    assert set(eligibility.missing) == {"age (no birth date)", "ECOG performance status"}


# -- recency (item 7) -----------------------------------------------------------------------------
@pytest.mark.parametrize(("day", "stale"), [("2026-04-01", False), ("2026-03-31", True)])
def test_ecog_older_than_90_days_is_stale_not_dropped(kb, day: str, stale: bool) -> None:
    chart = Chart()
    observe(chart, "89247-1", day, valueInteger=1)
    fact = factors.ecog(record_of(chart, kb), kb, AS_OF)
    assert fact is not None and fact.stale is stale and day in fact.text


@pytest.mark.parametrize(
    ("day", "severity"), [("2026-05-31", "contraindicated"), ("2026-05-30", "caution")]
)
def test_a_stale_low_clearance_keeps_its_caution_and_asks_for_a_recheck(
    kb, day: str, severity: str
) -> None:
    chart = Chart()
    observe(chart, "2160-0", day, valueQuantity={"value": 2.0, "unit": "mg/dL", "code": "mg/dL"})
    observe(chart, "29463-7", day, valueQuantity={"value": 60, "unit": "kg", "code": "kg"})
    (finding,) = contraindications.drug_findings(
        frozenset({"cisplatin"}), record_of(chart, kb), kb, AS_OF
    )
    assert finding.severity == severity and finding.abnormal
    assert (finding.recheck is not None) is (severity == "caution")
    assert contraindications.drug_contraindications(
        frozenset({"cisplatin"}), record_of(chart, kb), kb, AS_OF
    )


def test_unknown_clearance_is_a_caution_for_cisplatin(kb) -> None:
    (finding,) = contraindications.drug_findings(
        frozenset({"cisplatin"}), record_of(Chart(), kb), kb, AS_OF
    )
    assert (finding.severity, finding.basis) == ("caution", "unknown")


# -- anthracycline caution level (item 9) ---------------------------------------------------------
@pytest.mark.parametrize(("total", "shown"), [(349, False), (350, True)])
def test_cumulative_anthracycline_is_shown_from_the_caution_level(
    kb, total: float, shown: bool
) -> None:
    chart = Chart()
    for day in q21("2024-01-01", 5):
        chart.give(
            "doxorubicin",
            day,
            dosage={"dose": {"value": total / 5, "unit": "mg/m2", "code": "mg/m2"}},
        )
        for drug in ("rituximab", "cyclophosphamide", "vincristine"):
            chart.give(drug, day)
    chart.status("2024-03-01")
    rec = recommend(chart.analyse(kb), kb, AS_OF)
    assert any("caution level of 350" in f for f in rec.facts) is shown


# -- HIV needs a diagnosis (item 13) --------------------------------------------------------------
@pytest.mark.parametrize(
    ("rna", "hiv"),
    [
        ({"valueString": "<20 copies/mL"}, False),
        ({"valueQuantity": {"value": 5000, "unit": "{copies}/mL", "code": "{copies}/mL"}}, True),
    ],
)
def test_antiretrovirals_alone_never_make_hiv(kb, rna, hiv: bool) -> None:
    chart = Chart(disease_snomed=None)
    chart.order("Truvada", "2024-01-15", status="active")
    observe(chart, "20447-9", "2024-01-10", **rna)
    analysis = chart.analyse(kb)
    assert ("hiv" in analysis.diseases) is hiv
    assert bool([ln for ln in analysis.lines if ln.domain == "hiv"]) is hiv


# -- unreadable resource types (item 8) -----------------------------------------------------------
@pytest.mark.parametrize("rtype", ["Observation", "Condition", "MedicationRequest"])
def test_an_unreadable_type_is_never_reported_as_no_failure(kb, rtype: str) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 2))
    analysis = analyse_patient(record_of(chart, kb), kb, AS_OF, unreadable=frozenset({rtype}))
    rec = recommend(analysis, kb, AS_OF)
    assert rec.statement is not None and "could not be assessed" in rec.statement
    assert rtype in rec.statement


def test_patient_type_alone_does_not_block_failure_assessment(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 2))
    analysis = analyse_patient(record_of(chart, kb), kb, AS_OF, unreadable=frozenset({"Patient"}))
    assert analysis.failure_assessable and analysis.not_assessed


def test_with_two_active_cancers_a_status_needs_a_focus(kb) -> None:
    chart = Chart()
    chart.add(  # breast cancer, active
        "Condition",
        code={"coding": [{"system": SNOMED, "code": "254837009"}]},
        onsetDateTime="2023-01-01",
    )
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    unfocused = chart.status("2024-02-15")
    assert chart.analyse(kb).failures == ()
    assert [w.source for w in chart.analyse(kb).warnings] == [unfocused]
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": LOINC, "code": "97509-4"}]},
        effectiveDateTime="2024-02-20",
        focus=[{"reference": "Condition/condition-1"}],
        valueCodeableConcept={"coding": [{"system": SNOMED, "code": "271299001"}]},
    )
    (failure,) = chart.analyse(kb).failures
    assert (failure.disease, failure.kind, failure.when) == (
        "dlbcl",
        "refractory",
        date(2024, 2, 20),
    )
