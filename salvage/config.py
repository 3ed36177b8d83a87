"""Configuration files an operator writes (SMART servers, trusted CDS clients), each validated by a
schema in create_app: a typo stops start-up with the file and the field named, never a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from salvage.errors import ConfigError

_URL = r"^https?://\S+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmartServer(_Strict):
    """One FHIR server (issuer) the SMART app may be launched from, and its registration."""

    iss: str = Field(pattern=_URL)
    name: str | None = None
    client_id: str = Field(min_length=1)
    client_type: Literal["public", "confidential-symmetric", "confidential-asymmetric"]
    client_secret: str | None = None  # prefer client_secret_env: secrets do not belong in files
    client_secret_env: str | None = None
    scope: str | None = None


class SmartClientsFile(_Strict):
    servers: list[SmartServer] = []


class CdsClient(_Strict):
    """A CDS client (EHR) trusted to call the service: its JWT issuer, keys and FHIR servers."""

    iss: str = Field(min_length=1)
    jwks_url: str | None = Field(default=None, pattern=_URL)
    jwks: dict[str, Any] | None = None
    fhir_servers: list[str] = []


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
