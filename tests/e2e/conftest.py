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
def service(sandbox, tmp_path_factory) -> Iterator[Service]:  # noqa: F811
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
def browser(sandbox) -> Browser:  # noqa: F811
    return Browser(sandbox.config.ehr_base)
