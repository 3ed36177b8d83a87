"""Start and stop the whole sandbox (FHIR server, then the EHR app) on loopback."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.fhir_server import FhirServer


class RunningSandbox:
    def __init__(self, config: SandboxConfig, fixtures: Path | None = None) -> None:
        self.config = config
        token = secrets.token_urlsafe(32)
        self.fhir = FhirServer(config.fhir_port, Path(config.data_dir) / "fhir", token, config.host)
        self.app = create_app(config, token)
        self.fixtures = fixtures if fixtures is not None else Path(config.fixtures)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RunningSandbox:
        self.fhir.start()
        try:
            if self.fixtures.is_dir():
                self.fhir.load_directory(self.fixtures)
        except BaseException:
            self.fhir.stop()
            raise
        self._server = make_server(self.config.host, self.config.ehr_port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
        self.fhir.stop()

    def __enter__(self) -> RunningSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
