"""SMART Backend Services authorization: client_credentials with a signed JWT client assertion
(RFC 7523 private_key_jwt; SMART App Launch 2.x "Backend Services", RS384 or ES384, exp at most
five minutes ahead, a fresh jti each time) for system/ scopes. Tokens are never logged."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from salvage.errors import ExportError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TIMEOUT = 30


def load_private_key(path: str) -> RSAKey | ECKey:
    """A private key from a JWK (JSON) or PEM file; RSA keys sign RS384, EC P-384 keys ES384."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read the private key file ({exc.strerror})") from exc
    try:
        if raw.lstrip().startswith(b"{"):
            data = orjson.loads(raw)
            if "keys" in data:
                data = data["keys"][0]
            key: RSAKey | ECKey = (RSAKey if data.get("kty") == "RSA" else ECKey).import_key(data)
        else:
            try:
                key = RSAKey.import_key(raw)
            except (ValueError, JoseError):
                key = ECKey.import_key(raw)
    except (ValueError, KeyError, TypeError, JoseError, orjson.JSONDecodeError) as exc:
        raise ExportError("the private key file is not a JWK or PEM private key") from exc
    if not key.is_private:
        raise ExportError("the key file holds a public key; Backend Services needs the private key")
    key.ensure_kid()
    return key


@dataclass
class BackendServices:
    """Gets and renews an access token for system/ scopes from the server's token endpoint."""

    client_id: str
    key: RSAKey | ECKey
    token_url: str
    scope: str
    session: requests.Session
    _token: str | None = None
    _expires: float = 0.0

    @property
    def algorithm(self) -> str:
        return "RS384" if isinstance(self.key, RSAKey) else "ES384"

    def assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "exp": now + 240,  # SMART: no more than five minutes in the future
            "iat": now,
            "jti": secrets.token_urlsafe(24),
        }
        header = {"alg": self.algorithm, "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=[self.algorithm])

    def token(self, renew: bool = False) -> str:
        if self._token and not renew and time.time() < self._expires - 30:
            return self._token
        try:
            reply = self.session.post(
                self.token_url,
                data={
                    "grant_type": "client_credentials",
                    "scope": self.scope,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion(),
                },
                headers={"Accept": "application/json"},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise ExportError(f"the token endpoint did not answer ({type(exc).__name__})") from exc
        body = _json(reply)
        if reply.status_code != 200 or not isinstance(body.get("access_token"), str):
            error = body.get("error") or f"HTTP {reply.status_code}"
            raise ExportError(f"the token endpoint refused the client: {error}")
        self._token = body["access_token"]
        self._expires = time.time() + float(body.get("expires_in") or 300)
        return self._token


def discover_token_url(base: str, session: requests.Session) -> str:
    """The token endpoint from the server's .well-known/smart-configuration."""
    url = f"{base.rstrip('/')}/.well-known/smart-configuration"
    try:
        reply = session.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise ExportError(f"SMART discovery failed ({type(exc).__name__})") from exc
    body = _json(reply)
    token_url = body.get("token_endpoint")
    if reply.status_code != 200 or not isinstance(token_url, str):
        raise ExportError("no token_endpoint in the server's .well-known/smart-configuration")
    if not token_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ExportError("the token endpoint must use https (loopback excepted)")
    return token_url


def _json(reply: requests.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
