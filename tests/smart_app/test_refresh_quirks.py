"""Issue 18 quirks 2, 6, 14, 15 and 20 on the SMART app's session: refresh refusals (the launcher's
403 invalid_grant), public clients without a refresh token, a refresh answer without a new refresh
token (Epic, Oracle), the client assertion's claims, the JWKS cache lifetime, cookie attributes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from joserfc import jwt

from salvage.app import create_app
from smart_app import keys, signin
from smart_app.sessions import COOKIE
from tests.fhir.hostile_server import hostile_server, http_answer


def _app(tmp_path: Path, iss: str, base_url: str = "http://127.0.0.1:8700"):
    smart = tmp_path / "smart.json"
    smart.write_text(
        json.dumps({"servers": [{"iss": iss, "client_id": "app", "client_type": "public"}]})
    )
    return create_app(
        {
            "TESTING": True,
            "BASE_URL": base_url,
            "SMART_CLIENTS": str(smart),
            "DATABASE_URL": str(tmp_path / "s.db"),
            "SECRET_KEY": "k",
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )


def _launched(app: Any, iss: str, port: int, **data: Any) -> tuple[Any, str, str]:
    """A test client holding a launch whose access token has expired."""
    with app.app_context():
        store = signin.sessions()
        cookie, browser = store.new_browser()
        launch_id = "launch-1"
        key = store.key(browser, "launch", launch_id)
        store.save(
            key,
            {
                "iss": iss,
                "token_endpoint": f"http://127.0.0.1:{port}/token",
                "access_token": "old-access",
                "refresh_token": None,
                "expires_at": time.time() - 10,
                "scope": "launch patient/*.read",
                "patient": "p",
                "user": None,
                "need_patient_banner": True,
                **data,
            },
        )
    client = app.test_client()
    client.set_cookie(COOKIE, cookie)
    return client, launch_id, key


def test_q2_a_403_invalid_grant_on_refresh_asks_to_launch_again(tmp_path) -> None:
    with hostile_server() as server:
        server.route(
            "/token",
            http_answer(
                {"error": "invalid_grant", "error_description": "Invalid refresh token"},
                "403 Forbidden",
            ),
        )
        app = _app(tmp_path, server.base)
        client, launch_id, _ = _launched(app, server.base, server.port, refresh_token="r1")  # noqa: S106
        reply = client.get("/api/summary", query_string={"ctx": launch_id})
        assert reply.status_code == 401 and "Launch the app again" in reply.get_json()["error"]
        page = client.get("/app", query_string={"ctx": launch_id})
        assert page.status_code in (200, 401) and "Launch the app again" in page.get_data(
            as_text=True
        )
    assert any(t == "/token" for t, _ in server.requests)


def test_q14_a_public_client_without_a_refresh_token_is_asked_to_launch_again(tmp_path) -> None:
    with hostile_server() as server:
        app = _app(tmp_path, server.base)
        client, launch_id, _ = _launched(app, server.base, server.port)
        reply = client.get("/api/summary", query_string={"ctx": launch_id})
        assert reply.status_code == 401 and "Launch the app again" in reply.get_json()["error"]
    assert server.requests == []  # nothing was sent with an expired token


def test_q14_q20_a_refresh_answer_without_a_refresh_token_keeps_the_old_one(tmp_path) -> None:
    with hostile_server() as server:
        server.route(
            "/token",
            http_answer(
                {
                    "access_token": "new-access",
                    "token_type": "bearer",
                    "expires_in": 570,  # Oracle: 570 s
                    "scope": "patient/Patient.read",
                }
            ),
        )
        app = _app(tmp_path, server.base)
        client, launch_id, key = _launched(app, server.base, server.port, refresh_token="r1")  # noqa: S106
        reply = client.get("/api/summary", query_string={"ctx": launch_id})
        assert reply.status_code == 200, reply.get_data()
        with app.app_context():
            stored = signin.sessions().load(key)
    assert stored is not None
    assert stored["refresh_token"] == "r1" and stored["access_token"] == "new-access"
    assert 500 < stored["expires_at"] - time.time() <= 570
    fhir = [h for t, h in server.requests if t.startswith("/fhir")]
    assert fhir and all(h.get("Authorization") == "Bearer new-access" for h in fhir)


def test_q15_the_client_assertion_lists_nbf_and_a_short_unique_jti(tmp_path) -> None:
    key = keys.app_key(str(tmp_path))
    first = jwt.decode(
        keys.client_assertion(key, "c", "https://ehr/token"), key, algorithms=["ES384"]
    )
    second = jwt.decode(
        keys.client_assertion(key, "c", "https://ehr/token"), key, algorithms=["ES384"]
    )
    claims = first.claims
    assert claims["nbf"] <= claims["iat"] + 1 and claims["exp"] - claims["iat"] <= 300
    assert isinstance(claims["jti"], str) and len(claims["jti"]) <= 151
    assert claims["jti"] != second.claims["jti"]
    assert first.header["kid"] == key.kid and first.header["alg"] == "ES384"


def test_q15_the_jwks_has_a_deliberate_cache_lifetime(tmp_path) -> None:
    app = _app(tmp_path, "https://ehr.example/fhir")
    reply = app.test_client().get("/.well-known/jwks.json")
    assert reply.headers["Cache-Control"] == f"public, max-age={keys.JWKS_MAX_AGE_SECONDS}"
    assert reply.get_json()["keys"]


def test_q6_over_https_the_cookie_works_when_framed_by_another_site(tmp_path) -> None:
    with hostile_server() as server:
        server.route(
            "/fhir/.well-known/smart-configuration",
            http_answer(
                {
                    "authorization_endpoint": f"http://127.0.0.1:{server.port}/authorize",
                    "token_endpoint": f"http://127.0.0.1:{server.port}/token",
                }
            ),
        )
        app = _app(tmp_path, server.base, base_url="https://salvage.example")
        reply = app.test_client().get("/launch", query_string={"iss": server.base, "launch": "x"})
    cookie = reply.headers["Set-Cookie"]
    for attribute in ("SameSite=None", "Secure", "HttpOnly", "Partitioned"):
        assert attribute in cookie


def test_q20_a_570_second_token_is_refreshed_only_near_its_end(tmp_path) -> None:
    """Oracle may throttle more than one refresh a minute: a token with minutes left is used as
    is, and one within a minute of expiry is refreshed once."""
    with hostile_server() as server:
        server.route(
            "/token",
            http_answer({"access_token": "fresh", "token_type": "Bearer", "expires_in": 570}),
        )
        app = _app(tmp_path, server.base)
        client, launch_id, _ = _launched(
            app,
            server.base,
            server.port,
            refresh_token="r1",  # noqa: S106
            expires_at=time.time() + 500,
        )
        assert client.get("/api/summary", query_string={"ctx": launch_id}).status_code == 200
        assert client.get("/api/summary", query_string={"ctx": launch_id}).status_code == 200
        assert not any(t == "/token" for t, _ in server.requests)
        client, launch_id, _ = _launched(
            app,
            server.base,
            server.port,
            refresh_token="r1",  # noqa: S106
            expires_at=time.time() + 30,
        )
        assert client.get("/api/summary", query_string={"ctx": launch_id}).status_code == 200
        assert client.get("/api/summary", query_string={"ctx": launch_id}).status_code == 200
    assert sum(t == "/token" for t, _ in server.requests) == 1


def test_q16_a_long_jwt_access_token_is_used_whole_and_never_decoded(tmp_path) -> None:
    long_token = "eyJhbGciOiJSUzI1NiJ9." + "a" * 3000 + ".sig-not-verifiable"
    with hostile_server() as server:
        server.route(
            "/token",
            http_answer({"access_token": long_token, "token_type": "Bearer", "expires_in": 3600}),
        )
        app = _app(tmp_path, server.base)
        client, launch_id, _ = _launched(app, server.base, server.port, refresh_token="r1")  # noqa: S106
        assert client.get("/api/summary", query_string={"ctx": launch_id}).status_code == 200
    fhir = [h for t, h in server.requests if t.startswith("/fhir")]
    assert fhir and all(h.get("Authorization") == f"Bearer {long_token}" for h in fhir)
