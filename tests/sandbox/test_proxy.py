"""The FHIR proxy enforces bearer tokens and SMART v1/v2 scopes, and can inject faults."""

from __future__ import annotations

import json

from tests.support_sandbox import CALLBACK, pkce


def test_no_token_gets_401_with_an_operation_outcome(sandbox) -> None:
    reply = sandbox.fhir("Observation", None)
    assert reply.status == 401
    assert reply.json()["resourceType"] == "OperationOutcome"
    assert "Bearer" in reply.headers["WWW-Authenticate"]


def test_an_expired_token_is_refused(sandbox) -> None:
    token = sandbox.access_token()["access_token"]
    sandbox.state.store._conn().execute(
        "UPDATE token SET expires = 0 WHERE access_token = ?", (token,)
    )
    assert sandbox.fhir("Patient/dlbcl-early-relapse", token).status == 401


def test_a_search_is_confined_to_the_patient_compartment(sandbox) -> None:
    token = sandbox.access_token()["access_token"]
    own = sandbox.fhir("MedicationAdministration?_count=5", token).json()
    assert own["total"] == 30
    assert all(
        e["resource"]["subject"]["reference"] == "Patient/dlbcl-early-relapse" for e in own["entry"]
    )
    assert sandbox.fhir("Observation?patient=hiv-blip", token).status == 403
    assert sandbox.fhir("Patient/hiv-blip", token).status == 403


def test_paging_links_point_at_the_proxy(sandbox) -> None:
    token = sandbox.access_token()["access_token"]
    page = sandbox.fhir("MedicationAdministration?_count=5", token).json()
    (next_url,) = [link["url"] for link in page["link"] if link["relation"] == "next"]
    assert next_url.startswith(sandbox.config.fhir_base + "/")
    second = sandbox.fhir(next_url[len(sandbox.config.fhir_base) + 1 :], token)
    assert second.status == 200


def test_v1_read_scope_is_honoured(sandbox) -> None:
    token = sandbox.access_token(scope="launch patient/Observation.read")["access_token"]
    assert sandbox.fhir("Observation", token).status == 200
    assert sandbox.fhir("MedicationRequest", token).status == 403


def _narrow_token(sandbox) -> str:
    verifier, challenge = pkce()
    scope = "launch patient/Observation.rs?code=http://loinc.org|97509-4 patient/Patient.rs"
    code = sandbox.authorize("narrow-app", scope, challenge=challenge).query()["code"]
    return sandbox.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "narrow-app",
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        }
    ).json()["access_token"]


def test_v2_query_restrictions_are_enforced(sandbox) -> None:
    token = _narrow_token(sandbox)
    assert sandbox.fhir("Observation", token).status == 403
    allowed = sandbox.fhir("Observation?code=http://loinc.org|97509-4", token)
    assert allowed.status == 200 and allowed.json()["total"] == 1
    assert sandbox.fhir("Condition", token).status == 403


def test_fault_injection_5xx_truncation_and_foreign_next_link(sandbox) -> None:
    token = sandbox.access_token()["access_token"]
    sandbox.faults(status=503)
    assert sandbox.fhir("Observation", token).status == 503
    sandbox.faults(truncate=True)
    body = sandbox.fhir("MedicationAdministration?_count=5", token).body
    try:
        json.loads(body)
        parsed = True
    except ValueError:
        parsed = False
    assert not parsed
    sandbox.faults(foreign_next=True)
    page = sandbox.fhir("MedicationAdministration?_count=5", token).json()
    (next_url,) = [link["url"] for link in page["link"] if link["relation"] == "next"]
    assert next_url.startswith("http://attacker.invalid/")
    last_page = sandbox.fhir("Patient?_count=5", token).json()  # even without more pages
    assert any(link["url"].startswith("http://attacker.invalid/") for link in last_page["link"])
