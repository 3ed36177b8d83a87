"""CDS Hooks 2.0 request authentication (H15-H17): a JWT from a trusted client, verified against
that client's own JWKS, with audience, time, replay and algorithm checks. Failure: a bare 401."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from salvage.config import CdsClientsFile, read_config
from salvage.errors import ConfigError, Unauthorized

log = logging.getLogger("salvage.cds.security")
ALGORITHMS = ("ES384", "RS384")  # asymmetric only; "none" and HS* are refused (H17)
CLOCK_SKEW_SECONDS = 60
# CDS Hooks security guidance: a short-lived JWT, at most 5 minutes from iat to exp.
MAX_LIFETIME_SECONDS = 300
JWKS_TTL_SECONDS = 300


@dataclass
class TrustedClient:
    iss: str
    jwks_url: str | None
    jwks: dict[str, Any] | None
    fhir_servers: tuple[str, ...]
    audience_aliases: tuple[str, ...] = ()
    open_fhir_servers: tuple[str, ...] = ()
    dev_only: bool = False
    _cache: tuple[float, KeySet] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allows_fhir_server(self, url: str) -> bool:
        return url.rstrip("/") in {s.rstrip("/") for s in self.fhir_servers}

    def is_open_server(self, url: str) -> bool:
        return url.rstrip("/") in {s.rstrip("/") for s in self.open_fhir_servers}

    def keys(self, kid: str) -> KeySet:
        """The client's JWKS, imported once and cached for JWKS_TTL_SECONDS (inline or fetched);
        a fetched set is read again once when a kid is unknown (key rotation)."""
        if self.jwks is not None:
            # The inline set is configuration, fixed for the life of the process: importing it
            # (parsing each JWK into a key object) on every request cost about 0.04 ms.
            cached = self._cache
            if cached is None or time.monotonic() - cached[0] >= JWKS_TTL_SECONDS:
                cached = self._cache = (time.monotonic(), KeySet.import_key_set(self.jwks))
            return cached[1]
        if self.jwks_url is None:
            raise Unauthorized("no JWKS configured")
        with self._lock:
            now = time.monotonic()
            if self._cache and now - self._cache[0] < JWKS_TTL_SECONDS:
                keyset = self._cache[1]
                if any(k.kid == kid for k in keyset.keys):
                    return keyset
                if now - self._cache[0] < 5:  # just fetched: do not hammer the issuer
                    return keyset
            with urllib.request.urlopen(self.jwks_url, timeout=3) as response:  # noqa: S310
                keyset = KeySet.import_key_set(json.loads(response.read(1_000_000)))
            self._cache = (now, keyset)
            return keyset


def load_trusted_clients(path: str | None) -> dict[str, TrustedClient]:
    """The trusted clients in the SALVAGE_CDS_CLIENTS file, validated (ConfigError names the
    file and field of a mistake)."""
    clients = {}
    for entry in read_config(path, CdsClientsFile).clients:
        url = entry.jwks_url
        if url and not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError(
                f"{path}: JWKS URL of {entry.iss} must be https (or loopback for testing)"
            )
        clients[entry.iss] = TrustedClient(
            iss=entry.iss,
            jwks_url=url,
            jwks=entry.jwks,
            fhir_servers=tuple(entry.fhir_servers),
            audience_aliases=tuple(entry.audience_aliases),
            open_fhir_servers=tuple(entry.open_fhir_servers),
            dev_only=entry.dev_only,
        )
    return clients


def verify_request_jwt(
    authorization: str | None,
    audience: str,
    clients: dict[str, TrustedClient],
    first_use_of_jti: Any,
    endpoint: str = "",
) -> TrustedClient:
    """The trusted client that signed the request. endpoint: the path after /cds-services/
    (service id, or id/feedback), for the client's audience_aliases."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("no bearer JWT")
    try:
        compact = jws.extract_compact(token.encode())
        header = compact.headers()
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError, RecursionError) as exc:
        raise Unauthorized("malformed JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthorized("malformed JWT")  # a header or payload that is not a JSON object
    if header.get("alg") not in ALGORITHMS:
        raise Unauthorized(f"algorithm {header.get('alg')!r} refused")
    if header.get("typ", "JWT") != "JWT" or not isinstance(header.get("kid"), str):
        raise Unauthorized("typ must be JWT and kid is required")
    iss = claims.get("iss")
    client = clients.get(iss) if isinstance(iss, str) else None
    if client is None:
        raise Unauthorized("untrusted issuer")
    jku = header.get("jku")
    if jku is not None and jku != client.jwks_url:
        raise Unauthorized("jku not on the issuer's allowlist")  # never fetched (no SSRF)
    try:
        keys = client.keys(str(header["kid"]))
    except Unauthorized:
        raise
    except Exception as exc:  # whatever the issuer's JWKS URL answers: unverifiable, not a 500
        raise Unauthorized("the issuer's JWKS could not be read") from exc
    try:
        verified = jwt.decode(token, keys, algorithms=[header["alg"]])
    except (JoseError, ValueError, TypeError, KeyError, OSError, RecursionError) as exc:
        raise Unauthorized("signature not verified") from exc
    c = verified.claims
    now = time.time()
    audiences = c.get("aud") if isinstance(c.get("aud"), list) else [c.get("aud")]
    accepted = {audience} | {
        alias + (f"/{endpoint}" if endpoint else "") for alias in client.audience_aliases
    }
    if not accepted & {a for a in audiences if isinstance(a, str)}:
        # Named in the log (URLs, not secrets): the usual cause is the discovery URL as the
        # client's user typed it (a trailing slash, localhost for 127.0.0.1, http behind a proxy).
        log.warning(
            "CDS request refused: JWT aud %s is not this endpoint; expected %s "
            "(add the client's spelling to audience_aliases if it is this service)",
            ", ".join(repr(str(a)[:200]) for a in audiences[:3]),
            repr(audience),
        )
        raise Unauthorized("aud is not this endpoint")
    if not _number(c.get("exp")) or c["exp"] < now - CLOCK_SKEW_SECONDS:
        raise Unauthorized("expired")
    if not _number(c.get("iat")) or c["iat"] > now + CLOCK_SKEW_SECONDS:
        raise Unauthorized("issued in the future")
    if c["exp"] - c["iat"] > MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise Unauthorized("lifetime longer than 5 minutes")
    if "nbf" in c and (not _number(c["nbf"]) or c["nbf"] > now + CLOCK_SKEW_SECONDS):
        raise Unauthorized("not valid yet (nbf)")
    if (
        not isinstance(c.get("jti"), str)
        or not c["jti"]
        or not first_use_of_jti(f"{client.iss}:{c['jti']}", float(c["exp"]) + CLOCK_SKEW_SECONDS)
    ):
        raise Unauthorized("jti missing or replayed")
    return client


def _number(value: Any) -> bool:
    """A NumericDate: an int or a finite float, never a bool."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and abs(value) < 1e12  # beyond the year 33,000 is not a date
    )
