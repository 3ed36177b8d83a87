"""A CDS service app with one trusted ES384 client, a request signer, and fixture prefetch."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from salvage.app import create_app
from tests.conftest import FIXTURES
from tests.support_sandbox import _no_faults, sandbox  # noqa: F401 (pytest fixtures)

BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
FHIR = "https://ehr.example.org/fhir"
KEY = ECKey.generate_key("P-384", {"alg": "ES384", "use": "sig"})
KEY.ensure_kid()


def signed(
    path: str,
    *,
    key: Any = KEY,
    alg: str = "ES384",
    iss: str = ISS,
    aud: str | None = None,
    lifetime: int = 300,
    jti: str | None = None,
    header: dict[str, Any] | None = None,
    iat_offset: int = 0,
) -> str:
    now = int(time.time())
    claims = {
        "iss": iss,
        "aud": aud or f"{BASE}{path}",
        "exp": now + lifetime,
        "iat": now + iat_offset,
        "jti": jti or str(uuid.uuid4()),
    }
    head = {"alg": alg, "typ": "JWT", "kid": getattr(key, "kid", None) or "k", **(header or {})}
    return jwt.encode(head, claims, key, algorithms=[alg])


def write_clients(path: Path, **extra: Any) -> Path:
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "iss": ISS,
                        "jwks": {"keys": [KEY.as_dict(private=False)]},
                        "fhir_servers": [FHIR],
                        **extra,
                    }
                ]
            }
        )
    )
    return path


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    clients = write_clients(tmp_path / "clients.json")
    return create_app(
        {
            "TESTING": True,
            "BASE_URL": BASE,
            "CDS_CLIENTS": str(clients),
            "DATABASE_URL": str(tmp_path / "salvage.db"),
            "CORS_ORIGINS": "https://ehr.example.org",
            "CDS_MAX_BODY_BYTES": 2_000_000,
        }
    )


@pytest.fixture
def call(app) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    client = app.test_client()

    def _call(
        service: str,
        body: Any,
        *,
        token: str | None = "sign",
        raw: bytes | None = None,
        method: str = "POST",
        path: str | None = None,
    ) -> Any:
        path = path or f"/cds-services/{service}"
        headers = {}
        if token == "sign":
            token = signed(path)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return client.open(
            path, method=method, data=data, headers=headers, content_type="application/json"
        )

    return _call


def prefetch_from(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The prefetch an EHR would send for these resources (every key filled, one page each)."""

    def search(rtype: str) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in resources if r["resourceType"] == rtype],
        }

    patient = next(r for r in resources if r["resourceType"] == "Patient")
    return {
        "patient": patient,
        "medicationRequests": search("MedicationRequest"),
        "medicationAdministrations": search("MedicationAdministration"),
        "medicationStatements": search("MedicationStatement"),
        "conditions": search("Condition"),
        "procedures": search("Procedure"),
        "observations": search("Observation"),
        "diagnosticReports": _reports_with_results(resources),
    }


def _reports_with_results(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """DiagnosticReport?patient=..&_include=DiagnosticReport:result as a server answers it."""
    reports = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    wanted = {ref.get("reference") for r in reports for ref in r.get("result", [])}
    included = [
        r
        for r in resources
        if r["resourceType"] == "Observation" and f"Observation/{r.get('id')}" in wanted
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in reports]
        + [{"resource": r, "search": {"mode": "include"}} for r in included],
    }


def fixture_prefetch(name: str) -> dict[str, Any]:
    """The prefetch an EHR would send for a fixture patient."""
    bundle = json.loads((FIXTURES / f"{name}.json").read_text())
    return prefetch_from([e["resource"] for e in bundle["entry"]])


def draft(drug: str, rid: str | None = None, patient: str = "p") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid or f"draft-{drug.replace(' ', '-')}",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": {"text": drug},
    }


def hook_body(
    hook: str,
    patient: str,
    drugs: list[str] | None = None,
    prefetch: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/dr-a", "patientId": patient}
    if hook != "patient-view":
        drafts = [draft(d, patient=patient) for d in drugs or []]
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        }
    if hook == "order-select":
        context["selections"] = [
            f"MedicationRequest/{d['id']}" for d in [draft(x, patient=patient) for x in drugs or []]
        ]
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, **extra}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body
