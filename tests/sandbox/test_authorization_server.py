"""The sandbox's SMART authorization server against SMART App Launch 2.2 and RFC 6749/7636/7523."""

from __future__ import annotations

import base64
import time
import uuid

from joserfc import jwt
from joserfc.jwk import KeySet, OctKey

from tests.support_sandbox import CALLBACK, http, pkce

SCOPE = "launch openid fhirUser patient/*.rs offline_access"


def test_s1_s2_discovery_lists_endpoints_s256_and_capabilities(sandbox) -> None:
    doc = http("GET", f"{sandbox.config.fhir_base}/.well-known/smart-configuration").json()
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["token_endpoint"].endswith("/auth/token")
    assert {
        "launch-ehr",
        "launch-standalone",
        "client-confidential-asymmetric",
        "permission-v2",
        "sso-openid-connect",
    } <= set(doc["capabilities"])
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]


def test_s3_capability_statement_carries_oauth_uris(sandbox) -> None:
    capability = http("GET", f"{sandbox.config.fhir_base}/metadata").json()
    (ext,) = capability["rest"][0]["security"]["extension"]
    urls = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert urls["token"].endswith("/auth/token")


def test_ehr_launch_returns_context_state_and_a_verifiable_id_token(sandbox) -> None:
    verifier, challenge = pkce()
    reply = sandbox.authorize("salvage-public", SCOPE, challenge=challenge, state="s-42")
    assert reply.status == 302 and reply.location.startswith(CALLBACK)
    assert reply.query()["state"] == "s-42"
    token = sandbox.token(
        {
            "grant_type": "authorization_code",
            "code": reply.query()["code"],
            "redirect_uri": CALLBACK,
            "client_id": "salvage-public",
            "code_verifier": verifier,
        }
    ).json()
    assert token["patient"] == "dlbcl-early-relapse"
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    jwks = KeySet.import_key_set(
        http("GET", f"{sandbox.config.ehr_base}/.well-known/jwks.json").json()
    )
    claims = jwt.decode(token["id_token"], jwks, algorithms=["RS256"]).claims
    assert claims["aud"] == "salvage-public"
    assert claims["fhirUser"] == f"{sandbox.config.fhir_base}/Practitioner/sandbox-oncologist"


def test_pkce_is_required(sandbox) -> None:
    reply = sandbox.authorize("salvage-public", SCOPE, challenge=None)
    assert reply.status == 302
    assert reply.query()["error"] == "invalid_request"
    assert reply.query()["state"] == "state-123"


def test_plain_pkce_is_refused(sandbox) -> None:
    verifier, _ = pkce()
    reply = sandbox.authorize("salvage-public", SCOPE, challenge=verifier, method="plain")
    assert reply.query()["error"] == "invalid_request"


def test_a_wrong_code_verifier_is_refused(sandbox) -> None:
    _, challenge = pkce()
    code = sandbox.authorize("salvage-public", SCOPE, challenge=challenge).query()["code"]
    reply = sandbox.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": "salvage-public",
            "code_verifier": pkce()[0],
        }
    )
    assert reply.status == 400 and reply.json()["error"] == "invalid_grant"


def test_a_reused_code_is_refused(sandbox) -> None:
    verifier, challenge = pkce()
    code = sandbox.authorize("salvage-public", SCOPE, challenge=challenge).query()["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": "salvage-public",
        "code_verifier": verifier,
    }
    assert sandbox.token(data).status == 200
    second = sandbox.token(data)
    assert second.status == 400 and second.json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(sandbox) -> None:
    verifier, challenge = pkce()
    code = sandbox.authorize("salvage-public", SCOPE, challenge=challenge).query()["code"]
    store = sandbox.state.store
    store._conn().execute("UPDATE code SET expires = ? WHERE code = ?", (time.time() - 1, code))
    reply = sandbox.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": "salvage-public",
            "code_verifier": verifier,
        }
    )
    assert reply.json()["error"] == "invalid_grant"


def test_an_unknown_client_sees_an_error_page_and_is_not_redirected(sandbox) -> None:
    reply = sandbox.authorize("no-such-app", SCOPE, launch=False, challenge=pkce()[1])
    assert reply.status == 400 and not reply.location
    assert b"not registered" in reply.body


def test_a_wrong_redirect_uri_is_never_redirected_to(sandbox) -> None:
    reply = sandbox.authorize(
        "salvage-public", SCOPE, challenge=pkce()[1], redirect_uri="https://attacker.invalid/cb"
    )
    assert reply.status == 400 and not reply.location


def test_a_wrong_aud_is_refused(sandbox) -> None:
    reply = sandbox.authorize(
        "salvage-public", SCOPE, challenge=pkce()[1], aud="https://counterfeit.invalid/fhir"
    )
    assert reply.query()["error"] == "invalid_request"


