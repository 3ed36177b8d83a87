"""Issue 18 on the SMART app, reproduced locally: Epic's scope strings (quirk 12), the id_token
issuer rules of the launcher, Epic and Oracle (quirks 7, 13, 19), Accept and Epic-Client-ID on
discovery (quirk 16)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from smart_app import discovery, registry, scopes, signin, views
from tests.fhir.hostile_server import hostile_server, http_answer

KEY = RSAKey.generate_key(2048, {"kid": "k1"})
OTHER = RSAKey.generate_key(2048, {"kid": "k2"})
EPIC_FHIR = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4"
EPIC_OAUTH = "https://fhir.epic.com/interconnect-fhir-oauth/oauth2"
ORACLE_FHIR = "https://fhir-ehr-code.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d"
ORACLE_OIDC = (
    "https://authorization.cerner.com/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d/"
    "oidc/idsps/ec2458f2-1e24-41c8-b71b-0e701af7583d/"
)


# -- 12: Epic's scope strings ------------------------------------------------------------------
@pytest.mark.parametrize(
    "granted",
    [
        "Patient.read Patient.search Observation.read Observation.search ",  # no prefix, trailing
        "patient/Patient.Read patient/Observation.Read",  # capital R
        "launch openid fhirUser patient/Patient.read patient/Observation.read",
        "patient/Patient.rs patient/Observation.rs",  # SMART v2, apps registered as v2
    ],
)
def test_q12_epic_scope_strings_are_understood(granted: str) -> None:
    allowed = scopes.readable_types(granted)
    assert allowed["Patient"] is None and allowed["Observation"] is None
    assert allowed["Condition"] == "not granted"


def test_q12_an_uninterpretable_grant_means_try_and_report_refusals() -> None:
    allowed = scopes.readable_types("launch openid Epic.Custom:LabsApi#2 Patient.read")
    assert set(allowed.values()) == {None}  # every type is tried; a 403 is reported by type


def test_q12_a_403_is_reported_by_type_not_as_an_empty_record() -> None:
    from salvage.fhir.client import FAILED, FhirReader, TokenHolder

    with hostile_server() as server:
        server.route(
            "/fhir/Condition",
            http_answer(
                {"resourceType": "OperationOutcome"},
                "403 Forbidden",
                {"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            ),
        )
        reader = FhirReader(server.base, TokenHolder("t"), budget_seconds=5)
        result = reader.read("Condition?patient=p", "Condition")
    (problem,) = result.problems
    assert problem.kind == FAILED and "403" in problem.text and problem.resource_type == "Condition"


# -- 7, 13, 19: id_token issuer rules ----------------------------------------------------------
def _reg(**extra: Any) -> registry.Registration:
    return registry.Registration(
        iss=extra.pop("iss", EPIC_FHIR),
        name="EHR",
        client_id="app",
        client_type="public",
        **extra,
    )


def _id_token(iss: str, *, key: RSAKey = KEY, kid: bool = True, **claims: Any) -> str:
    body = {
        "iss": iss,
        "aud": "app",
        "sub": "u1",
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,  # Epic: five minutes
        **claims,
    }
    header = {"alg": "RS256", **({"kid": key.kid} if kid else {})}
    return jwt.encode(header, body, key, algorithms=["RS256"])


def _verify(token: str, data: dict[str, Any], reg: registry.Registration) -> str | None:
    return signin.verify_id_token({"id_token": token}, data, reg)


def test_q13_epic_id_token_is_checked_against_the_oauth_server_not_the_fhir_base() -> None:
    with hostile_server() as server:
        server.route("/jwks", http_answer({"keys": [KEY.as_dict(private=False)]}))
        data = {"iss": EPIC_FHIR, "jwks_uri": f"http://127.0.0.1:{server.port}/jwks"}
        reg = _reg(id_token_issuers=(EPIC_OAUTH,))
        user = _verify(
            _id_token(EPIC_OAUTH, fhirUser=f"{EPIC_FHIR}/Practitioner/eM5CWtq15N0WJeuCet5bJlQ3"),
            data,
            reg,
        )
        assert user == "Practitioner/eM5CWtq15N0WJeuCet5bJlQ3"  # shown relative
        with pytest.raises(views.LaunchError):  # the FHIR base is not Epic's issuer
            _verify(_id_token(EPIC_FHIR), data, reg)


def test_q19_oracle_issuer_and_keys_come_from_its_oidc_discovery() -> None:
    """Oracle's smart-configuration has no issuer (and here no jwks_uri): with the registered
    issuer, the keys are found by OpenID discovery at that issuer."""
    with hostile_server() as server:
        issuer = f"http://127.0.0.1:{server.port}/tenants/t/oidc/idsps/t/"
        server.route(
            "/tenants/t/oidc/idsps/t/.well-known/openid-configuration",
            http_answer({"issuer": issuer, "jwks_uri": f"http://127.0.0.1:{server.port}/jwks"}),
        )
        server.route("/jwks", http_answer({"keys": [KEY.as_dict(private=False)]}))
        reg = _reg(iss=ORACLE_FHIR, id_token_issuers=(issuer,))
        assert _verify(_id_token(issuer), {"iss": ORACLE_FHIR, "issuer": None}, reg) is None
        with pytest.raises(views.LaunchError):
            _verify(_id_token(ORACLE_FHIR), {"iss": ORACLE_FHIR, "issuer": None}, reg)


def test_q19_without_any_issuer_the_fhir_base_is_never_assumed() -> None:
    with hostile_server() as server:
        base = f"http://127.0.0.1:{server.port}/fhir"
        server.route("/fhir/.well-known/openid-configuration", http_answer({}, "404 Not Found"))
        server.route("/jwks", http_answer({"keys": [KEY.as_dict(private=False)]}))
        data = {"iss": base, "jwks_uri": f"http://127.0.0.1:{server.port}/jwks"}
        with pytest.raises(views.LaunchError, match="issuer is unknown"):
            _verify(_id_token(base), data, _reg(iss=base))


def test_the_smart_configuration_issuer_is_the_default() -> None:
    with hostile_server() as server:
        server.route("/jwks", http_answer({"keys": [KEY.as_dict(private=False)]}))
        data = {
            "iss": EPIC_FHIR,
            "issuer": EPIC_OAUTH,
            "jwks_uri": f"http://127.0.0.1:{server.port}/jwks",
        }
        assert _verify(_id_token(EPIC_OAUTH, fhirUser="Practitioner/1"), data, _reg()) == (
            "Practitioner/1"
        )


def test_q7_the_launcher_s_keyless_id_token_verifies_against_its_single_key() -> None:
    launcher = "https://launch.smarthealthit.org/v/r4/sim/eyJrIjoiMSJ9/fhir"
    with hostile_server() as server:
        server.route("/keys", http_answer({"keys": [KEY.as_dict(private=False)]}))
        data = {"iss": launcher, "issuer": None, "jwks_uri": f"http://127.0.0.1:{server.port}/keys"}
        reg = _reg(iss=launcher, id_token_issuers=(launcher,))
        assert _verify(_id_token(launcher, kid=False), data, reg) is None
        # No kid and several keys: which key signed it is unknown, so it is refused.
        server.route(
            "/keys",
            http_answer({"keys": [OTHER.as_dict(private=False), KEY.as_dict(private=False)]}),
        )
        with pytest.raises(views.LaunchError):
            _verify(_id_token(launcher, kid=False), data, reg)
        # A keyless token signed by another key fails the signature check.
        server.route("/keys", http_answer({"keys": [KEY.as_dict(private=False)]}))
        with pytest.raises(views.LaunchError):
            _verify(_id_token(launcher, key=OTHER, kid=False), data, reg)


# -- 16: discovery headers -----------------------------------------------------------------------
def test_q16_discovery_sends_accept_and_the_epic_client_id_header() -> None:
    with hostile_server() as server:
        server.route("/fhir/.well-known/smart-configuration", http_answer({}, "404 Not Found"))
        server.route(
            "/fhir/metadata",
            http_answer(
                {
                    "resourceType": "CapabilityStatement",
                    "rest": [
                        {
                            "security": {
                                "extension": [
                                    {
                                        "url": discovery.OAUTH_URIS,
                                        "extension": [
                                            {"url": "authorize", "valueUri": "/oauth2/authorize"},
                                            {"url": "token", "valueUri": "/oauth2/token"},
                                        ],
                                    }
                                ]
                            }
                        }
                    ],
                }
            ),
        )
        config = discovery.discover(
            server.base, requests.Session(), headers={"Epic-Client-ID": "epic-client-1"}
        )
    assert config.token_endpoint.endswith("/oauth2/token")
    metadata = [h for target, h in server.requests if target.endswith("/metadata")]
    (headers,) = metadata
    assert headers.get("Accept") == "application/fhir+json"
    assert headers.get("Epic-Client-ID") == "epic-client-1"
    assert all("Authorization" not in h for _, h in server.requests)
