"""Issue 18 section 2: a read-only "public test server" entry on /standalone. No token is sent,
every answer carries the banner, malformed data is counted, never fatal."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from salvage.app import create_app
from smart_app.views import PUBLIC_BANNER
from tests.conftest import FIXTURES
from tests.fhir.hostile_server import hostile_server, http_answer

PATIENT = "dlbcl-early-relapse"


def _public_server(resources: list[dict[str, Any]]):
    def answer(target: str, sock: socket.socket) -> None:
        path = urlsplit(target).path
        rtype = path.rsplit("/", 1)[-1]
        if path.endswith(f"/Patient/{PATIENT}"):
            patient = next(r for r in resources if r["resourceType"] == "Patient")
            return http_answer(patient)(target, sock)
        if "/Patient/" in path:
            return http_answer({"resourceType": "OperationOutcome"}, "404 Not Found")(target, sock)
        wanted = parse_qs(urlsplit(target).query).get("patient", [""])[0]
        found = [r for r in resources if r["resourceType"] == rtype and wanted == PATIENT]
        bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in found]}
        return http_answer(bundle)(target, sock)

    return answer


def _app(tmp_path: Path, base: str):
    smart = tmp_path / "smart.json"
    smart.write_text(
        json.dumps(
            {
                "servers": [
                    {
                        "iss": base,
                        "name": "HAPI-like public server",
                        "client_id": "none",
                        "client_type": "public",
                        "open_server": True,
                    }
                ]
            }
        )
    )
    return create_app(
        {
            "TESTING": True,
            "BASE_URL": "http://127.0.0.1:8700",
            "SMART_CLIENTS": str(smart),
            "DATABASE_URL": str(tmp_path / "s.db"),
            "SECRET_KEY": "k",
        }
    )


def test_an_open_server_is_read_without_a_token_and_always_under_the_banner(tmp_path) -> None:
    bundle = json.loads((FIXTURES / f"{PATIENT}.json").read_text())
    resources = [e["resource"] for e in bundle["entry"]]
    # Anyone can write to a public server: a malformed resource among the real ones.
    resources.append(
        {
            "resourceType": "MedicationRequest",
            "id": "junk-1",
            "status": 7,
            "subject": {"reference": f"Patient/{PATIENT}"},
            "medicationCodeableConcept": ["not", "a", "concept"],
        }
    )
    with hostile_server() as server:
        server.route("/fhir", _public_server(resources))
        app = _app(tmp_path, server.base)
        client = app.test_client()
        page = client.get("/standalone").get_data(as_text=True)
        assert "Public test server" in page and 'id="open-read"' in page
        reply = client.post("/standalone", data={"iss": server.base, "patient": PATIENT})
        assert reply.status_code == 303
        target = reply.headers["Location"]
        launch_id = parse_qs(urlsplit(target).query)["ctx"][0]
        summary = client.get("/api/summary", query_string={"ctx": launch_id})
        assert summary.status_code == 200
        body = summary.get_json()
        assert body["public_test_server"]["banner"] == PUBLIC_BANNER
        patient = body["patients"][0]
        assert patient["lines"] and patient["lines"][0]["regimen"] == "R-CHOP"
        # the malformed resource is counted and shown, not fatal
        assert [s["resource"] for s in patient["skipped"]] == ["MedicationRequest/junk-1"]
        screen = client.get("/app", query_string={"ctx": launch_id}).get_data(as_text=True)
        assert PUBLIC_BANNER in screen
        assert screen.index(PUBLIC_BANNER) < screen.find("Patient")  # banner first
    assert server.requests
    assert all("Authorization" not in headers for _, headers in server.requests)


def test_an_open_server_needs_a_valid_patient_id_and_cannot_be_ehr_launched(tmp_path) -> None:
    with hostile_server() as server:
        app = _app(tmp_path, server.base)
        client = app.test_client()
        bad = client.post("/standalone", data={"iss": server.base, "patient": "../x?y"})
        assert bad.status_code == 400 and "patient" in bad.get_data(as_text=True)
        launch = client.get("/launch", query_string={"iss": server.base, "launch": "x"})
        assert launch.status_code == 400
    assert server.requests == []
