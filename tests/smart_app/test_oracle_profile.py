"""Issue 18 quirk 19 end to end: an EHR launch against a loopback stub of Oracle Health's
authorization server as documented: a smart-configuration with no issuer and no
code_challenge_methods_supported, permission-v1 only; grant requests without aud refused;
wildcard scopes refused; the id_token issued by the tenant's OIDC issuer; 570 s tokens."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from salvage.app import create_app
from tests.fhir.hostile_server import hostile_server, http_answer

KEY = RSAKey.generate_key(2048, {"kid": "oracle-1"})


def test_q19_an_ehr_launch_against_an_oracle_like_authorization_server(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    with hostile_server() as server:
        root = f"http://127.0.0.1:{server.port}"
        issuer = f"{root}/tenants/t/oidc/idsps/t/"
        server.route(
            "/fhir/.well-known/smart-configuration",
            http_answer(
                {
                    "authorization_endpoint": f"{root}/tenants/t/protocols/oauth2/authorize",
                    "token_endpoint": f"{root}/tenants/t/protocols/oauth2/token",
                    "capabilities": ["launch-ehr", "client-public", "permission-v1"],
                    "scopes_supported": ["openid", "fhirUser", "launch", "online_access"],
                }
            ),
        )
        server.route(
            "/tenants/t/oidc/idsps/t/.well-known/openid-configuration",
            http_answer({"issuer": issuer, "jwks_uri": f"{root}/jwks"}),
        )
        server.route("/jwks", http_answer({"keys": [KEY.as_dict(private=False)]}))

        def token(target: str, sock: socket.socket) -> None:
            seen["token_request"] = target
            now = int(time.time())
            id_token = jwt.encode(
                {"alg": "RS256", "kid": KEY.kid},
                {
                    "iss": issuer,
                    "aud": "oracle-app",
                    "sub": "u",
                    "iat": now,
                    "exp": now + 300,
                    "fhirUser": f"{root}/fhir/Practitioner/12742069",
                },
                KEY,
                algorithms=["RS256"],
            )
            http_answer(
                {
                    "access_token": "oracle-access",
                    "token_type": "Bearer",
                    "expires_in": 570,
                    "scope": seen["scope"],
                    "id_token": id_token,
                    "patient": "12724066",
                    "need_patient_banner": False,
                }
            )(target, sock)

        server.route("/tenants/t/protocols/oauth2/token", token)
        server.route(
            "/fhir/Patient/12724066", http_answer({"resourceType": "Patient", "id": "12724066"})
        )
        smart = tmp_path / "smart.json"
        smart.write_text(
            json.dumps(
                {
                    "servers": [
                        {
                            "iss": f"{root}/fhir",
                            "client_id": "oracle-app",
                            "client_type": "public",
                            "id_token_issuer": issuer,
                            "aud": f"{root}/fhir/",
                            "offline_access": "never",
                        }
                    ]
                }
            )
        )
        app = create_app(
            {
                "TESTING": True,
                "SMART_CLIENTS": str(smart),
                "DATABASE_URL": str(tmp_path / "s.db"),
                "INSTANCE_PATH": str(tmp_path / "instance"),
            }
        )
        client = app.test_client()
        start = client.get("/launch", query_string={"iss": f"{root}/fhir", "launch": "L1"})
        assert start.status_code == 302
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["Location"]).query).items()}
        # What Oracle documents it needs: aud present (the preset's, with '/'), v1 scopes only,
        # no wildcard; PKCE S256 is sent although discovery does not list it (S9).
        assert query["aud"] == f"{root}/fhir/"
        scope = query["scope"].split()
        seen["scope"] = query["scope"]
        assert "*" not in query["scope"] and "offline_access" not in scope
        assert all(s.endswith(".read") for s in scope if s.startswith("patient/"))
        assert query["code_challenge_method"] == "S256" and query["code_challenge"]
        done = client.get("/callback", query_string={"code": "c1", "state": query["state"]})
        assert done.status_code == 303, done.get_data(as_text=True)
        launch_id = parse_qs(urlsplit(done.headers["Location"]).query)["ctx"][0]
        summary = client.get("/api/summary", query_string={"ctx": launch_id})
        assert summary.status_code == 200
        assert summary.get_json()["patients"][0]["patient"] == "Patient/12724066"
    fhir = [h for t, h in server.requests if t.startswith("/fhir/") and "well-known" not in t]
    assert fhir and all(h.get("Authorization") == "Bearer oracle-access" for h in fhir)
