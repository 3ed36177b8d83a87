"""The scopes the app requests (S12-S14) and how a granted scope limits its reads (S15)."""

from __future__ import annotations

from smart_app import scopes


def test_s12_v2_scopes_when_the_server_advertises_them() -> None:
    scope = scopes.requested_scope(ehr_launch=True, v2=True, offline=False)
    assert "launch" in scope.split() and "patient/Observation.rs" in scope.split()
    assert "offline_access" not in scope


def test_s13_v1_scopes_otherwise_and_standalone_asks_for_a_patient() -> None:
    scope = scopes.requested_scope(ehr_launch=False, v2=False, offline=True).split()
    assert "launch/patient" in scope and "patient/Observation.read" in scope
    assert "offline_access" in scope


def test_s15_readable_types_follow_the_grant() -> None:
    granted = scopes.readable_types(
        "launch patient/Observation.rs?code=http://loinc.org|1 patient/Patient.read"
    )
    assert granted["Patient"] is None
    assert granted["Observation"] == "only code=http://loinc.org|1"
    assert granted["Condition"] == "not granted"
    assert scopes.readable_types("user/*.rs")["Condition"] is None
    none = scopes.readable_types("launch openid")
    assert set(none.values()) == {"not granted"}


def test_medication_is_read_with_the_same_minimal_scope() -> None:
    scope = scopes.requested_scope(ehr_launch=True, v2=True, offline=False).split()
    assert "patient/Medication.rs" in scope
