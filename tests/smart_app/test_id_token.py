"""S23 and issue 14: an id_token whose claims have the wrong types is refused with the launch
error page, never a 500 (verified against a real JWKS served on 127.0.0.1)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from smart_app import registry, signin, views
from tests.fhir.hostile_server import hostile_server, http_answer

KEY = RSAKey.generate_key(2048, {"kid": "k1"})


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": {}},
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": time.time() - 3600},
        {"aud": {"x": 1}},
        {"iss": ["x"]},
    ],
)
def test_an_id_token_with_bad_claims_is_a_launch_error(claims: dict[str, Any]) -> None:
    body = {"iss": "https://ehr.example/fhir", "aud": "app", "exp": time.time() + 300, **claims}
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, body, KEY, algorithms=["RS256"])
    with hostile_server() as server:
        server.route("/jwks", http_answer({"keys": [KEY.as_dict(private=False)]}))
        data = {
            "jwks_uri": f"http://127.0.0.1:{server.port}/jwks",
            "iss": "https://ehr.example/fhir",
        }
        reg = registry.Registration(
            iss="https://ehr.example/fhir", name="EHR", client_id="app", client_type="public"
        )
        with pytest.raises(views.LaunchError):
            signin.verify_id_token({"id_token": token}, data, reg)
