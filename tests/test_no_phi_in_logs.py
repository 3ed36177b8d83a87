"""Issue 14: logs carry request ids, resource types and statuses, never patient ids, names, URLs
with ids, or token material: distinctive values are sent through every path that logs (budget
overrun, failed and redirected reads, refused values) and the captured logs are searched, both
in process (caplog) and from a real `salvage serve` (gunicorn) process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from salvage.app import create_app
from tests.cds_hooks.conftest import BASE, fixture_prefetch, hook_body, signed, write_clients
from tests.fhir.hostile_server import HostileServer, hostile_server, http_answer, raw_answer
from tests.support_sandbox import free_port

PATIENT_ID = "Phi-Patient-Zq81"
NAME = "Hildegardphiname"
TOKEN = "tok-SECRET-9kq"
SECRETS = (PATIENT_ID, NAME, TOKEN, "SECRET")
SIGN = "salvage-order-sign"


def _bodies(server: HostileServer) -> list[dict[str, Any]]:
    """Requests that take every logging path of the service."""
    prefetch = json.loads(
        json.dumps(fixture_prefetch("dlbcl-early-relapse")).replace(
            "dlbcl-early-relapse", PATIENT_ID
        )
    )
    prefetch["patient"]["name"] = [{"family": NAME, "given": [NAME]}]
    prefetch["procedures"]["link"] = [
        {"relation": "next", "url": f"{server.base}/Procedure?patient={PATIENT_ID}&page=2"}
    ]
    auth = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "subject": "x"}
    paged = hook_body("order-sign", PATIENT_ID, ["doxorubicin"], prefetch)
    slow = hook_body("order-sign", PATIENT_ID, ["doxorubicin"])
    crlf = hook_body("order-sign", PATIENT_ID, ["doxorubicin"])
    accent = hook_body("order-sign", PATIENT_ID + "é", ["doxorubicin"])
    for body in (paged, slow, crlf, accent):
        body["fhirServer"] = server.base
        body["fhirAuthorization"] = dict(auth)
    crlf["fhirAuthorization"]["access_token"] = f"{TOKEN}\r\nX: y"
    return [paged, slow, crlf, accent]


def _route(server: HostileServer) -> None:
    server.route("/fhir/Procedure", http_answer("", "500 Internal Server Error"))
    server.route("/fhir/Observation", http_answer("", "302 Found", {"Location": "http://x/"}))
    server.route("/fhir/", raw_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{", every=0.5))


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into the logs"


def test_in_process_logs_hold_no_phi_or_tokens(tmp_path: Path, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    with hostile_server() as server:
        _route(server)
        app = create_app(
            {
                "TESTING": True,
                "BASE_URL": BASE,
                "CDS_CLIENTS": str(write_clients(tmp_path / "c.json", fhir_servers=[server.base])),
                "DATABASE_URL": str(tmp_path / "salvage.db"),
                "CDS_FETCH_BUDGET_SECONDS": 1.0,
            }
        )
        client = app.test_client()
        path = f"/cds-services/{SIGN}"
        statuses = []
        for body in _bodies(server):
            reply = client.post(
                path,
                data=json.dumps(body),
                headers={"Authorization": f"Bearer {signed(path)}"},
                content_type="application/json",
            )
            statuses.append(reply.status_code)
            assert TOKEN not in reply.get_data(as_text=True)
    assert statuses == [200, 412, 400, 400]
    assert "incomplete data" in caplog.text  # the budget overrun was logged, without PHI
    _assert_clean(caplog.text)


def _wait_for(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("salvage serve did not start")


def test_gunicorn_logs_hold_no_phi_or_tokens(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with hostile_server() as server:
        _route(server)
        env = {
            **os.environ,
            "SALVAGE_BASE_URL": BASE,
            "SALVAGE_CDS_CLIENTS": str(
                write_clients(tmp_path / "c.json", fhir_servers=[server.base])
            ),
            "SALVAGE_DATABASE_URL": str(tmp_path / "salvage.db"),
            "SALVAGE_SECRET_KEY": "k",
            "SALVAGE_CDS_FETCH_BUDGET_SECONDS": "1.0",
        }
        log = (tmp_path / "server.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "salvage.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        try:
            _wait_for(f"{base}/cds-services", time.monotonic() + 60)
            send: Callable[[dict[str, Any]], int] = lambda body: _post(base, body)  # noqa: E731
            assert [send(b) for b in _bodies(server)] == [200, 412, 400, 400]
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()
    text = (tmp_path / "server.log").read_text()
    assert "POST /cds-services/salvage-order-sign" in text  # the service does log requests
    _assert_clean(text)


def _post(base: str, body: dict[str, Any]) -> int:
    path = f"/cds-services/{SIGN}"
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {signed(path)}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
