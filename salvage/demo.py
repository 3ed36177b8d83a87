"""`salvage demo`: the sandbox EHR (with its FHIR server) and salvage-cds, on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

EHR_PORT = 8600
FHIR_PORT = 8601
APP_PORT = 8700


def run_demo(fixtures: str) -> int:
    from sandbox.config import load_config
    from sandbox.runtime import RunningSandbox

    instance = Path("instance/demo").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    app_base = f"http://127.0.0.1:{APP_PORT}"
    ehr_base = f"http://127.0.0.1:{EHR_PORT}"
    trusted = instance / "cds-clients.json"
    trusted.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "iss": ehr_base,
                        "jwks_url": f"{ehr_base}/.well-known/jwks.json",
                        "fhir_servers": [f"{ehr_base}/fhir"],
                    }
                ]
            }
        )
    )
    smart_clients = instance / "smart-clients.json"
    smart_clients.write_text(
        json.dumps(
            {
                "servers": [
                    {
                        "iss": f"{ehr_base}/fhir",
                        "name": "Sandbox EHR",
                        "client_id": "salvage-public",
                        "client_type": "public",
                    }
                ]
            }
        )
    )
    env = {
        **os.environ,
        "SALVAGE_BASE_URL": app_base,
        "SALVAGE_CDS_CLIENTS": str(trusted),
        "SALVAGE_SMART_CLIENTS": str(smart_clients),
        "SALVAGE_DATABASE_URL": str(instance / "salvage.db"),
        "SALVAGE_SECRET_KEY": os.environ.get("SALVAGE_SECRET_KEY") or os.urandom(24).hex(),
    }
    # The demo app is registered once, as a public client; the symmetric and asymmetric client
    # types are exercised by tests/e2e with app instances of their own.
    public_client = {
        "client_id": "salvage-public",
        "type": "public",
        "redirect_uris": [f"{app_base}/callback"],
        "launch_url": f"{app_base}/launch",
        "scope": "launch launch/patient openid fhirUser offline_access patient/*.rs patient/*.read",
    }
    config = load_config(
        ehr_port=EHR_PORT,
        fhir_port=FHIR_PORT,
        fixtures=fixtures,
        data_dir=str(instance / "sandbox"),
        clients=[public_client],
    )
    print("starting the sandbox FHIR server and EHR ...", flush=True)
    sandbox = RunningSandbox(config).start()
    app = subprocess.Popen(  # noqa: S603 (our own command, fixed arguments)
        [
            sys.executable,
            "-m",
            "salvage.cli",
            "serve",
            "--port",
            str(APP_PORT),
            "--workers",
            "2",
        ],
        env=env,
    )
    try:
        _wait(f"{app_base}/cds-services/salvage-order-sign", app)
        print(f"\nsalvage-cds demo ready: open {ehr_base}/\n(Ctrl-C stops everything)", flush=True)
        print(f"card feedback: SALVAGE_DATABASE_URL={env['SALVAGE_DATABASE_URL']} salvage feedback")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(1):
            if app.poll() is not None:
                print("salvage-cds server stopped", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
        sandbox.stop()
    return 0


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("salvage-cds server failed to start")
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (loopback)
            return
        except urllib.error.HTTPError:
            return  # it answers (404 for GET on a POST endpoint)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise RuntimeError("salvage-cds server did not start in time")
