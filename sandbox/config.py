"""Sandbox configuration: defaults, then a YAML/JSON file (SANDBOX_CONFIG), then environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULTS = Path(__file__).with_name("default_config.yaml")


@dataclass(frozen=True)
class Client:
    client_id: str
    type: str  # public | confidential-symmetric | confidential-asymmetric
    redirect_uris: tuple[str, ...]
    launch_url: str
    scope: str
    client_secret: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None


@dataclass(frozen=True)
class SandboxConfig:
    host: str
    ehr_port: int
    fhir_port: int
    fixtures: str
    token_lifetime_seconds: int
    refresh_lifetime_seconds: int
    code_lifetime_seconds: int
    users: tuple[dict[str, str], ...]
    clients: tuple[Client, ...]
    cds_services: tuple[dict[str, str], ...]
    cds_fhir_scope: str
    smart_style_url: str
    data_dir: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ehr_base(self) -> str:
        return f"http://{self.host}:{self.ehr_port}"

    @property
    def fhir_base(self) -> str:
        """The FHIR base apps see: the scope-enforcing proxy, not the backend server."""
        return f"{self.ehr_base}/fhir"

    @property
    def backend_base(self) -> str:
        return f"http://{self.host}:{self.fhir_port}/fhir"

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.client_id == client_id), None)


def load_config(path: str | None = None, **overrides: Any) -> SandboxConfig:
    data: dict[str, Any] = yaml.safe_load(DEFAULTS.read_text())
    path = path or os.environ.get("SANDBOX_CONFIG")
    if path:
        data.update(yaml.safe_load(Path(path).read_text()) or {})
    for key, env in (("ehr_port", "SANDBOX_EHR_PORT"), ("fhir_port", "SANDBOX_FHIR_PORT")):
        if os.environ.get(env):
            data[key] = int(os.environ[env])
    data.update(overrides)
    if data.get("host") not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the sandbox binds to loopback only")
    clients = tuple(
        Client(
            client_id=c["client_id"],
            type=c["type"],
            redirect_uris=tuple(c["redirect_uris"]),
            launch_url=c["launch_url"],
            scope=c["scope"],
            client_secret=c.get("client_secret"),
            jwks=c.get("jwks"),
            jwks_url=c.get("jwks_url"),
        )
        for c in data.pop("clients")
    )
    known = {f for f in SandboxConfig.__dataclass_fields__ if f not in ("clients", "extra")}
    values = {k: v for k, v in data.items() if k in known}
    values.setdefault("data_dir", data.get("data_dir") or "instance/sandbox")
    values["users"] = tuple(values["users"])
    values["cds_services"] = tuple(values["cds_services"])
    return SandboxConfig(
        clients=clients, extra={k: v for k, v in data.items() if k not in known}, **values
    )
