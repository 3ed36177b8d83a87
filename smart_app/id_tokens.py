"""Which issuer and keys an id_token is checked against (S23, issue 18 quirks 7, 13 and 19).

The id_token's `iss` is often not the FHIR base: Epic's is its OAuth server, Oracle's the
tenant's OIDC issuer (and Oracle's smart-configuration has no `issuer`). The expected issuer is,
in order: the registration's `id_token_issuer`, the smart-configuration's `issuer`, the `issuer`
of `{iss}/.well-known/openid-configuration`. The FHIR base is never assumed silently.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from salvage.errors import LaunchError

ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]
TIMEOUT = (3.05, 10)


def _openid_configuration(issuer: str) -> dict[str, Any]:
    try:
        reply = requests.get(
            issuer.rstrip("/") + "/.well-known/openid-configuration",
            timeout=TIMEOUT,
            headers={"Accept": "application/json"},
            allow_redirects=False,
        )
        doc = reply.json() if reply.status_code == 200 else {}
    except (requests.RequestException, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def expectations(data: dict[str, Any], reg: Any) -> tuple[tuple[str, ...], str]:
    """(accepted issuers, jwks_uri) for the id_token of this sign-in, else a LaunchError."""
    issuers: tuple[str, ...] = tuple(reg.id_token_issuers)
    if not issuers and isinstance(data.get("issuer"), str) and data["issuer"]:
        issuers = (data["issuer"],)
    fhir_openid: dict[str, Any] | None = None
    if not issuers:
        fhir_openid = _openid_configuration(data["iss"])
        if isinstance(fhir_openid.get("issuer"), str) and fhir_openid["issuer"]:
            issuers = (fhir_openid["issuer"],)
    if not issuers:
        raise LaunchError(
            "An id_token was issued but its issuer is unknown (no id_token_issuer is registered "
            "and the server publishes none). Ask your administrator to set id_token_issuer."
        )
    jwks_uri = data.get("jwks_uri")
    if not jwks_uri:
        # OpenID Connect discovery at the issuer (Epic: /oauth2/.well-known/openid-configuration).
        doc = fhir_openid or _openid_configuration(issuers[0])
        jwks_uri = doc.get("jwks_uri") if isinstance(doc.get("jwks_uri"), str) else None
    if not jwks_uri or urlsplit(jwks_uri).scheme not in ("https", "http"):
        raise LaunchError("An id_token was issued but the server publishes no jwks_uri.")
    return issuers, jwks_uri


def decode(token: str, jwks: Any) -> dict[str, Any]:
    """Verified claims. A token without `kid` is accepted only against a JWKS of exactly one key
    (the SMART launcher signs with the only key at /keys and sends no kid, quirk 7)."""
    keys = KeySet.import_key_set(jwks)
    header = jwt.decode(token, keys if _has_kid(token) else _only_key(keys), algorithms=ALGORITHMS)
    return dict(header.claims)


def _has_kid(token: str) -> bool:
    from joserfc import jws

    return isinstance(jws.extract_compact(token.encode()).headers().get("kid"), str)


def _only_key(keys: KeySet) -> Any:
    if len(keys.keys) != 1:
        raise ValueError("an id_token without kid and a JWKS of several keys")
    return keys.keys[0]


def user_reference(fhir_user: Any) -> str | None:
    """fhirUser as `Practitioner/<id>`: Epic sends an absolute URL (quirk 13)."""
    if not isinstance(fhir_user, str) or not fhir_user:
        return None
    parts = fhir_user.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else fhir_user
