"""`salvage demo`: the sandbox EHR (with its FHIR server) and salvage-cds, on 127.0.0.1 only.

The orchestration lives in the sandbox, not in the product: the product never imports the sandbox.
`salvage demo` replaces its own process with `python -m sandbox.demo`, and salvage-cds itself is
started here as a separate `salvage serve` process, so neither side imports the other."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

EHR_PORT = 8600  # the one URL people open; the FHIR server and the app take port+1, port+100
STARTUP_SECONDS = 120  # a loaded machine (load average 3-4) needs far more than an idle one


class PortInUse(Exception):
    """A port the demo needs is taken by another process."""


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def choose_ports(ehr_port: int) -> tuple[int, int, int]:
    """(EHR, FHIR, app): the EHR port must be free (people open it); the others are derived from
    it (port+1, port+100) when free, else any free port."""
    if not _free(ehr_port):
        raise PortInUse(
            f"port {ehr_port} on 127.0.0.1 is in use (is another demo still running?); "
            "stop it or choose another with --port"
        )
    fhir = ehr_port + 1 if _free(ehr_port + 1) else _any_free_port()
    app = ehr_port + 100 if _free(ehr_port + 100) else _any_free_port()
    return ehr_port, fhir, app


def run_demo(fixtures: str, port: int = EHR_PORT) -> int:
    from sandbox.config import load_config
    from sandbox.runtime import RunningSandbox

    try:
        ehr_port, fhir_port, app_port = choose_ports(port)
    except PortInUse as exc:
        print(f"salvage: error: {exc}", file=sys.stderr)
        return 2
    instance = Path(os.environ.get("SALVAGE_DEMO_INSTANCE") or "instance/demo").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    app_base = f"http://127.0.0.1:{app_port}"
    ehr_base = f"http://127.0.0.1:{ehr_port}"
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
        ehr_port=ehr_port,
        fhir_port=fhir_port,
        fixtures=fixtures,
        data_dir=str(instance / "sandbox"),
        clients=[public_client],
        # the service on the port chosen for it (with --port, not the default 8700)
        cds_services=[{"name": "salvage-cds", "discovery_url": f"{app_base}/cds-services"}],
    )
    print("starting the sandbox FHIR server and EHR ...", flush=True)
    sandbox = RunningSandbox(config)
    app: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sandbox.start()
        app = _start_app(app_port, env)
        _wait(f"{app_base}/cds-services/salvage-order-sign", app)
        print(f"\nsalvage-cds demo ready: open {ehr_base}/\n(Ctrl-C stops everything)", flush=True)
        # The feedback lands in the demo's own database, not the default one (issue 15 item 15).
        print(
            "feedback summary, in another terminal: "
            f"SALVAGE_DATABASE_URL={env['SALVAGE_DATABASE_URL']} salvage feedback",
            flush=True,
        )
        while not stop.wait(1):
            if app.poll() is not None:
                print("salvage-cds server stopped", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass  # Ctrl-C: stop everything, quietly
    except (RuntimeError, OSError) as exc:
        print(f"salvage: error: the demo did not start: {exc}", file=sys.stderr)
        return 2
    finally:
        _stop(app)
        sandbox.stop()
    return 0


def _start_app(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 (our own command, fixed arguments)
        [
            sys.executable,
            "-m",
            "salvage.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
    )


def _stop(app: subprocess.Popen[bytes] | None) -> None:
    if app is None:
        return
    app.terminate()
    try:
        app.wait(timeout=10)
    except subprocess.TimeoutExpired:
        app.kill()


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("salvage-cds server failed to start")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (404 for GET on a POST endpoint)
        except (OSError, http.client.HTTPException):
            # not listening yet, or too slow to answer under load (a read TimeoutError): retry
            time.sleep(0.3)
    raise RuntimeError("salvage-cds server did not start in time")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="salvage demo", description=__doc__)
    parser.add_argument("--fixtures", default="fixtures")
    parser.add_argument("--port", type=int, default=EHR_PORT)
    args = parser.parse_args(argv)
    return run_demo(args.fixtures, args.port)


if __name__ == "__main__":
    sys.exit(main())
