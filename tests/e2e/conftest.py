"""End-to-end: the real sandbox EHR calling a real salvage-cds server (werkzeug thread)."""

from __future__ import annotations

import dataclasses
import http.cookiejar
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from salvage.app import create_app
from tests.support_sandbox import _no_faults, free_port, sandbox  # noqa: F401 (fixtures)


@dataclasses.dataclass
class Service:
    base: str
    app: Any


@pytest.fixture(scope="session")
def service(sandbox, tmp_path_factory) -> Iterator[Service]:
    directory: Path = tmp_path_factory.mktemp("service")
    ehr = sandbox.config.ehr_base
    clients = directory / "cds-clients.json"
    clients.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "iss": ehr,
                        "jwks_url": f"{ehr}/.well-known/jwks.json",
                        "fhir_servers": [sandbox.config.fhir_base],
                    }
                ]
            }
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        {
            "BASE_URL": base,
            "CDS_CLIENTS": str(clients),
            "DATABASE_URL": str(directory / "salvage.db"),
            "CDS_FETCH_BUDGET_SECONDS": 2.0,
        }
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state = sandbox.state
    original = state.config
    state.config = dataclasses.replace(
        original, cds_services=({"name": "salvage-cds", "discovery_url": f"{base}/cds-services"},)
    )
    try:
        yield Service(base=base, app=app)
    finally:
        state.config = original
        server.shutdown()


class Browser:
    """A cookie-keeping HTTP client for the EHR screens (form posts, as a user's browser does)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(f"{self.base}{path}", timeout=30) as response:
            return response.read().decode()

    def post(self, path: str, **form: str) -> str:
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(f"{self.base}{path}", data=data, timeout=30) as response:
            return response.read().decode()


@pytest.fixture
def browser(sandbox) -> Browser:
    return Browser(sandbox.config.ehr_base)


CLIENT_TYPES = ("public", "confidential-symmetric", "confidential-asymmetric")


@dataclasses.dataclass
class SmartApp:
    base: str
    app: Any
    client_id: str
    client_type: str


def start_smart_app(
    sandbox_handle: Any,
    directory: Path,
    client_type: str,
    *,
    scope: str | None = None,
    suffix: str = "",
) -> tuple[SmartApp, Any]:
    """A salvage-cds server registered with the sandbox as one SMART client type."""
    from sandbox.config import Client

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client_id = f"app-{client_type}{suffix}"
    secret = "s3cret-for-tests" if client_type == "confidential-symmetric" else None
    registration = {
        "iss": sandbox_handle.config.fhir_base,
        "name": "Sandbox EHR",
        "client_id": client_id,
        "client_type": client_type,
    }
    if secret:
        registration["client_secret"] = secret
    if scope:
        registration["scope"] = scope
    clients_file = directory / f"smart-{client_id}.json"
    clients_file.write_text(json.dumps({"servers": [registration]}))
    app = create_app(
        {
            "BASE_URL": base,
            "SMART_CLIENTS": str(clients_file),
            "DATABASE_URL": str(directory / f"{client_id}.db"),
            "SECRET_KEY": "test-secret-key",
        }
    )
    app.instance_path = str(directory / f"instance-{client_id}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = sandbox_handle.state
    state.config = dataclasses.replace(
        state.config,
        clients=(
            *state.config.clients,
            Client(
                client_id=client_id,
                type=client_type,
                redirect_uris=(f"{base}/callback",),
                launch_url=f"{base}/launch",
                scope="launch launch/patient openid fhirUser offline_access patient/*.rs "
                "patient/*.read",
                client_secret=secret,
                jwks_url=f"{base}/.well-known/jwks.json"
                if client_type == "confidential-asymmetric"
                else None,
            ),
        ),
    )
    return SmartApp(base=base, app=app, client_id=client_id, client_type=client_type), server


@pytest.fixture(scope="session")
def smart_apps(sandbox, tmp_path_factory) -> Iterator[dict[str, SmartApp]]:
    directory = tmp_path_factory.mktemp("smart")
    apps, servers = {}, []
    for client_type in CLIENT_TYPES:
        app, server = start_smart_app(sandbox, directory, client_type)
        apps[client_type] = app
        servers.append(server)
    yield apps
    for server in servers:
        server.shutdown()


def ehr_launch(sandbox, app: SmartApp, patient: str):
    """Follow the whole EHR launch as a browser would (redirects, cookies); returns the session
    and the final response."""
    import urllib.parse

    import requests

    session = requests.Session()
    reply = session.get(f"{sandbox.config.ehr_base}/launch/{app.client_id}/{patient}", timeout=30)
    # The app's state is per launch (issue 18, quirk 18): its URLs carry the launch id, which
    # this session then sends on every request, as the app's own links do.
    launch_id = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(reply.url).query)).get("ctx")
    if launch_id:
        session.params = {"ctx": launch_id}
    return session, reply
