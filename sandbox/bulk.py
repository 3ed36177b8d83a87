"""FHIR Bulk Data Access ($export) through the proxy for SMART Backend Services clients: a token
with system/ scopes is required, the export is narrowed to the types those scopes permit, and
status and file URLs point at the proxy, never at the backend server. Faults injectable."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, current_app, request

from sandbox import scopes as smart_scopes
from sandbox.proxy import FHIR_JSON, outcome

bp = Blueprint("bulk", __name__)


def _sandbox() -> Any:
    return current_app.extensions["sandbox"]


def _system_token() -> tuple[dict[str, Any] | None, Response | None]:
    sandbox = _sandbox()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    token = (
        sandbox.store.get("token", "access_token", value) if scheme.lower() == "bearer" else None
    )
    if token is None:
        return None, outcome(
            401,
            "login",
            "a valid bearer token is required",
            {"WWW-Authenticate": 'Bearer realm="sandbox", error="invalid_token"'},
        )
    if not any(s.context == "system" for s in smart_scopes.resource_scopes(token["scope"])):
        return None, outcome(403, "forbidden", "Bulk Data export needs system/ scopes")
    return token, None


def _faults() -> dict[str, Any]:
    return _sandbox().store.value("faults", {}) or {}


def _proxied(text: str) -> str:
    cfg = _sandbox().config
    return text.replace(cfg.backend_base, cfg.fhir_base)


@bp.route("/fhir/$export", methods=["GET", "POST"])
def export_system() -> Response:
    return _kickoff("$export")


@bp.route("/fhir/Patient/$export", methods=["GET", "POST"])
def export_patients() -> Response:
    return _kickoff("Patient/$export")


@bp.route("/fhir/Group/<group_id>/$export", methods=["GET", "POST"])
def export_group(group_id: str) -> Response:
    if not group_id.replace("-", "").replace(".", "").isalnum() or len(group_id) > 64:
        return outcome(400, "invalid", "unsupported group id")
    return _kickoff(f"Group/{group_id}/$export")


def _kickoff(operation: str) -> Response:
    token, refusal = _system_token()
    if refusal is not None or token is None:
        return refusal or outcome(401, "login", "token required")
    if _faults().get("status"):
        return outcome(int(_faults()["status"]), "transient", "injected server error")
    permitted = {
        s.resource_type
        for s in smart_scopes.resource_scopes(token["scope"])
        if s.context == "system" and "r" in s.permissions
    }
    params = parse_qsl(request.query_string.decode(), keep_blank_values=True)
    asked = [t for k, v in params if k == "_type" for t in v.split(",") if t]
    if "*" not in permitted:
        refused = [t for t in asked if t not in permitted]
        if refused:
            return outcome(403, "forbidden", f"the granted scope does not permit {refused}")
        if not asked:
            params.append(("_type", ",".join(sorted(permitted))))
    headers = {
        "Prefer": request.headers.get("Prefer", ""),
        "Accept": request.headers.get("Accept", FHIR_JSON),
    }
    if request.method == "POST":
        headers["Content-Type"] = request.headers.get("Content-Type", FHIR_JSON)
    status, answer_headers, body = _sandbox().backend_request(
        request.method,
        f"{operation}?{urlencode(params)}" if params else operation,
        headers,
        request.get_data() if request.method == "POST" else None,
    )
    response = Response(_proxied(body.decode("utf-8", "replace")), status=status)
    response.mimetype = FHIR_JSON
    location = answer_headers.get("content-location")
    if location:
        job = location.rstrip("/").rsplit("/", 1)[-1]
        _sandbox().store.set_value(f"bulk-job:{job}", token["client_id"])
        response.headers["Content-Location"] = _proxied(location)
    return response


def _owned(job: str, token: dict[str, Any]) -> bool:
    """Only the client that started an export reads its status and files."""
    return bool(_sandbox().store.value(f"bulk-job:{job}") == token["client_id"])


@bp.route("/fhir/bulk-status/<job>", methods=["GET", "DELETE"])
def status(job: str) -> Response:
    token, refusal = _system_token()
    if refusal is not None or token is None:
        return refusal or outcome(401, "login", "token required")
    if not job.isalnum() or not _owned(job, token):
        return outcome(404, "not-found", "no such export")
    faults = _faults()
    if faults.get("bulk_status"):
        return outcome(int(faults["bulk_status"]), "transient", "injected server error")
    code, headers, body = _sandbox().backend_request(
        request.method, f"bulk-status/{job}", {"Accept": FHIR_JSON}, None
    )
    response = Response(_proxied(body.decode("utf-8", "replace")), status=code)
    response.mimetype = "application/json" if code == 200 else FHIR_JSON
    for name in ("Retry-After", "X-Progress", "Expires"):
        if headers.get(name.lower()):
            response.headers[name] = headers[name.lower()]
    if faults.get("retry_after") and code == 202:
        response.headers["Retry-After"] = str(faults["retry_after"])
    return response


@bp.get("/fhir/bulk-files/<job>/<name>")
def file(job: str, name: str) -> Response:
    token, refusal = _system_token()
    if refusal is not None or token is None:
        return refusal or outcome(401, "login", "token required")
    if not job.isalnum() or not _owned(job, token):
        return outcome(404, "not-found", "no such export")
    faults = _faults()
    if name in (faults.get("bulk_file_fail") or []):
        return outcome(503, "transient", "injected server error")
    code, _headers, body = _sandbox().backend_request(
        "GET", f"bulk-files/{job}/{name}", {"Accept": "application/fhir+ndjson"}, None
    )
    if code == 200 and name in (faults.get("bulk_file_truncate") or []):
        body = body[: len(body) // 2]
    response = Response(body, status=code)
    response.mimetype = "application/fhir+ndjson" if code == 200 else FHIR_JSON
    return response
