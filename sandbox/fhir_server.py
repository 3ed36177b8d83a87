"""Run the real FHIR R4 server (sekmet-fhir) on loopback and load the fixture Bundles into it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml


class FhirServer:
    """sekmet-fhir in a subprocess: loopback, temporary SQLite database, simulator and traffic
    log off, protected by a bearer token that only the proxy knows."""

    def __init__(self, port: int, data_dir: Path, token: str, host: str = "127.0.0.1") -> None:
        self.base = f"http://{host}:{port}/fhir"
        self.token = token
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "base_url": self.base,
            "host": host,
            "port": port,
            "db_path": str(data_dir / "fhir.db"),
            "data_dir": str(data_dir),
            "simulator": {"enabled": False},
            "log_inbound": False,
            "server_auth": {"types": ["bearer"], "tokens": [token]},
        }
        self.settings_path = data_dir / "sekmet.yaml"
        self.settings_path.write_text(yaml.safe_dump(settings))
        self.settings_path.chmod(0o600)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, timeout: float = 60) -> None:
        db = self.data_dir / "fhir.db"
        if db.exists():
            db.unlink()  # a fresh database each start: the sandbox holds synthetic data only
        env = {**os.environ, "SEKMET_CONFIG": str(self.settings_path)}
        sekmet = Path(sys.executable).with_name("sekmet")
        self._log = (self.data_dir / "fhir-server.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [str(sekmet), "serve", "--config", str(self.settings_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"FHIR server exited; see {self.data_dir / 'fhir-server.log'}")
            try:
                with urllib.request.urlopen(f"{self.base}/metadata", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("FHIR server did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}/{path}".rstrip("/"),
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/fhir+json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def load_bundle(self, bundle: dict[str, Any]) -> None:
        """Load a Bundle as one transaction (PUT by id keeps the fixture ids)."""
        entries = []
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{resource['id']}",
                    "resource": resource,
                    "request": {
                        "method": "PUT",
                        "url": f"{resource['resourceType']}/{resource['id']}",
                    },
                }
            )
        status, answer = self.request(
            "POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )
        if status >= 300:
            raise RuntimeError(f"loading {bundle.get('id')} failed: {status} {answer}")

    def load_directory(self, directory: Path) -> int:
        count = 0
        for path in sorted(directory.glob("*.json")):
            bundle = json.loads(path.read_text())
            if bundle.get("resourceType") == "Bundle":
                bundle = resolve_urn_references(bundle)
                self.load_bundle(bundle)
                count += 1
        return count


def resolve_urn_references(bundle: dict[str, Any]) -> dict[str, Any]:
    """Point urn:uuid references of a transaction at Type/id, since entries are PUT by id."""
    aliases = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if str(e.get("fullUrl", "")).startswith("urn:uuid:")
    }
    if not aliases:
        return bundle
    text = json.dumps(bundle)
    for urn, reference in aliases.items():
        text = text.replace(json.dumps(urn), json.dumps(reference))
    return json.loads(text)
