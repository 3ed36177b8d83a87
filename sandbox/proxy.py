"""FHIR proxy in front of the FHIR server: bearer token required, SMART scopes (v1 and v2, query
restrictions, patient compartment) enforced, paging links rewritten, faults injectable for tests."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, current_app, request

from sandbox import scopes as smart_scopes

bp = Blueprint("proxy", __name__)
_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# Search parameter putting a type in the patient compartment (R4 compartmentdefinition-patient).
PATIENT_PARAM = {
    "Patient": "_id",
    "Observation": "patient",
    "Condition": "patient",
    "Procedure": "patient",
    "MedicationRequest": "patient",
    "MedicationAdministration": "patient",
    "MedicationStatement": "patient",
    "Encounter": "patient",
    "DiagnosticReport": "patient",
    "ServiceRequest": "patient",
    "AllergyIntolerance": "patient",
    "Immunization": "patient",
}
FHIR_JSON = "application/fhir+json"
# Referenced by a patient's orders but not in the patient compartment: readable with patient/
# scopes for that type (as EHRs do for Medication).
OUTSIDE_COMPARTMENT = frozenset({"Medication"})


def outcome(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return Response(json.dumps(body), status=status, mimetype=FHIR_JSON, headers=headers or {})


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


def backend_get(path_and_query: str) -> tuple[int, bytes]:
    return _sandbox().backend_get(path_and_query)


@bp.get("/fhir/metadata")
def metadata() -> Response:
    """The server's CapabilityStatement with SMART's oauth-uris extension (S3 fallback)."""
    status, body = backend_get("metadata")
    if status != 200:
        return outcome(502, "transient", "FHIR server unavailable")
    capability = json.loads(body)
    cfg = _sandbox().config
    security = {
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "authorize", "valueUri": f"{cfg.ehr_base}/auth/authorize"},
                    {"url": "token", "valueUri": f"{cfg.ehr_base}/auth/token"},
                ],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ],
    }
    for rest in capability.get("rest", []):
        rest["security"] = security
    return _rewrite(json.dumps(capability).encode(), 200)


def _rewrite(body: bytes, status: int) -> Response:
    cfg = _sandbox().config
    text = body.decode("utf-8").replace(cfg.backend_base, cfg.fhir_base)
    return Response(text, status=status, mimetype=FHIR_JSON)


def _faults() -> dict[str, Any]:
    return _sandbox().store.value("faults", {}) or {}


@bp.get("/fhir/<path:path>")
def fhir(path: str) -> Response:
    sandbox = _sandbox()
    faults = _faults()
    if faults.get("latency_ms"):
        time.sleep(min(float(faults["latency_ms"]), 30000) / 1000)
    if faults.get("status"):
        return outcome(int(faults["status"]), "transient", "injected server error")
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    token = (
        sandbox.store.get("token", "access_token", value) if scheme.lower() == "bearer" else None
    )
    if token is None:
        return outcome(
            401,
            "login",
            "a valid bearer token is required",
            {"WWW-Authenticate": 'Bearer realm="sandbox", error="invalid_token"'},
        )
    parts = path.strip("/").split("/")
    rtype = parts[0]
    if not _TYPE.match(rtype) or (len(parts) > 1 and not _ID.match(parts[1])) or len(parts) > 2:
        return outcome(400, "invalid", "unsupported request path")
    interaction = "s" if len(parts) == 1 else "r"
    candidates = smart_scopes.matching_scopes(token["scope"], rtype, interaction)
    if not candidates:
        return outcome(
            403,
            "forbidden",
            f"the granted scope does not permit {rtype} "
            f"{'search' if interaction == 's' else 'read'}",
        )
    if interaction == "s":
        return _search(rtype, candidates, token, faults)
    return _read(rtype, parts[1], candidates, token)


def _search(
    rtype: str,
    candidates: list[smart_scopes.ResourceScope],
    token: dict[str, Any],
    faults: dict[str, Any],
) -> Response:
    params = parse_qsl(request.query_string.decode(), keep_blank_values=True)
    query = request.query_string.decode()
    for scope in candidates:
        if scope.restrictions and not smart_scopes.query_satisfies(scope.restrictions, query):
            continue
        forwarded = params
        if scope.restrictions:  # v2 restriction: the server returns only what the scope allows
            restricted = {key for key, _ in scope.restrictions}
            forwarded = [(k, v) for k, v in params if k.split(":")[0] not in restricted]
            forwarded += list(scope.restrictions)
        if scope.context == "patient" and rtype not in OUTSIDE_COMPARTMENT:
            patient = token.get("patient")
            name = PATIENT_PARAM.get(rtype)
            if not patient or not name:
                continue
            own = {patient, f"Patient/{patient}"}
            targeted = [
                v for k, v in params if k.split(":")[0] in (name, "subject", "patient", "_id")
            ]
            if any(v not in own for v in targeted):
                continue  # asks for another patient's data
            if not targeted:
                forwarded = [*params, (name, patient)]
        status, body = backend_get(f"{rtype}?{urlencode(forwarded)}")
        if status == 200 and faults.get("truncate"):
            return Response(body[: len(body) // 2], status=200, mimetype=FHIR_JSON)
        response = _rewrite(body, status)
        if status == 200 and faults.get("foreign_next"):
            # a next link to another host on every page: clients must not follow it with the token
            bundle = json.loads(response.get_data())
            links = [link for link in bundle.get("link", []) if link.get("relation") != "next"]
            links.append(
                {"relation": "next", "url": f"http://attacker.invalid/fhir/{rtype}?page=2"}
            )
            bundle["link"] = links
            response.set_data(json.dumps(bundle))
        return response
    return outcome(
        403,
        "forbidden",
        "the granted scope does not permit this search (patient compartment or query restriction)",
    )


def _read(
    rtype: str, rid: str, candidates: list[smart_scopes.ResourceScope], token: dict[str, Any]
) -> Response:
    status, body = backend_get(f"{rtype}/{rid}")
    if status != 200:
        return _rewrite(body, status)
    resource = json.loads(body)
    for scope in candidates:
        if scope.restrictions and not smart_scopes.resource_satisfies(scope.restrictions, resource):
            continue
        if (
            scope.context == "patient"
            and rtype not in OUTSIDE_COMPARTMENT
            and not _in_compartment(resource, token.get("patient"))
        ):
            continue
        return _rewrite(body, 200)
    return outcome(403, "forbidden", "the granted scope does not permit reading this resource")


def _in_compartment(resource: dict[str, Any], patient: str | None) -> bool:
    if not patient:
        return False
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and str(ref.get("reference", "")).endswith(f"Patient/{patient}"):
            return True
    return False
