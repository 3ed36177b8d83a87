"""The app's own signing key for confidential-asymmetric clients (S18), published as a JWKS."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from salvage.instance_files import shared_secret


def app_key(instance_path: str) -> ECKey:
    """One key for every worker: created once in the instance folder, then read."""

    def make() -> str:
        key = ECKey.generate_key("P-384", {"alg": "ES384", "use": "sig"})
        key.ensure_kid()
        return json.dumps(key.as_dict(private=True))

    return ECKey.import_key(
        json.loads(shared_secret(Path(instance_path) / "smart-app-es384.json", make))
    )


# Epic caches a JWKS for up to 29 hours unless Cache-Control says otherwise (quirk 15). One
# hour: a new key must be published this long before it signs (see README, key rotation).
JWKS_MAX_AGE_SECONDS = 3600


def public_jwks(key: ECKey) -> dict:
    return KeySet([key]).as_dict(private=False)


def client_assertion(key: ECKey, client_id: str, token_endpoint: str) -> str:
    """SMART private_key_jwt: iss = sub = client_id, aud = token URL, exp within 5 minutes,
    unique jti, kid in the header (S18). Epic also lists nbf, and a jti of at most 151
    characters never reused (issue 18, quirk 15): a UUID is 36."""
    now = int(time.time())
    return jwt.encode(
        {"alg": "ES384", "kid": key.kid, "typ": "JWT"},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "iat": now,
            "nbf": now,
            "exp": now + 240,
            "jti": str(uuid.uuid4()),
        },
        key,
        algorithms=["ES384"],
    )
