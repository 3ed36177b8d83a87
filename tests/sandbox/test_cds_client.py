"""The sandbox's CDS Hooks client signs every request with ES384 (H15-H17) and fills prefetch."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from sandbox.cds_client import CdsClient
from tests.support_sandbox import http


def test_h16_requests_carry_an_es384_jwt_verifiable_with_the_published_jwks(sandbox) -> None:
    client = CdsClient(sandbox.state)
    audience = "http://127.0.0.1:8700/cds-services/salvage-order-sign"
    token = client.signed_jwt(audience)
    jwks = KeySet.import_key_set(
        http("GET", f"{sandbox.config.ehr_base}/.well-known/jwks.json").json()
    )
    decoded = jwt.decode(token, jwks, algorithms=["ES384"])
    assert decoded.header["alg"] == "ES384" and decoded.header["typ"] == "JWT"
    assert decoded.header["jku"] == f"{sandbox.config.ehr_base}/.well-known/jwks.json"
    assert decoded.claims["aud"] == audience
    assert decoded.claims["iss"] == sandbox.config.ehr_base
    assert decoded.claims["exp"] - decoded.claims["iat"] <= 300
    assert client.signed_jwt(audience) != token  # fresh jti each time


def test_prefetch_templates_are_filled_and_every_page_is_included(sandbox) -> None:
    client = CdsClient(sandbox.state)
    values = client.prefetch(
        {
            "patient": "Patient/{{context.patientId}}",
            "admins": "MedicationAdministration?patient={{context.patientId}}&_count=7",
            "missing": "Patient/does-not-exist",
        },
        {"patientId": "dlbcl-early-relapse", "userId": "Practitioner/sandbox-oncologist"},
    )
    assert values["patient"]["id"] == "dlbcl-early-relapse"
    assert values["admins"]["total"] == 30 and len(values["admins"]["entry"]) == 30
    assert values["missing"] is None


def test_fhir_authorization_is_a_read_only_token_for_this_patient(sandbox) -> None:
    auth = CdsClient(sandbox.state).fhir_authorization(
        "hiv-blip", "Practitioner/sandbox-oncologist"
    )
    assert auth["token_type"] == "Bearer" and auth["scope"] == "patient/*.rs"
    assert sandbox.fhir("Observation", auth["access_token"]).status == 200
    assert sandbox.fhir("Patient/dlbcl-early-relapse", auth["access_token"]).status == 403
