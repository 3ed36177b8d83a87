"""The sandbox EHR application: SMART authorization server, FHIR proxy, EHR screens, CDS client."""

from __future__ import annotations

import logging
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from sandbox import auth_views, bulk, ehr, order_entry, proxy
from sandbox.config import SandboxConfig
from sandbox.keys import SandboxKeys
from sandbox.oauth import build_authorization_server
from sandbox.store import Store


@dataclass
class Sandbox:
    config: SandboxConfig
    store: Store
    keys: SandboxKeys
    backend_token: str
    oauth: Any = None

    def backend_get(self, path_and_query: str) -> tuple[int, bytes]:
        """GET from the FHIR server with the backend token only the sandbox holds."""
        req = urllib.request.Request(
            f"{self.config.backend_base}/{path_and_query}",
            headers={"Authorization": f"Bearer {self.backend_token}", "Accept": proxy.FHIR_JSON},
        )
        try:
            with urllib.request.urlopen(req, timeout=20) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return 502, b'{"resourceType": "OperationOutcome"}'

    def backend_request(
        self, method: str, path_and_query: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        """Any request to the FHIR server (Bulk Data kick-off, status, files), backend token."""
        req = urllib.request.Request(
            f"{self.config.backend_base}/{path_and_query}",
            data=body,
            method=method,
            headers={**headers, "Authorization": f"Bearer {self.backend_token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, _lower(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, _lower(error.headers), error.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return 502, {}, b'{"resourceType": "OperationOutcome"}'

    def patient_list(self) -> list[dict[str, str]]:
        status, body = self.backend_get("Patient?_count=200")
        if status != 200:
            return []
        import json

        bundle = json.loads(body)
        patients = []
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            name = (resource.get("name") or [{}])[0]
            label = " ".join([*name.get("given", []), name.get("family", "")]).strip()
            patients.append(
                {
                    "id": resource.get("id", ""),
                    "name": label or resource.get("id", ""),
                    "birthDate": resource.get("birthDate", ""),
                    "gender": resource.get("gender", ""),
                }
            )
        return sorted(patients, key=lambda p: p["id"])

    def patient_ids(self) -> set[str]:
        return {p["id"] for p in self.patient_list()}


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def create_app(config: SandboxConfig, backend_token: str) -> Flask:
    app = Flask(__name__)
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        OAUTH2_TOKEN_EXPIRES_IN={
            "authorization_code": config.token_lifetime_seconds,
            "refresh_token": config.token_lifetime_seconds,
            "client_credentials": config.token_lifetime_seconds,
        },
        OAUTH2_REFRESH_TOKEN_GENERATOR=True,
    )
    sandbox = Sandbox(
        config=config,
        store=Store(data_dir / "sandbox.db"),
        keys=SandboxKeys(data_dir / "keys"),
        backend_token=backend_token,
    )
    app.extensions["sandbox"] = sandbox
    sandbox.oauth = build_authorization_server(app, sandbox)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(bulk.bp)  # before the proxy's /fhir/<path> catch-all
    app.register_blueprint(proxy.bp)
    app.register_blueprint(ehr.bp)
    app.register_blueprint(order_entry.bp)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return app
