"""Start the real sandbox (sekmet-fhir + the EHR app) once per test session on free ports."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from sandbox.config import load_config
from sandbox.runtime import RunningSandbox
from tests.conftest import FIXTURES

CALLBACK = "http://127.0.0.1:8700/callback"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.location).query))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(
    method: str,
    url: str,
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    payload = urllib.parse.urlencode(data).encode() if data is not None else body
    request = urllib.request.Request(url, data=payload, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class SandboxHandle:
    running: RunningSandbox
    client_key: RSAKey  # private key of the test asymmetric client

    @property
    def config(self) -> Any:
        return self.running.config

    @property
    def state(self) -> Any:
        return self.running.app.extensions["sandbox"]

    def new_launch(self, client_id: str, patient: str) -> str:
        from sandbox.ehr import new_launch

        with self.running.app.test_request_context():
            return new_launch(client_id, patient)

    def authorize(
        self,
        client_id: str,
        scope: str,
        *,
        patient: str = "dlbcl-early-relapse",
        launch: bool = True,
        challenge: str | None = None,
        method: str | None = "S256",
        state: str = "state-123",
        **extra: str,
    ) -> Reply:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": scope,
            "state": state,
            "aud": self.config.fhir_base,
        }
        if launch:
            params["launch"] = self.new_launch(client_id, patient)
        if challenge:
            params["code_challenge"] = challenge
        if method and challenge:
            params["code_challenge_method"] = method
        params.update(extra)
        return http(
            "GET", f"{self.config.ehr_base}/auth/authorize?{urllib.parse.urlencode(params)}"
        )

    def token(self, data: dict[str, str], headers: dict[str, str] | None = None) -> Reply:
        return http("POST", f"{self.config.ehr_base}/auth/token", data=data, headers=headers)

    def access_token(
        self,
        scope: str = "launch openid fhirUser patient/*.rs offline_access",
        patient: str = "dlbcl-early-relapse",
    ) -> dict[str, Any]:
        verifier, challenge = pkce()
        reply = self.authorize("salvage-public", scope, patient=patient, challenge=challenge)
        code = reply.query()["code"]
        answer = self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "client_id": "salvage-public",
                "code_verifier": verifier,
            }
        )
        assert answer.status == 200, answer.body
        return answer.json()

    def fhir(self, path: str, token: str | None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return http("GET", f"{self.config.fhir_base}/{path}", headers=headers)

    def faults(self, **faults: Any) -> None:
        http(
            "POST",
            f"{self.config.ehr_base}/sandbox/faults",
            body=json.dumps(faults).encode(),
            headers={"Content-Type": "application/json"},
        )


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    data_dir: Path = tmp_path_factory.mktemp("sandbox")
    client_key = RSAKey.generate_key(2048, {"alg": "RS384", "use": "sig"})
    client_key.ensure_kid()
    config_file = data_dir / "sandbox.yaml"
    base = json.loads(json.dumps(_default_clients()))
    base.append(
        {
            "client_id": "test-asymmetric",
            "type": "confidential-asymmetric",
            "jwks": {"keys": [client_key.as_dict(private=False)]},
            "redirect_uris": [CALLBACK],
            "launch_url": "http://127.0.0.1:8700/launch",
            "scope": "launch openid fhirUser patient/*.rs offline_access",
        }
    )
    base.append(
        {
            "client_id": "narrow-app",
            "type": "public",
            "redirect_uris": [CALLBACK],
            "launch_url": "http://127.0.0.1:8700/launch",
            "scope": "launch patient/Observation.rs?code=http://loinc.org|97509-4 "
            "patient/Patient.rs",
        }
    )
    base.append(
        {
            "client_id": "test-backend",  # SMART Backend Services (Bulk Data export)
            "type": "confidential-asymmetric",
            "jwks": {"keys": [client_key.as_dict(private=False)]},
            "redirect_uris": [],
            "launch_url": "",
            "scope": "system/*.read",
        }
    )
    config_file.write_text(json.dumps({"clients": base}))
    config = load_config(
        str(config_file),
        ehr_port=free_port(),
        fhir_port=free_port(),
        data_dir=str(data_dir),
        fixtures=str(FIXTURES),
    )
    running = RunningSandbox(config).start()
    try:
        yield SandboxHandle(running=running, client_key=client_key)
    finally:
        running.stop()


def _default_clients() -> list[dict[str, Any]]:
    import yaml

    from sandbox.config import DEFAULTS

    return yaml.safe_load(DEFAULTS.read_text())["clients"]


@pytest.fixture(autouse=True)
def _no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").faults()
