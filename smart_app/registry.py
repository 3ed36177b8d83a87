"""Client registrations per FHIR server (issuer), from the file named by SALVAGE_SMART_CLIENTS.

An `iss` not listed here is refused before any request is sent to it (S5: no counterfeit servers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from salvage.config import SearchProfile, SmartClientsFile, read_config


@dataclass(frozen=True)
class Registration:
    iss: str
    name: str
    client_id: str
    client_type: str
    client_secret: str | None = None
    scope: str | None = None
    id_token_issuers: tuple[str, ...] = ()
    aud: str | None = None
    metadata_headers: tuple[tuple[str, str], ...] = ()
    authorize_method: str = "get"
    offline_access: str = "auto"
    frame_ancestors: tuple[str, ...] = ()
    search_profile: SearchProfile | None = None
    open_server: bool = False
    dev_only: bool = False

    @property
    def auth_method(self) -> str:
        return {
            "public": "none",
            "confidential-symmetric": "client_secret_basic",
            "confidential-asymmetric": "private_key_jwt",
        }[self.client_type]


def normalise(iss: str) -> str:
    return iss.strip().rstrip("/")


def load_registrations(path: str | None) -> dict[str, Registration]:
    """The registrations in the SALVAGE_SMART_CLIENTS file, validated (ConfigError names the
    file and field of a mistake)."""
    found: dict[str, Registration] = {}
    for entry in read_config(path, SmartClientsFile).servers:
        secret = entry.client_secret
        if entry.client_secret_env:
            secret = os.environ.get(entry.client_secret_env)
        iss = normalise(entry.iss)
        found[iss] = Registration(
            iss=iss,
            name=entry.name or iss,
            client_id=entry.client_id,
            client_type=entry.client_type,
            client_secret=secret,
            scope=entry.scope,
            id_token_issuers=entry.id_token_issuers,
            aud=entry.aud,
            metadata_headers=tuple(entry.metadata_headers.items()),
            authorize_method=entry.authorize_method,
            offline_access=entry.offline_access,
            frame_ancestors=tuple(entry.frame_ancestors),
            search_profile=entry.search_profile,
            open_server=entry.open_server,
            dev_only=entry.dev_only,
        )
    return found
