"""SMART discovery: {iss}/.well-known/smart-configuration first (S1), the CapabilityStatement's
oauth-uris only if that fails, never both in parallel (S3); relative URLs resolved (S2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from salvage.errors import DiscoveryError

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
TIMEOUT = (3.05, 10)


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    capabilities: frozenset[str]
    code_challenge_methods: frozenset[str]
    scopes_supported: frozenset[str]
    issuer: str | None
    jwks_uri: str | None

    @property
    def supports_v2(self) -> bool:
        return "permission-v2" in self.capabilities


def discover(
    iss: str, session: requests.Session | None = None, headers: dict[str, str] | None = None
) -> SmartConfiguration:
    """headers: the registration's metadata_headers (Epic routes per client on Epic-Client-ID).
    Accept is always sent: Epic answers `metadata` in XML without it (issue 18, quirk 16)."""
    http = session or requests.Session()
    http.headers.update(headers or {})
    base = iss.rstrip("/") + "/"
    try:
        reply = http.get(
            urljoin(base, ".well-known/smart-configuration"),
            timeout=TIMEOUT,
            headers={"Accept": "application/json"},
            allow_redirects=False,
        )
        if reply.status_code == 200:
            doc = reply.json()
            if doc.get("authorization_endpoint") and doc.get("token_endpoint"):
                return _from_document(doc, base)
    except (requests.RequestException, ValueError):
        pass
    return _from_capability_statement(http, base)


def _from_document(doc: dict[str, Any], base: str) -> SmartConfiguration:
    def url(key: str) -> str | None:
        value = doc.get(key)
        return urljoin(base, value) if isinstance(value, str) and value else None

    authorize, token = url("authorization_endpoint"), url("token_endpoint")
    if not authorize or not token:
        raise DiscoveryError("smart-configuration lacks authorization_endpoint or token_endpoint")
    return SmartConfiguration(
        authorization_endpoint=authorize,
        token_endpoint=token,
        capabilities=frozenset(doc.get("capabilities") or []),
        code_challenge_methods=frozenset(doc.get("code_challenge_methods_supported") or []),
        scopes_supported=frozenset(doc.get("scopes_supported") or []),
        issuer=doc.get("issuer"),
        jwks_uri=url("jwks_uri"),
    )


def _from_capability_statement(http: requests.Session, base: str) -> SmartConfiguration:
    try:
        reply = http.get(
            urljoin(base, "metadata"),
            timeout=TIMEOUT,
            headers={"Accept": "application/fhir+json"},
            allow_redirects=False,
        )
        capability = reply.json() if reply.status_code == 200 else {}
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError("the FHIR server could not be reached for discovery") from exc
    for rest in capability.get("rest") or []:
        for extension in (rest.get("security") or {}).get("extension") or []:
            if extension.get("url") != OAUTH_URIS:
                continue
            uris = {e.get("url"): e.get("valueUri") for e in extension.get("extension") or []}
            if uris.get("authorize") and uris.get("token"):
                return SmartConfiguration(
                    authorization_endpoint=urljoin(base, uris["authorize"]),
                    token_endpoint=urljoin(base, uris["token"]),
                    capabilities=frozenset(),
                    code_challenge_methods=frozenset(),
                    scopes_supported=frozenset(),
                    issuer=None,
                    jwks_uri=None,
                )
    raise DiscoveryError("no SMART endpoints advertised by this FHIR server")
