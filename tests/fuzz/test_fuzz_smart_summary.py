"""Property-based fuzzing of the SMART app's analysis of what a FHIR server returned (issue 14):
hostile resources, including the Patient whose banner is shown, never raise."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from salvage.knowledge import load_knowledge
from smart_app.summary import summarise
from tests.fuzz.strategies import FUZZ, json_values, resources

KB = load_knowledge()


@FUZZ
@given(
    others=st.lists(resources(), max_size=6),
    patient=st.fixed_dictionaries(
        {"resourceType": st.just("Patient"), "id": st.just("p")},
        optional={
            "name": json_values
            | st.lists(
                st.fixed_dictionaries({}, optional={"given": json_values, "family": json_values})
            ),
            "birthDate": json_values,
            "gender": json_values,
        },
    ),
)
def test_the_summary_of_any_record_never_raises(others: list[Any], patient: dict[str, Any]) -> None:
    records = [patient, *(r for r in others if isinstance(r, dict))]
    summary = summarise(records, "p", KB, [], date(2026, 6, 30))
    assert summary["patients"][0]["banner"]["name"]
