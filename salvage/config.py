"""Configuration files an operator writes (SMART servers, trusted CDS clients), each validated by a
schema in create_app: a typo stops start-up with the file and the field named, never a request."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from salvage.errors import ConfigError

_URL = r"^https?://\S+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_ORIGIN = r"^https?://[^/\s]+$"
_HEADER_NAME = r"^[A-Za-z0-9-]{1,64}$"


class SearchProfile(_Strict):
    """How one server wants its searches (issue 18, quirks 17 and 22): Epic exposes Observation
    and Condition through category-specific APIs and answers 400 to a search without category."""

    # Observation by category, then the LOINC codes the rules read are kept locally.
    observation_categories: list[str] = []
    condition_categories: list[str] = []
    # Epic's Condition.Search returns only active conditions unless clinical-status is given.
    condition_clinical_status: list[str] = []
    # Parameters the server refuses (e.g. `_count` on Oracle's Condition and Procedure).
    drop_params: list[str] = []


class SmartServer(_Strict):
    """One FHIR server (issuer) the SMART app may be launched from, and its registration."""

    iss: str = Field(pattern=_URL)
    name: str | None = None
    client_id: str = Field(min_length=1)
    client_type: Literal["public", "confidential-symmetric", "confidential-asymmetric"]
    client_secret: str | None = None  # prefer client_secret_env: secrets do not belong in files
    client_secret_env: str | None = None
    scope: str | None = None
    # The id_token's expected `iss` (Epic: its OAuth server; Oracle: the tenant's OIDC issuer).
    # Neither is the FHIR base, so the base is never assumed (issue 18 section 1).
    id_token_issuer: str | list[str] | None = None
    aud: str | None = Field(default=None, pattern=_URL)  # sent at authorize instead of iss
    # Extra headers on discovery requests (Epic routes endpoints by an Epic-Client-ID header).
    metadata_headers: dict[str, str] = {}
    # POST is for EHR launch only (Epic: launch tokens are long JWTs).
    authorize_method: Literal["get", "post"] = "get"
    offline_access: Literal["auto", "never"] = "auto"
    # Web origins allowed to frame the app (Epic Hyperspace, MyChart) besides the FHIR host.
    frame_ancestors: list[str] = []
    search_profile: SearchProfile | None = None
    open_server: bool = False  # unauthenticated, read-only public test server (section 2)
    dev_only: bool = False

    @field_validator("id_token_issuer")
    @classmethod
    def _issuers_are_urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        for item in [value] if isinstance(value, str) else value or []:
            if not re.match(_URL, item):
                raise ValueError(f"{item!r} is not an http(s) URL")
        return value

    @field_validator("frame_ancestors")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.match(_ORIGIN, item):
                raise ValueError(f"{item!r} is not a web origin (scheme://host[:port])")
        return value

    @field_validator("metadata_headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if not re.match(_HEADER_NAME, name) or not header.isprintable() or "\n" in header:
                raise ValueError(f"{name!r} is not a valid header")
            if name.lower() == "authorization":
                raise ValueError("Authorization is never sent on discovery")
        return value

    @model_validator(mode="after")
    def _placeholders_replaced(self) -> SmartServer:
        # Presets ship '<...>' where the integrator's own registration goes (Epic client ids).
        values = [self.client_id, *self.metadata_headers.values()]
        if any(v.startswith("<") for v in values):
            raise ValueError("a '<...>' placeholder from the preset has not been replaced")
        if self.open_server and self.client_type != "public":
            raise ValueError("an open_server entry is public: no credentials are ever sent")
        return self

    @property
    def id_token_issuers(self) -> tuple[str, ...]:
        value = self.id_token_issuer
        return (value,) if isinstance(value, str) else tuple(value or ())


class SmartClientsFile(_Strict):
    servers: list[SmartServer] = []


class CdsClient(_Strict):
    """A CDS client (EHR) trusted to call the service: its JWT issuer, keys and FHIR servers."""

    iss: str = Field(min_length=1)
    jwks_url: str | None = Field(default=None, pattern=_URL)
    jwks: dict[str, Any] | None = None
    fhir_servers: list[str] = []
    # Other spellings of this service's URL the client may put in `aud` (the CDS Hooks sandbox
    # uses the discovery URL exactly as typed: localhost for 127.0.0.1, http behind a proxy).
    audience_aliases: list[str] = []
    # Unauthenticated public servers from which missing prefetch may be read without a token,
    # only when the request carries no fhirAuthorization (a testing aid, issue 18 section 2).
    open_fhir_servers: list[str] = []
    dev_only: bool = False

    @field_validator("audience_aliases", "open_fhir_servers", "fhir_servers")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.match(_URL, item):
                raise ValueError(f"{item!r} is not an http(s) URL")
        return value


class CdsClientsFile(_Strict):
    clients: list[CdsClient] = []


Model = TypeVar("Model", bound=BaseModel)


def read_config(path: str | None, model: type[Model]) -> Model:
    """The validated file, or an empty one when no file is configured."""
    if not path:
        return model()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML/JSON ({exc})") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc


def is_production_like(base_url: str) -> bool:
    """https on a host that is not loopback: where real users may be."""
    parts = urlsplit(base_url)
    return parts.scheme == "https" and (parts.hostname or "") not in _LOOPBACK


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def check_dev_only(path: str | None, names: list[str], base_url: str, allowed: bool) -> None:
    """A dev_only entry (a sandbox whose signing key is public, an open test server) refuses to
    load in a production-like configuration unless development entries are explicitly allowed."""
    if names and is_production_like(base_url) and not allowed:
        raise ConfigError(
            f"{path}: {', '.join(names)} is dev_only and SALVAGE_BASE_URL is a public https "
            "address; set SALVAGE_ALLOW_DEV_ENTRIES=true only on a development instance"
        )