def test_scope_is_narrowed_to_the_registration(sandbox) -> None:
    verifier, challenge = pkce()
    reply = sandbox.authorize(
        "salvage-public", SCOPE + " system/*.cruds patient/*.cud", challenge=challenge
    )
    token = sandbox.token(
        {
            "grant_type": "authorization_code",
            "code": reply.query()["code"],
            "redirect_uri": CALLBACK,
            "client_id": "salvage-public",
            "code_verifier": verifier,
        }
    ).json()
    assert "system/*.cruds" not in token["scope"] and "patient/*.cud" not in token["scope"]
    assert "patient/*.rs" in token["scope"]


def test_refresh_rotates_and_the_old_refresh_token_is_refused(sandbox) -> None:
    first = sandbox.access_token()
    data = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": "salvage-public",
    }
    second = sandbox.token(data).json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["patient"] == "dlbcl-early-relapse"
    reused = sandbox.token(data)
    assert reused.status == 400 and reused.json()["error"] == "invalid_grant"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_confidential_symmetric_client_uses_basic_auth(sandbox) -> None:
    for secret, expected in (("wrong", 401), ("sandbox-secret-change-me", 200)):
        verifier, challenge = pkce()
        code = sandbox.authorize("salvage-confidential", SCOPE, challenge=challenge).query()["code"]
        reply = sandbox.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
            headers=_basic("salvage-confidential", secret),
        )
        assert reply.status == expected, reply.body
        if expected == 401:
            assert reply.json()["error"] == "invalid_client"


def _assertion(
    sandbox, key, *, alg: str = "RS384", jti: str | None = None, lifetime: int = 240
) -> str:
    now = int(time.time())
    claims = {
        "iss": "test-asymmetric",
        "sub": "test-asymmetric",
        "aud": f"{sandbox.config.ehr_base}/auth/token",
        "exp": now + lifetime,
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode(
        {"alg": alg, "kid": getattr(key, "kid", None) or "k"}, claims, key, algorithms=[alg]
    )


def _asymmetric_token(sandbox, assertion: str):
    verifier, challenge = pkce()
    code = sandbox.authorize("test-asymmetric", SCOPE, challenge=challenge).query()["code"]
    return sandbox.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
    )


def test_s18_asymmetric_client_assertion_is_verified(sandbox) -> None:
    assert _asymmetric_token(sandbox, _assertion(sandbox, sandbox.client_key)).status == 200


def test_a_tampered_client_assertion_is_refused(sandbox) -> None:
    good = _assertion(sandbox, sandbox.client_key)
    head, payload, signature = good.split(".")
    forged = ".".join(
        [head, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]
    )
    reply = _asymmetric_token(sandbox, forged)
    # RFC 6749 5.2: 401 is required only when the client used the Authorization header.
    assert reply.status in (400, 401) and reply.json()["error"] == "invalid_client"


def test_an_hs256_or_long_lived_assertion_is_refused(sandbox) -> None:
    hs = _assertion(sandbox, OctKey.generate_key(256), alg="HS256")
    assert _asymmetric_token(sandbox, hs).json()["error"] == "invalid_client"
    long_lived = _assertion(sandbox, sandbox.client_key, lifetime=3600)
    assert _asymmetric_token(sandbox, long_lived).json()["error"] == "invalid_client"


def test_a_replayed_assertion_jti_is_refused(sandbox) -> None:
    jti = str(uuid.uuid4())
    assert (
        _asymmetric_token(sandbox, _assertion(sandbox, sandbox.client_key, jti=jti)).status == 200
    )
    replay = _asymmetric_token(sandbox, _assertion(sandbox, sandbox.client_key, jti=jti))
    assert replay.json()["error"] == "invalid_client"


def test_standalone_launch_shows_a_patient_picker_and_deny_returns_access_denied(sandbox) -> None:
    _, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": "salvage-public",
        "redirect_uri": CALLBACK,
        "scope": "launch/patient openid fhirUser patient/*.rs",
        "state": "st-9",
        "aud": sandbox.config.fhir_base,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = http(
        "GET",
        f"{sandbox.config.ehr_base}/auth/authorize?"
        + "&".join(f"{k}={v}" for k, v in params.items()).replace(" ", "%20"),
    )
    assert page.status == 200 and b"hiv-blip" in page.body
    denied = http(
        "POST", f"{sandbox.config.ehr_base}/auth/authorize", data={**params, "decision": "deny"}
    )
    assert denied.query()["error"] == "access_denied"
    assert denied.query()["state"] == "st-9"
    assert "code" not in denied.query()
    allowed = http(
        "POST",
        f"{sandbox.config.ehr_base}/auth/authorize",
        data={**params, "decision": "allow", "patient": "hiv-blip"},
    )
    assert "code" in allowed.query()
